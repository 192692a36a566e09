"""Fixtures for ingest tests: a small project written per test, a DuckDB file, and a loopback REST API."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.project.spec import Project
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

PROJECT_YAML = """\
project: {name: ingest_test, version: 1}
model:
  customer:
    table: customers
    key: customer_id
    attributes:
      email: {type: string}
      lifetime_value: {type: number, column: ltv}
      is_vip: {type: boolean}
      birth_date: {type: date}
      signup_at: {type: timestamp}
  event_tables:
    events:
      table: events
      customer_key: customer_id
      timestamp: occurred_at
      type_column: event_type
      event_types: [page_view, purchase]
      properties: {revenue: number}
  order_tables:
    orders: {table: orders, customer_key: customer_id, timestamp: ordered_at, properties: {amount: number}}
  consent:
    table: consents
    customer_key: customer_id
    channel_column: channel
    opted_in_column: opted_in
    updated_at_column: updated_at
    channels: {email: {require_opt_in: true}}
segments:
  - name: everyone
    rule: {attribute: email, op: is_not_null}
"""


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "landing").mkdir(parents=True)
    (root / "project.yml").write_text(PROJECT_YAML)
    return root


@pytest.fixture
def make_project(project_dir: Path) -> Callable[[str], Project]:
    """Write ``sources.yml`` with the given text and load the project."""

    def make(sources_yaml: str) -> Project:
        (project_dir / "sources.yml").write_text(sources_yaml)
        return load_project(project_dir)

    return make


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.integration), "snowflake"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """An empty warehouse of each kind the ingest supports."""
    if request.param == "duckdb":
        from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

        warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
        yield warehouse
        warehouse.close()
    elif request.param == "postgres":
        from support.postgres import postgres_warehouse

        with postgres_warehouse() as warehouse:
            yield warehouse
    else:
        fakesnow = pytest.importorskip("fakesnow")
        import snowflake.connector

        from airflow_segprovider.core.warehouses.snowflake import SnowflakeWarehouse

        with fakesnow.patch():
            connection = snowflake.connector.connect(database="segprovider_test", schema="main")
            warehouse = SnowflakeWarehouse(connection, schema="main")
            yield warehouse
            warehouse.close()


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[DuckDBWarehouse]:
    wh = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    yield wh
    wh.close()


class FakeApi:
    """A small paginated JSON API on 127.0.0.1, with failures to inject.

    ``GET /v1/customers``: cursor pagination (``cursor``, ``limit``), ``updated_since`` filter, body
    ``{"data": [...], "meta": {"next_cursor": ...}}``.
    ``GET /v1/orders``: offset pagination (``offset``, ``limit``), the body is the list.
    ``GET /v1/events``: ``page`` numbers with a ``Link: <...>; rel="next"`` header, body ``{"items": [...]}``.
    """

    def __init__(self) -> None:
        self.customers: list[dict[str, Any]] = []
        self.orders: list[Any] = []
        self.events: list[dict[str, Any]] = []
        self.requests: list[tuple[str, dict[str, str], dict[str, str]]] = []  # (path, params, headers)
        self.fail_once: dict[tuple[str, str], int] = {}  # (path, cursor/offset/page) -> status, served once
        self.die_on: set[tuple[str, str]] = set()  # (path, position): drop the connection without answering
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                params = dict(parse_qsl(parts.query))
                with api.lock:
                    api.requests.append((parts.path, params, dict(self.headers)))
                position = params.get("cursor") or params.get("offset") or params.get("page") or ""
                if (parts.path, position) in api.die_on:
                    self.close_connection = True
                    return
                status = api.fail_once.pop((parts.path, position), None)
                if status is not None:
                    self._send(status, {"message": "temporarily unavailable"}, {"Retry-After": "0"})
                    return
                if parts.path == "/v1/customers":
                    rows = [r for r in api.customers
                            if "updated_since" not in params or r["updated_at"] > params["updated_since"]]
                    start, limit = int(params.get("cursor") or 0), int(params.get("limit", 100))
                    page = rows[start:start + limit]
                    next_cursor = str(start + limit) if start + limit < len(rows) else None
                    self._send(200, {"data": page, "meta": {"next_cursor": next_cursor}})
                elif parts.path == "/v1/orders":
                    start, limit = int(params.get("offset", 0)), int(params.get("limit", 100))
                    self._send(200, api.orders[start:start + limit])
                elif parts.path == "/v1/events":
                    number, size = int(params.get("page", 1)), int(params.get("per_page", 2))
                    page = api.events[(number - 1) * size:number * size]
                    headers = {}
                    if number * size < len(api.events):
                        host = self.headers["Host"]
                        headers["Link"] = f'<http://{host}/v1/events?page={number + 1}&per_page={size}>; rel="next"'
                    self._send(200, {"items": page}, headers)
                else:
                    self._send(404, {"message": "no such endpoint"})

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def connection(self, **extra: Any) -> dict[str, Any]:
        """A connection mapping as the Airflow hook (or ``connection_from_env``) returns it."""
        tuning = {"max_attempts": 3, "backoff_base": 0.01, "backoff_max": 0.05, "read_timeout": 5}
        return {"host": self.base_url, "password": "s3cret-token", "extra": {**tuning, **extra}}

    def requests_to(self, path: str) -> list[dict[str, str]]:
        return [params for p, params, _ in self.requests if p == path]


@pytest.fixture
def api() -> Iterator[FakeApi]:
    server = FakeApi()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()

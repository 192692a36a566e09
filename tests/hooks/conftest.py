"""Fixtures of the hook tests: the vendor sandbox, and Airflow connections defined the way deployments do."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk import Connection

from segprovider_sandbox import (
    DEFAULT_HUBSPOT_TOKEN,
    DEFAULT_MAILCHIMP_API_KEY,
    DEFAULT_META_ACCESS_TOKEN,
    DEFAULT_WEBHOOK_SECRET,
    serve,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from segprovider_sandbox import RunningSandbox

#: Fail fast against the loopback sandbox.
FAST_RETRIES = {"backoff_base": 0.01, "backoff_max": 0.05, "max_attempts": 2}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    """The vendor sandbox with the demo's audience, segment, HubSpot list and Meta audience."""
    with serve(db_path=tmp_path / "sandbox.db") as running:
        running.fixtures = running.state.seed_demo_fixtures()
        yield running


@pytest.fixture
def define_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Connection]:
    """Define an Airflow connection as ``AIRFLOW_CONN_<ID>`` in JSON: Airflow resolves it without a database."""

    def define(conn_id: str, conn_type: str, *, extra: dict[str, Any] | None = None, **fields: Any) -> Connection:
        connection = Connection(conn_id=conn_id, conn_type=conn_type,
                                extra=json.dumps(extra) if extra else None, **fields)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection.as_json())
        return connection

    return define


def sandbox_connection(kind: str, sandbox: RunningSandbox, *, secret: str | None = None) -> dict[str, Any]:
    """Connection fields (host, password, extra) of a destination kind pointing at the sandbox.

    :param secret: the password to use instead of the sandbox's accepted one.
    """
    fixtures = sandbox.fixtures
    if kind == "mailchimp":
        return {"host": f"{sandbox.url}/3.0", "password": secret or DEFAULT_MAILCHIMP_API_KEY,
                "extra": {"list_id": fixtures.mailchimp_list_id, "segment_id": str(fixtures.mailchimp_segment_id),
                          **FAST_RETRIES}}
    if kind == "hubspot":
        return {"host": sandbox.url, "password": secret or DEFAULT_HUBSPOT_TOKEN,
                "extra": {"list_id": fixtures.hubspot_list_id, **FAST_RETRIES}}
    if kind == "meta":
        return {"host": sandbox.url, "password": secret or DEFAULT_META_ACCESS_TOKEN,
                "extra": {"audience_id": fixtures.meta_audience_id, **FAST_RETRIES}}
    if kind == "webhook":
        return {"host": f"{sandbox.url}/webhook/segments", "password": secret or DEFAULT_WEBHOOK_SECRET,
                "extra": dict(FAST_RETRIES)}
    raise AssertionError(f"no sandbox connection for {kind!r}")

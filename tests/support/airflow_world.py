"""What every ``dag.test()`` world shares: the migrated Airflow database, a loopback alert receiver, the
task states of a run and read-only queries of the world's DuckDB warehouse.

Imported by the worlds of ``tests/factory`` and ``tests/core/distributed`` (``tests/`` is on
``sys.path`` beside ``conftest.py``, as for ``support.reference_evaluator``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """``airflow db migrate`` once per test process, in the process's own AIRFLOW_HOME."""
    home = os.environ["AIRFLOW_HOME"]
    # always: another test may already have created an empty airflow.db in this home (migrate is idempotent)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                   env={**os.environ})
    return home


class _AlertHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append(json.loads(body))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class AlertReceiver:
    """A webhook on loopback that keeps every alert the notifier posts, in ``alerts``."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _AlertHandler)
        self._server.received = self.alerts  # type: ignore[attr-defined]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/alerts"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def task_states(dagrun: Any) -> dict[str, str]:
    """``task_id[map_index] -> state`` of every task instance of ``dagrun``."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dagrun.dag_id,
                                                 TaskInstance.run_id == dagrun.run_id).all()
        return {ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else ""): str(ti.state) for ti in tis}


def query_warehouse(path: Any, sql: str) -> list[tuple]:
    """Rows of ``sql`` on the DuckDB file at ``path``, opened read-only for the one query."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()

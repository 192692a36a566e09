"""Run real Airflow services (api-server, scheduler, dag-processor) as subprocesses and talk to their REST API.

Kept apart from the fixtures so a failing test can reuse the helpers from a Python prompt. The name is
unique on purpose: test folders have no ``__init__.py``, so a sibling module is imported by its bare name.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

REPO = Path(__file__).resolve().parents[2]
# The interpreter running the tests and its ``airflow`` script: the project's virtualenv.
VENV_BIN = Path(sys.executable).parent
FINISHED_RUN_STATES = frozenset({"success", "failed"})
#: The pool every task that opens the warehouse uses (one slot: DuckDB takes one writer).
WAREHOUSE_POOL = "segprovider_duckdb"
#: The deployment's DAG file: the repository's ``dags/segments_centralized.py`` built from the copy of the
#: example project beside it (the repository's file builds from the packaged one, which a test must not edit),
#: reading its landing files from ``$SEGPROVIDER_DATA_DIR`` as the repository's does.
CENTRALIZED_DAG_SOURCE = (
    "from pathlib import Path\n"
    "from airflow_segprovider.example.landing import default_data_dir\n"
    "from airflow_segprovider.factory.centralized import build_centralized_dag\n"
    "dag = build_centralized_dag(Path(__file__).resolve().parent / 'segments_project', dag_id='segments_centralized',\n"
    "                            files_root=str(default_data_dir()))\n"
)
#: What every task imports, imported once before the services start so the bytecode cache is warm (DuckDB
#: and its Airflow provider, sqlparse and sqlglot's DuckDB dialect cost the first ingest task about 6 s otherwise).
WARM_UP_IMPORTS = ("import great_expectations, airflow.sdk, airflow.sdk.execution_time.task_runner, "
                   "airflow_segprovider.factory.centralized, airflow_segprovider.gates.runner, "
                   "airflow_segprovider.core.sync.engine, airflow_segprovider.ingest, "
                   "duckdb, sqlparse, sqlglot.dialects.duckdb, pyarrow.pandas_compat, "
                   "airflow.providers.duckdb.hooks.duckdb, airflow.providers.common.sql.hooks.sql, "
                   "airflow_segprovider.hooks.warehouse, airflow_segprovider.operators")
FINISHED_TASK_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def latest_midnight() -> dt.datetime:
    """The start of today (UTC): the logical date of the run an ``@daily``, ``catchup=False`` DAG gets on unpause.

    The test's dates are relative to it, so the example data (anchored there) is fresh for every run.
    """
    return dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def free_port() -> int:
    """A TCP port free on loopback right now (the api-server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def airflow_environment(home: Path, *, dags_folder: Path, api_port: int, jwt_secret: str,
                        passwords_file: Path, pycache: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every Airflow process of one isolated installation.

    The same JWT secret must reach the api-server (which checks tokens) and the scheduler (which signs the
    tokens its LocalExecutor workers present to the Execution API), hence one environment for all.

    :param pycache: where the processes cache bytecode. Every task is a new process importing Airflow,
        pandas and Great Expectations; with ``PYTHONDONTWRITEBYTECODE`` set (as here) each would compile
        them anew, about 12 s per gate task on 2 cores, instead of reading the cache.
    """
    api_url = f"http://127.0.0.1:{api_port}"
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "SEGPROVIDER_")) and key != "PYTHONDONTWRITEBYTECODE"}
    env.update({
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPYCACHEPREFIX": str(pycache),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # 2 cores: a few task processes at a time; the DuckDB warehouse takes one writer anyway.
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": api_url,
        "AIRFLOW__API__WORKERS": "1",
        # Where LocalExecutor's task processes report (the default assumes localhost:8080).
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra or {})
    return env


@dataclass
class Service:
    """One Airflow service started as a subprocess in its own process group, its output in ``log_path``."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the service's process group (its workers and task processes too), SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        pgid = self.process.pid  # start_new_session=True: the group id is the leader's pid
        _signal_group(pgid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Workers that outlive their leader would keep the SQLite DB and the warehouse open.
        _signal_group(pgid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def start_service(name: str, args: Iterable[str], *, env: Mapping[str, str], log_dir: Path) -> Service:
    """Start ``airflow <args>`` (the venv's binary) with its stdout and stderr in ``<log_dir>/<name>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen([str(VENV_BIN / "airflow"), *args], env=dict(env), stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return Service(name, process, log_path)


def wait_for(what: str, probe: Callable[[], Any], *, timeout: float, interval: float = 1.0,
             services: Iterable[Service] = ()) -> Any:
    """Call ``probe`` until it returns something truthy; fail early when a service died.

    :raises TimeoutError: ``probe`` never succeeded within ``timeout`` seconds.
    :raises RuntimeError: a service exited meanwhile (its last log lines are in the message).
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        for service in services:
            if not service.alive():
                raise RuntimeError(f"airflow {service.name} exited with {service.process.returncode} while "
                                   f"waiting for {what}; its log ends with:\n{service.tail()}")
        try:
            result = probe()
        except (requests.RequestException, ValueError) as exc:
            last_error, result = exc, None
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"{what}: not reached within {timeout:.0f}s (last error: {last_error!r})")


@dataclass
class AirflowApi:
    """The public REST API (``/api/v2``) of one api-server, authenticated as a simple-auth-manager user."""

    base_url: str
    session: requests.Session = field(default_factory=requests.Session)

    def login(self, username: str, password: str) -> None:
        """Exchange the user's password for a JWT (``POST /auth/token``), as the UI's login page does."""
        reply = self.session.post(f"{self.base_url}/auth/token", json={"username": username, "password": password},
                                  timeout=10)
        reply.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {reply.json()['access_token']}"

    def healthy(self) -> bool:
        """The metadata DB, scheduler and dag-processor all report healthy (``/api/v2/monitor/health``)."""
        reply = self.session.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
        if reply.status_code != 200:
            return False
        health = reply.json()
        return all((health.get(part) or {}).get("status") == "healthy"
                   for part in ("metadatabase", "scheduler", "dag_processor"))

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call to ``/api/v2<path>``; raises with the server's explanation on an error status.

        A 503 saying the SQLite metadata database is locked (the scheduler was writing: the API refuses
        rather than wait, e.g. on ``POST /backfills``) is retried for up to 20 s, as a client of a real
        deployment would; any other error status raises at once.
        """
        deadline = time.monotonic() + 20
        while True:
            reply = self.session.request(method, f"{self.base_url}/api/v2{path}", timeout=30, **kwargs)
            if not (reply.status_code == 503 and "database is locked" in reply.text.lower()
                    and time.monotonic() < deadline):
                break
            time.sleep(1.0)
        if reply.status_code >= 400:
            raise requests.HTTPError(f"{method} {path} -> {reply.status_code}: {reply.text}", response=reply)
        return reply.json() if reply.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def dag_runs(self, dag_id: str, **filters: Any) -> list[dict[str, Any]]:
        return self.get(f"/dags/{dag_id}/dagRuns", limit=100, order_by="logical_date", **filters)["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]


def task_log(airflow_home: Path, dag_id: str, run_id: str, task_id: str, map_index: int = -1,
             lines: int = 60) -> str:
    """The end of a task's log files as the task supervisor wrote them under ``$AIRFLOW_HOME/logs``.

    Read from disk rather than through the API, so it works after the services are gone.
    """
    root = airflow_home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    if map_index >= 0:
        root = root / f"map_index={map_index}"
    files = sorted(root.glob("attempt=*.log")) if root.is_dir() else []
    if not files:
        return f"(no log under {root})"
    out: list[str] = []
    for path in files:
        out.append(f"--- {path}")
        for raw in path.read_text(errors="replace").splitlines()[-lines:]:
            out.append(_log_line(raw))
    return "\n".join(out)


def _log_line(raw: str) -> str:
    """Airflow 3 task logs are JSON lines: show level, event and any error detail."""
    try:
        record = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(record, dict):
        return raw
    text = f"{record.get('timestamp', '')} {record.get('level', '')} {record.get('event', '')}"
    if record.get("error_detail"):
        text += f"\n    {json.dumps(record['error_detail'])[:3000]}"
    return text


def destination_connections(warehouse: Path, sandbox_url: str) -> dict[str, dict]:
    """The connections ``segments_centralized`` uses (as the demo defines them), pointed at a sandbox, by id."""
    from airflow_segprovider.cli.demo import sandbox_connections
    from support.sandbox import SANDBOX_CREDENTIALS

    return sandbox_connections(warehouse, sandbox_url, f"{sandbox_url}/webhook/alerts", SANDBOX_CREDENTIALS)


def create_connections(api: AirflowApi, connections: Mapping[str, dict]) -> None:
    """``POST /api/v2/connections`` for each, as a person does in Admin > Connections."""
    for conn_id, fields in connections.items():
        body = {"connection_id": conn_id, **{k: v for k, v in fields.items() if k != "extra"}}
        if "extra" in fields:
            body["extra"] = json.dumps(fields["extra"])
        api.request("POST", "/connections", json=body)

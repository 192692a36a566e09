"""A real ``airflow api-server`` with the provider's plugin, over a warehouse seeded with several days of runs.

One installation per test module. The warehouse is seeded with the library directly, not through the
scheduler (fast): the example data (:func:`~airflow_segprovider.example.generate.generate`), an evaluation
per day, every centralized sync per day against the destination sandbox, the reported counts and drift
findings of each day, and the ``segment_size`` gate's results and Data Docs where the gate tasks keep them
(``$SEGPROVIDER_DOCS_DIR/<dag_id>/<run_id>/<task_id>``). The api-server and the dag-processor (which puts
the DAGs and their tags in the metadata DB) run as subprocesses, with SimpleAuthManager and three users:
``admin``, ``viewer`` (may read every DAG) and ``nobody`` (a user without a role: may read no DAG).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from airflow_segprovider.example import EXAMPLE_PROJECT
from segprovider_sandbox import RunningSandbox, serve
from support.airflow_services import VENV_BIN, Service, airflow_environment, free_port, start_service, wait_for
from support.insights_world import DAG_ID, PLAIN_DAG_ID, InsightsWorld

if TYPE_CHECKING:
    from collections.abc import Iterator

DAG_SOURCE = ("from airflow_segprovider.example import EXAMPLE_PROJECT\n"
              "from airflow_segprovider.factory.centralized import build_centralized_dag\n"
              f"dag = build_centralized_dag(EXAMPLE_PROJECT, dag_id={DAG_ID!r})\n")
PLAIN_DAG_SOURCE = ("import datetime as dt\nfrom airflow.sdk import DAG\n"
                    "from airflow.providers.standard.operators.empty import EmptyOperator\n"
                    f"with DAG({PLAIN_DAG_ID!r}, schedule=None, start_date=dt.datetime(2026, 1, 1), "
                    "tags=['reports']):\n"
                    "    EmptyOperator(task_id='noop')\n")
CUSTOMERS = 2_000
#: The days evaluated and synced, up to the example data's anchor (its newest events).
DAYS = [dt.datetime(2026, 11, 20) + dt.timedelta(days=n) for n in range(5)]
USERS = {"admin": "admin", "viewer": "viewer", "nobody": ""}


def seed_warehouse(path: Path, docs_dir: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five days of evaluations, syncs, counts, drift findings and gate results, as the DAG would write them."""
    from airflow_segprovider.cli.demo import connection_variables, sandbox_connections
    from airflow_segprovider.cli.sync import env_client
    from airflow_segprovider.core.evaluate.engine import evaluate
    from airflow_segprovider.core.hybrid.drift import record_drift, sync_count_finding
    from airflow_segprovider.core.project.loader import load_project
    from airflow_segprovider.core.project.spec import centralized_syncs
    from airflow_segprovider.core.state.membership import SNAPSHOTS
    from airflow_segprovider.core.state.sync import STATE
    from airflow_segprovider.core.sync import SyncEngine, SyncOptions
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.example.generate import generate
    from airflow_segprovider.gates.evaluation import evaluate_gate
    from airflow_segprovider.gates.staging import stage_destination_counts
    from support.sandbox import SANDBOX_CREDENTIALS

    connections = sandbox_connections(path, sandbox.url, f"{sandbox.url}/webhook/alerts", SANDBOX_CREDENTIALS)
    for key, value in connection_variables(connections).items():
        monkeypatch.setenv(key, value)
    project = load_project(EXAMPLE_PROJECT)
    warehouse = DuckDBWarehouse(path)
    try:
        generate(warehouse, CUSTOMERS)
        engine = SyncEngine(project, warehouse)
        for day in DAYS:
            run_id = f"scheduled__{day:%Y-%m-%dT%H:%M:%S}+00:00"
            evaluate(project, warehouse, day, run_id=run_id)
            gate_dir = docs_dir / DAG_ID / run_id.replace(":", "_").replace("+", "_") / "gate_segment_size"
            evaluate_gate("segment_size", project, warehouse, day, docs_dir=gate_dir)
            counts, findings = [], []
            for sync in centralized_syncs(project):
                client = env_client(project, sync)
                try:
                    engine.run(sync, client, day, options=SyncOptions(allow_mass_removal=True), run_id=run_id)
                finally:
                    client.close()
                held = warehouse.query(f"SELECT COUNT(*) FROM {STATE} WHERE sync_id = %(sync)s AND in_destination",
                                       {"sync": sync.id})[0][0]
                members = warehouse.query(f"SELECT members FROM {SNAPSHOTS} WHERE segment = %(segment)s "
                                          "AND as_of = %(as_of)s", {"segment": sync.segment, "as_of": day})[0][0]
                counts.append({"sync_id": sync.id, "destination": sync.destination, "reported_count": held})
                findings.append(sync_count_finding(project, sync, members, held, 0.05))
            stage_destination_counts(warehouse, counts, phase="after", as_of=day)
            record_drift(warehouse, f"drift__{day:%Y-%m-%d}", findings)
    finally:
        warehouse.close()


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("insights")


@pytest.fixture(scope="module")
def sandbox(work_dir: Path) -> Iterator[RunningSandbox]:
    with serve(db_path=work_dir / "sandbox.db") as running:
        running.state.seed_example_project()
        yield running


@pytest.fixture(scope="module")
def seeded(work_dir: Path, sandbox: RunningSandbox) -> tuple[Path, Path]:
    """The warehouse and the Data Docs folder after five days of runs."""
    warehouse, docs_dir = work_dir / "warehouse.duckdb", work_dir / "data_docs"
    with pytest.MonkeyPatch.context() as monkeypatch:
        seed_warehouse(warehouse, docs_dir, sandbox, monkeypatch)
    return warehouse, docs_dir


@pytest.fixture(scope="module")
def insights(work_dir: Path, seeded: tuple[Path, Path]) -> Iterator[InsightsWorld]:
    """The api-server (with the plugin) and the dag-processor, up, with the DAGs parsed."""
    warehouse, docs_dir = seeded
    home, dags = work_dir / "airflow", work_dir / "dags"
    home.mkdir()
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(DAG_SOURCE)
    (dags / f"{PLAIN_DAG_ID}.py").write_text(PLAIN_DAG_SOURCE)
    passwords = {user: secrets.token_urlsafe(12) for user in USERS}
    passwords_file = home / "passwords.json"
    passwords_file.write_text(json.dumps(passwords))
    port = free_port()
    env = airflow_environment(
        home, dags_folder=dags, api_port=port, jwt_secret=secrets.token_urlsafe(64), passwords_file=passwords_file,
        pycache=work_dir / "pycache",
        extra={"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in USERS.items()),
               "SEGPROVIDER_DOCS_DIR": str(docs_dir),
               "AIRFLOW_CONN_SEGPROVIDER_WAREHOUSE": json.dumps({"conn_type": "duckdb", "host": str(warehouse)})})
    migrated = subprocess.run([str(VENV_BIN / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True,
                              check=False,
                              timeout=300)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    services: list[Service] = []
    try:
        for name, args in (("api-server", ["api-server", "--port", str(port)]), ("dag-processor", ["dag-processor"])):
            services.append(start_service(name, args, env=env, log_dir=home / "services"))
        world = InsightsWorld(f"http://127.0.0.1:{port}", passwords, warehouse, docs_dir, services)
        wait_for("the api-server to answer", lambda: requests.get(f"{world.base_url}/api/v2/version", timeout=5).ok,
                 timeout=180, services=services)
        headers = {"Authorization": f"Bearer {world.token('admin')}"}

        def parsed() -> bool:
            return all(requests.get(f"{world.base_url}/api/v2/dags/{dag}", headers=headers, timeout=5).ok
                       for dag in (DAG_ID, PLAIN_DAG_ID))

        wait_for("the dag-processor to parse the DAGs", parsed, timeout=240, services=services)
        yield world
    finally:
        for service in services:
            service.stop()
        for service in services:
            print(f"--- airflow {service.name} log {service.log_path}:\n{service.tail(15)}")

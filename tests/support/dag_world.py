"""The world DAG tests run in (fixtures in conftest.py): a migrated Airflow metadata DB and a world to run ``segments_centralized`` in.

The world is real: a copy of the example project with its own Parquet landing files, a DuckDB
warehouse file, the destination sandbox on loopback, an alert receiver on loopback, and the
Airflow connections as ``AIRFLOW_CONN_*`` variables. DAG runs go through ``dag.test()``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_segprovider.example import EXAMPLE_PROJECT
from support.airflow_world import AlertReceiver, airflow_db, query_warehouse, task_states  # noqa: F401  (pytest fixture)

REPO = Path(__file__).resolve().parents[2]
DAY_1 = dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc)
DAY_2 = dt.datetime(2026, 11, 24, tzinfo=dt.timezone.utc)


@dataclass
class World:
    project: Path
    warehouse: Path
    sandbox: Any
    alerts: list[dict[str, Any]]
    docs: Path
    _dag: Any = field(default=None, repr=False)

    @property
    def dag(self):
        if self._dag is None:
            from airflow_segprovider.factory.centralized import build_centralized_dag

            self._dag = build_centralized_dag(self.project, dag_id="segments_centralized")
        return self._dag

    def run(self, day: dt.datetime) -> dict[str, str]:
        """Run the DAG for ``day``; return ``task_id[map_index] -> state``."""
        dagrun = self.dag.test(logical_date=day)
        return task_states(dagrun)

    def query(self, sql: str) -> list[tuple]:
        return query_warehouse(self.warehouse, sql)

    def destination_writes(self) -> list[Any]:
        return [r for r in self.sandbox.state.requests() if r.method in ("POST", "PUT", "DELETE")
                and "/__sandbox/" not in r.path]


@pytest.fixture
def world(tmp_path: Path, airflow_db: str, monkeypatch: pytest.MonkeyPatch) -> World:  # noqa: F811
    from airflow_segprovider.cli.demo import connection_variables, sandbox_connections
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.example.generate import generate
    from airflow_segprovider.example.landing import write_landing_files
    from segprovider_sandbox import serve
    from support.sandbox import SANDBOX_CREDENTIALS

    project = tmp_path / "segments_project"
    shutil.copytree(EXAMPLE_PROJECT, project, ignore=shutil.ignore_patterns("landing"))
    upstream = DuckDBWarehouse(tmp_path / "upstream.duckdb")
    generate(upstream, 3000, seed=11)
    write_landing_files(upstream, project / "landing")
    upstream.close()

    receiver = AlertReceiver()
    alerts = receiver.alerts

    sandbox = serve(db_path=tmp_path / "sandbox.db")
    fixtures = sandbox.state.seed_demo_fixtures()
    sandbox.state.seed_meta_audience("23850000000000002", fixtures.meta_ad_account_id, "high_intent")
    warehouse = tmp_path / "warehouse.duckdb"
    connections = sandbox_connections(warehouse, sandbox.url, receiver.url, SANDBOX_CREDENTIALS,
                                      retry={"backoff_base": 0.05, "backoff_max": 0.2, "max_attempts": 4})
    for name, value in connection_variables(connections).items():
        monkeypatch.setenv(name, value)
    docs = tmp_path / "docs"
    monkeypatch.setenv("SEGPROVIDER_DOCS_DIR", str(docs))
    # dag.test() finds the DAG in the configured bundle (the process's DAGs folder, see
    # tests/conftest.py): this world's DAG file replaces the previous test's
    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "segments_centralized.py").write_text(
        "from airflow_segprovider.factory.centralized import build_centralized_dag\n"
        f"dag = build_centralized_dag({str(project)!r}, dag_id='segments_centralized')\n")
    yield World(project, warehouse, sandbox, alerts, docs)
    sandbox.stop()
    receiver.close()

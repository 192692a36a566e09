"""The world the hybrid-model tests run in: the example project, DuckDB, the sandbox, an alert receiver, Airflow.

Everything is real: Parquet landing files ingested by the project's sources, a DuckDB warehouse
file, the Mailchimp/HubSpot sandbox on loopback (its request log proves what was sent), a
loopback webhook receiving the notifier's alerts, and DAG runs through ``dag.test()``.
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
CUSTOMERS = 200
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


@dataclass
class HybridWorld:
    project: Path
    warehouse: Path
    sandbox: Any
    alerts: list[dict[str, Any]]
    _dags: dict[str, Any] = field(default_factory=dict, repr=False)

    def dag(self, dag_id: str):
        if dag_id not in self._dags:
            from airflow_segprovider.factory.hybrid import build_hybrid_dag
            from airflow_segprovider.factory.monitor import build_drift_monitor_dag

            build = build_hybrid_dag if dag_id == "segments_hybrid" else build_drift_monitor_dag
            self._dags[dag_id] = build(self.project, dag_id=dag_id)
        return self._dags[dag_id]

    def run(self, day: dt.datetime, dag_id: str = "segments_hybrid") -> dict[str, str]:
        """Run a DAG for ``day``; return ``task_id[map_index] -> state``."""
        return task_states(self.dag(dag_id).test(logical_date=day))

    def query(self, sql: str) -> list[tuple]:
        return query_warehouse(self.warehouse, sql)

    def writes(self, since: int = 0) -> list[Any]:
        """Requests after the ``since``-th that wrote to a vendor (batch reads are POSTs but change nothing)."""
        return [r for r in self.sandbox.state.requests()[since:] if r.method in WRITE_METHODS
                and "/__sandbox/" not in r.path and not r.path.endswith("/batch/read")]

    def set_customer(self, customer_id: int, **values: Any) -> None:
        """The CRM export changes a customer: the landing file is rewritten with new values for one row."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        path = next((self.project / "landing" / "customers").glob("*.parquet"))
        table = pq.read_table(path)
        mask = pc.equal(table["customer_id"], customer_id)
        for column, value in values.items():
            index = table.schema.get_field_index(column)
            new = pc.if_else(mask, value, table[column])
            table = table.set_column(index, table.schema.field(index), new.cast(table.schema.field(index).type))
        pq.write_table(table, path)


def make_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, mailchimp_ltv_type: str = "number"):
    from airflow_segprovider.cli.demo import connection_variables, sandbox_connections
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.example.generate import generate
    from airflow_segprovider.example.landing import write_landing_files
    from segprovider_sandbox import DemoFixtures, serve
    from support.sandbox import SANDBOX_CREDENTIALS

    project = tmp_path / "segments_project"
    shutil.copytree(EXAMPLE_PROJECT, project, ignore=shutil.ignore_patterns("landing"))
    upstream = DuckDBWarehouse(tmp_path / "upstream.duckdb")
    generate(upstream, CUSTOMERS, seed=5)
    write_landing_files(upstream, project / "landing")
    upstream.close()

    receiver = AlertReceiver()
    alerts = receiver.alerts

    sandbox = serve(db_path=tmp_path / "sandbox.db")
    fixtures = DemoFixtures()
    fields = tuple((tag, name, mailchimp_ltv_type if tag == "LTV" else kind)
                   for tag, name, kind in fixtures.mailchimp_merge_fields)
    sandbox.state.seed_demo_fixtures(DemoFixtures(mailchimp_merge_fields=fields))
    warehouse = tmp_path / "warehouse.duckdb"
    connections = sandbox_connections(warehouse, sandbox.url, receiver.url, SANDBOX_CREDENTIALS,
                                      retry={"backoff_base": 0.05, "backoff_max": 0.2, "max_attempts": 4})
    for name, value in connection_variables(connections).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SEGPROVIDER_DOCS_DIR", str(tmp_path / "docs"))
    # dag.test() finds DAGs in the configured DAGs folder: this world's DAG files replace earlier ones
    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    dags.mkdir(parents=True, exist_ok=True)
    for dag_id, module, builder in (("segments_hybrid", "hybrid", "build_hybrid_dag"),
                                    ("segments_drift_monitor", "monitor", "build_drift_monitor_dag")):
        (dags / f"{dag_id}.py").write_text(
            f"from airflow_segprovider.factory.{module} import {builder}\n"
            f"dag = {builder}({str(project)!r}, dag_id={dag_id!r})\n")
    world = HybridWorld(project, warehouse, sandbox, alerts)

    def stop() -> None:
        sandbox.stop()
        receiver.close()

    return world, stop

"""The hybrid model's operators: which runs may rebuild the hub and push (backfills and older runs never)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.example import EXAMPLE_PROJECT


def test_backfills_and_runs_older_than_the_hub_never_rebuild_or_push(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from airflow_segprovider.core.hybrid.build import HubBuilder
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.operators.hybrid import hybrid_historical_reason

    project = load_project(EXAMPLE_PROJECT)
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    warehouse.execute("CREATE TABLE customers (customer_id BIGINT, email VARCHAR, first_name VARCHAR, "
                      "country VARCHAR, lifetime_value DOUBLE)")
    warehouse.execute("CREATE TABLE events (customer_id BIGINT, occurred_at TIMESTAMP, event_type VARCHAR)")
    warehouse.execute("CREATE TABLE consents (customer_id BIGINT, channel VARCHAR, opted_in BOOLEAN, "
                      "updated_at TIMESTAMP)")
    scheduled = {"dag_run": SimpleNamespace(run_type="scheduled", run_id="scheduled__2026-11-24")}
    backfill = {"dag_run": SimpleNamespace(run_type="backfill", run_id="backfill__2026-11-20")}
    day = dt.datetime(2026, 11, 24)
    assert hybrid_historical_reason(scheduled, warehouse, day) is None  # no hub yet: the latest run builds it
    assert "backfill" in hybrid_historical_reason(backfill, warehouse, day)
    HubBuilder(project, warehouse).build(day)
    assert hybrid_historical_reason(scheduled, warehouse, day) is None  # a rerun of the latest interval
    assert "historical attributes are never pushed" in hybrid_historical_reason(
        scheduled, warehouse, day - dt.timedelta(days=1))
    warehouse.close()

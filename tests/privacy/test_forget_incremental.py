"""An erasure between two evaluations: the next one is full, and every snapshot's counts are its members.

``forget`` deletes the person's membership rows and their row of the incremental state, but keeps the counts
of past snapshots (``segprovider_snapshots``: history). An incremental run counts a snapshot's members as the
previous count plus added minus removed, so it went on counting the forgotten person on every later day while
listing one member fewer; the size gates read those counts. The erasure now drops the incremental state.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.privacy.erasure import forget
from airflow_segprovider.core.state.ingest import LOAD_COLUMN
from airflow_segprovider.core.state.membership import MEMBERSHIPS, SNAPSHOTS
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from support.engine_harness import write_project

DAY = dt.timedelta(days=1)
T1 = dt.datetime(2026, 3, 10, 6, 30)
MODEL: dict[str, Any] = {
    "customer": {"table": "customers", "key": "customer_id", "attributes": {"name": {"type": "string"}}},
    "event_tables": {"events": {"table": "events", "customer_key": "customer_id", "timestamp": "occurred_at",
                                "type_column": "event_type", "event_types": ["buy"], "properties": {}}},
}
SEGMENTS: list[dict[str, Any]] = [
    {"name": "buyers", "rule": {"event": "buy", "aggregate": "count", "op": "gte", "value": 1}},
    {"name": "named", "rule": {"attribute": "name", "op": "is_not_null"}},
]


def _counted_and_listed(warehouse: DuckDBWarehouse) -> list[tuple]:
    return warehouse.query(
        f"SELECT s.as_of, s.segment, s.members, (SELECT COUNT(*) FROM {MEMBERSHIPS} AS m "
        f"WHERE m.as_of = s.as_of AND m.segment = s.segment) FROM {SNAPSHOTS} AS s ORDER BY 1, 2")


def test_the_run_after_an_erasure_is_full_and_later_counts_are_the_members(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", SEGMENTS, model=MODEL)
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    try:
        warehouse.execute("CREATE TABLE customers (customer_id VARCHAR, name VARCHAR)")
        warehouse.execute(f"CREATE TABLE events (customer_id VARCHAR, event_type VARCHAR, occurred_at TIMESTAMP, "
                          f"{LOAD_COLUMN} VARCHAR)")
        warehouse.execute("INSERT INTO customers SELECT 'p' || i, 'n' FROM range(100) t(i)")
        warehouse.execute("INSERT INTO customers VALUES ('7', 'seven')")
        warehouse.execute(f"INSERT INTO events SELECT 'p' || i, 'buy', TIMESTAMP '{T1 - 3 * DAY}', 'l-0' "
                          "FROM range(100) t(i)")
        warehouse.execute(f"INSERT INTO events VALUES ('7', 'buy', TIMESTAMP '{T1 - 3 * DAY}', 'l-0')")
        assert evaluate(project, warehouse, T1).mode == "full"
        [erased] = forget(project, warehouse, ["7"], clients=lambda sync: None, salt="s" * 20,
                          requested_by="test")
        assert erased.status == "erased"
        second = evaluate(project, warehouse, T1 + DAY)
        assert second.mode == "full" and "erasure" in second.reason, second.reason
        assert evaluate(project, warehouse, T1 + 2 * DAY).mode == "incremental"
        later = [row for row in _counted_and_listed(warehouse) if row[0] > T1]
        assert later and all(counted == listed for _, _, counted, listed in later), later
        # the tables are read, not loaded, by the project: the person is still upstream (suppressed, never sent)
        assert {(segment, counted) for at, segment, counted, _ in later if at == T1 + 2 * DAY} == {
            ("buyers", 101), ("named", 101)}
    finally:
        warehouse.close()

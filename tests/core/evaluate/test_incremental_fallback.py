"""When incremental evaluation is used, when it falls back to a full one, and what the run record says.

Each case evaluates a small fixed project on real DuckDB: a first run, a day of new events, then the
situation under test. Whatever path a run takes, its snapshot must equal a full evaluation's.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from airflow_segprovider.core.evaluate import incremental
from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.state.incremental import RUNS
from airflow_segprovider.core.state.ingest import LOAD_COLUMN
from airflow_segprovider.core.state.membership import MembershipStore
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from support.engine_harness import write_project
from support.warehouse_matrix import copy_tables, stored

DAY = dt.timedelta(days=1)
AS_OF = dt.datetime(2026, 5, 1)
MODEL: dict[str, Any] = {
    "customer": {"table": "customers", "key": "customer_id",
                 "attributes": {"plan": {"type": "string"}, "seen_at": {"type": "timestamp"}}},
    "event_tables": {"events": {"table": "events", "customer_key": "customer_id", "timestamp": "occurred_at",
                                "type_column": "event_type", "event_types": ["view", "buy"],
                                "properties": {"revenue": "number"}}},
    "consent": {"table": "consents", "customer_key": "customer_id", "channel_column": "channel",
                "opted_in_column": "opted_in", "updated_at_column": "updated_at",
                "channels": {"email": {"require_opt_in": True}}},
}
SEGMENTS: list[dict[str, Any]] = [
    {"name": "viewers_7d", "rule": {"event": "view", "aggregate": "count", "within": "7d", "op": "gte", "value": 1}},
    {"name": "big_spenders", "rule": {"event": "buy", "aggregate": "sum", "property": "revenue", "op": "gte",
                                      "value": 100}},
    {"name": "recent_buyer", "rule": {"event": "buy", "aggregate": "last", "op": "within_last", "value": "3d"},
     "channels": ["email"]},
    {"name": "pro", "rule": {"attribute": "plan", "op": "eq", "value": "pro"}},
    {"name": "lapsed", "rule": {"attribute": "seen_at", "op": "more_than_ago", "value": "2d"}},
]


def _events(rows: list[tuple[str, str, dt.datetime, float | None]], load: str) -> pa.Table:
    return pa.table({"customer_id": [r[0] for r in rows], "event_type": [r[1] for r in rows],
                     "occurred_at": pa.array([r[2] for r in rows], pa.timestamp("us")),
                     "revenue": pa.array([r[3] for r in rows], pa.float64()), LOAD_COLUMN: [load] * len(rows)})


@pytest.fixture
def world(tmp_path: Path):
    project = write_project(tmp_path / "project", SEGMENTS, model=MODEL)
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    warehouse.execute("CREATE TABLE customers (customer_id VARCHAR, plan VARCHAR, seen_at TIMESTAMP)")
    warehouse.execute(f"CREATE TABLE events (customer_id VARCHAR, event_type VARCHAR, occurred_at TIMESTAMP, "
                      f"revenue DOUBLE, {LOAD_COLUMN} VARCHAR)")
    warehouse.execute(f"CREATE TABLE consents (customer_id VARCHAR, channel VARCHAR, opted_in BOOLEAN, "
                      f"updated_at TIMESTAMP, {LOAD_COLUMN} VARCHAR)")
    warehouse.execute("INSERT INTO customers SELECT 'c' || i, CASE WHEN i % 3 = 0 THEN 'pro' ELSE 'free' END, "
                      f"TIMESTAMP '{AS_OF}' - INTERVAL (i % 30) DAY FROM range(200) t(i)")
    warehouse.execute(f"INSERT INTO consents SELECT 'c' || i, 'email', i % 2 = 0, "
                      f"TIMESTAMP '{AS_OF}' - INTERVAL 10 DAY, 'consent-0' FROM range(200) t(i)")
    warehouse.load("events", _events([(f"c{i}", "view" if i % 2 else "buy", AS_OF - dt.timedelta(days=i % 30),
                                       float(i)) for i in range(200)], "load-0"))
    yield project, warehouse
    warehouse.close()


def _full_reference(project, warehouse: DuckDBWarehouse, at: dt.datetime, tmp_path: Path) -> dict:
    """The same data evaluated in full in a copy of the warehouse (its own store)."""
    copy = DuckDBWarehouse(str(tmp_path / f"ref-{at:%Y%m%d%H%M%S%f}.duckdb"))
    try:
        copy_tables(warehouse, copy, ["customers", "events", "consents"])
        evaluate(project, copy, at, run_id="reference", full=True)
        return stored(copy, at)
    finally:
        copy.close()


def _runs(warehouse: DuckDBWarehouse) -> list[tuple]:
    return warehouse.query(f"SELECT run_id, mode, reason FROM {RUNS} ORDER BY evaluated_at, run_id")


def test_first_run_is_full_and_the_next_day_incremental(world, tmp_path: Path) -> None:
    project, warehouse = world
    first = evaluate(project, warehouse, AS_OF, run_id="day-1")
    assert (first.mode, first.reason) == ("full", "first run: no incremental state yet (or an erasure dropped it)")
    written = stored(warehouse, AS_OF)
    warehouse.load("events", _events([("c1", "buy", AS_OF + DAY / 2, 500.0), ("c2", "view", AS_OF - 3 * DAY, None)],
                                     "load-1"))
    warehouse.execute("UPDATE customers SET plan = 'pro' WHERE customer_id = 'c4'")
    second = evaluate(project, warehouse, AS_OF + DAY, run_id="day-2")
    assert second.mode == "incremental", second.reason
    # c1 bought (new event), c2's late view, c4's plan, the 7-day window edge, seen_at crossing 2 days ago...
    assert second.touched is not None and 0 < second.touched < 70
    assert stored(warehouse, AS_OF + DAY) == _full_reference(project, warehouse, AS_OF + DAY, tmp_path)
    assert "c1" in MembershipStore(warehouse).changes("big_spenders", AS_OF + DAY)["added"]
    assert [(r, m) for r, m, _ in _runs(warehouse)] == [("day-1", "full"), ("day-2", "incremental")]
    # the earlier snapshot still reads as it was written, though the delta continues its write
    assert stored(warehouse, AS_OF) == written


def test_full_is_forced_on_request(world) -> None:
    project, warehouse = world
    evaluate(project, warehouse, AS_OF, run_id="day-1")
    result = evaluate(project, warehouse, AS_OF + DAY, run_id="day-2", full=True)
    assert (result.mode, result.reason) == ("full", "full evaluation requested")


def test_backfill_before_the_latest_snapshot_is_full_and_keeps_the_later_snapshot(world, tmp_path: Path) -> None:
    project, warehouse = world
    evaluate(project, warehouse, AS_OF, run_id="day-1")
    evaluate(project, warehouse, AS_OF + DAY, run_id="day-2")
    later = stored(warehouse, AS_OF + DAY)
    backfill = evaluate(project, warehouse, AS_OF - DAY, run_id="backfill")
    assert backfill.mode == "full" and "backfill" in backfill.reason
    assert stored(warehouse, AS_OF + DAY) == later
    # the state still belongs to the latest snapshot: the next day is incremental again, and exact
    third = evaluate(project, warehouse, AS_OF + 2 * DAY, run_id="day-3")
    assert third.mode == "incremental", third.reason
    assert stored(warehouse, AS_OF + 2 * DAY) == _full_reference(project, warehouse, AS_OF + 2 * DAY, tmp_path)


def test_rerun_of_the_latest_as_of_is_full_and_reproduces_it(world) -> None:
    project, warehouse = world
    evaluate(project, warehouse, AS_OF, run_id="day-1")
    evaluate(project, warehouse, AS_OF + DAY, run_id="day-2")
    before = stored(warehouse, AS_OF + DAY)
    again = evaluate(project, warehouse, AS_OF + DAY, run_id="day-2-again")
    assert again.mode == "full" and "re-run" in again.reason
    assert stored(warehouse, AS_OF + DAY) == before


def test_changed_rule_is_full(world, tmp_path: Path) -> None:
    project, warehouse = world
    evaluate(project, warehouse, AS_OF, run_id="day-1")
    changed = [dict(s) for s in SEGMENTS]
    changed[3] = {"name": "pro", "rule": {"attribute": "plan", "op": "in", "value": ["pro", "plus"]}}
    other = write_project(tmp_path / "changed", changed, model=MODEL)
    result = evaluate(other, warehouse, AS_OF + DAY, run_id="day-2")
    assert result.mode == "full" and "plan changed" in result.reason


def test_subset_of_segments_is_full_and_the_next_run_too(world) -> None:
    project, warehouse = world
    evaluate(project, warehouse, AS_OF, run_id="day-1")
    subset = evaluate(project, warehouse, AS_OF + DAY, run_id="day-2", segments=["pro"])
    assert subset.mode == "full" and "subset" in subset.reason
    # the latest snapshot of 'pro' is newer than the state: the state cannot be continued
    result = evaluate(project, warehouse, AS_OF + 2 * DAY, run_id="day-3")
    assert result.mode == "full" and "latest snapshot" in result.reason


def test_table_without_load_column_is_full(world) -> None:
    project, warehouse = world
    warehouse.execute(f"ALTER TABLE events DROP COLUMN {LOAD_COLUMN}")
    evaluate(project, warehouse, AS_OF, run_id="day-1")
    result = evaluate(project, warehouse, AS_OF + DAY, run_id="day-2")
    assert result.mode == "full" and f"events has no {LOAD_COLUMN}" in result.reason


def test_rewritten_load_is_full(world) -> None:
    project, warehouse = world
    evaluate(project, warehouse, AS_OF, run_id="day-1")
    warehouse.execute("DELETE FROM events WHERE customer_id = 'c3'")
    result = evaluate(project, warehouse, AS_OF + DAY, run_id="day-2")
    assert result.mode == "full" and "'load-0' of table events" in result.reason


def test_large_change_is_full(world, tmp_path: Path) -> None:
    project, warehouse = world
    evaluate(project, warehouse, AS_OF, run_id="day-1")
    warehouse.execute("UPDATE customers SET plan = 'pro'")  # every customer's attributes changed
    result = evaluate(project, warehouse, AS_OF + DAY, run_id="day-2")
    assert result.mode == "full" and "customers touched" in result.reason
    assert stored(warehouse, AS_OF + DAY) == _full_reference(project, warehouse, AS_OF + DAY, tmp_path)


def test_many_new_rows_are_full(world) -> None:
    project, warehouse = world
    evaluate(project, warehouse, AS_OF, run_id="day-1")
    warehouse.load("events", _events([(f"c{i}", "view", AS_OF + DAY / 2, None) for i in range(30)], "load-1"))
    result = evaluate(project, warehouse, AS_OF + DAY, run_id="day-2")
    assert result.mode == "full" and "new rows in events" in result.reason


def test_long_delta_chain_starts_a_new_full_write(world, monkeypatch: pytest.MonkeyPatch) -> None:
    project, warehouse = world
    monkeypatch.setattr(incremental.limits, "MAX_DELTA_SHARE", 0.01)
    evaluate(project, warehouse, AS_OF, run_id="day-1")
    warehouse.execute("UPDATE customers SET plan = 'pro' WHERE customer_id = 'c1'")
    assert evaluate(project, warehouse, AS_OF + DAY, run_id="day-2").mode == "incremental"
    result = evaluate(project, warehouse, AS_OF + 2 * DAY, run_id="day-3")
    assert result.mode == "full" and "delta rows" in result.reason


def test_consent_withdrawn_after_the_snapshot_removes_the_member(world, tmp_path: Path) -> None:
    project, warehouse = world
    warehouse.load("events", _events([("c0", "buy", AS_OF - DAY, 1.0)], "load-1"))
    evaluate(project, warehouse, AS_OF, run_id="day-1")
    assert "c0" in stored(warehouse, AS_OF)["recent_buyer"]
    warehouse.load("consents", pa.table({"customer_id": ["c0"], "channel": ["email"], "opted_in": [False],
                                         "updated_at": pa.array([AS_OF + DAY / 4], pa.timestamp("us")),
                                         LOAD_COLUMN: ["consent-1"]}))
    result = evaluate(project, warehouse, AS_OF + DAY / 2, run_id="day-2")
    assert result.mode == "incremental", result.reason
    assert "c0" not in stored(warehouse, AS_OF + DAY / 2).get("recent_buyer", {})
    assert stored(warehouse, AS_OF + DAY / 2) == _full_reference(project, warehouse, AS_OF + DAY / 2, tmp_path)

"""An evaluation reads one snapshot of the warehouse: a load another connection commits while it runs
is read by a later run, once, and never half by this one.

An evaluation counts the rows of each ingest load (``_segprovider_load``) of the tables it reads, then
reads the rows of the loads it had not seen, and records the counts as seen. At PostgreSQL's default
``READ COMMITTED`` a load committed between the count and the reads is read but not recorded, and the
next run reads it again: its sums and counts double. These tests commit a load through a second
connection in exactly that window (a warehouse that does so right after the load count: the real
adapter on the real server, nothing of the evaluation replaced) and check that the next day's
incremental snapshot equals a full evaluation of the same data, over psycopg2 and psycopg 3.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from airflow_segprovider.core.errors import TransientEvaluationError
from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.project.spec import Project
from airflow_segprovider.core.sql.dialects import text_literal
from airflow_segprovider.core.state import incremental as state_tables
from airflow_segprovider.core.state.ingest import LOAD_COLUMN
from airflow_segprovider.core.state.membership import SNAPSHOTS
from airflow_segprovider.core.warehouses.postgres import PostgresWarehouse
from support.engine_harness import write_project
from support.postgres import PG_DSN, pg_connect, postgres_schema
from support.warehouse_matrix import stored

DAY = dt.timedelta(days=1)
AS_OF = dt.datetime(2026, 5, 1)
CUSTOMERS = 200
MODEL: dict[str, Any] = {
    "customer": {"table": "customers", "key": "customer_id", "attributes": {"plan": {"type": "string"}}},
    "event_tables": {"events": {"table": "events", "customer_key": "customer_id", "timestamp": "occurred_at",
                                "type_column": "event_type", "event_types": ["view", "buy"],
                                "properties": {"revenue": "number"}}},
}
# A buy of 60 counted once leaves a customer out of both; counted twice puts them in.
SEGMENTS: list[dict[str, Any]] = [
    {"name": "big_spenders", "rule": {"event": "buy", "aggregate": "sum", "property": "revenue", "op": "gte",
                                      "value": 100}},
    {"name": "two_buys", "rule": {"event": "buy", "aggregate": "count", "op": "gte", "value": 2}},
    {"name": "viewers_7d", "rule": {"event": "view", "aggregate": "count", "within": "7d", "op": "gte", "value": 1}},
    {"name": "pro", "rule": {"attribute": "plan", "op": "eq", "value": "pro"}},
]
#: customers with views only: one buy of 60 each arrives while an evaluation runs
LATE_BUYERS = ("c1", "c3", "c5")


def _events(rows: list[tuple[str, str, dt.datetime, float | None]], load: str) -> pa.Table:
    return pa.table({"customer_id": [r[0] for r in rows], "event_type": [r[1] for r in rows],
                     "occurred_at": pa.array([r[2] for r in rows], pa.timestamp("us")),
                     "revenue": pa.array([r[3] for r in rows], pa.float64()), LOAD_COLUMN: [load] * len(rows)})


def _is_load_count_of_events(sql: str) -> bool:
    # the evaluation's count of rows per load, e.g. SELECT COALESCE(CAST("_segprovider_load" AS VARCHAR), '')
    # AS l, COUNT(*) FROM "t_..."."events" GROUP BY COALESCE(...)
    return LOAD_COLUMN in sql and "COUNT(*)" in sql and '."events" GROUP BY' in sql


class WarehouseWithAConcurrentWriter(PostgresWarehouse):
    """The real PostgreSQL adapter; once armed, right after the evaluation's count of rows per load of
    ``events`` (inside its transaction, before it reads the new loads' rows), it runs ``concurrently``,
    which commits through another connection."""

    concurrently: Callable[[], None] | None = None
    fired_in_transaction: bool | None = None

    def query(self, sql: str, parameters: Any = None) -> list[tuple[Any, ...]]:
        rows = super().query(sql, parameters)
        if self.concurrently is not None and _is_load_count_of_events(sql):
            action, self.concurrently = self.concurrently, None
            self.fired_in_transaction = self._in_transaction
            action()
        return rows


World = tuple[Project, WarehouseWithAConcurrentWriter, PostgresWarehouse]


@pytest.fixture(params=["psycopg2", "psycopg3"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """The project, the evaluating warehouse (over each driver) and a second connection's warehouse, one schema."""
    project = write_project(tmp_path / "project", SEGMENTS, model=MODEL)
    with postgres_schema() as schema:
        if request.param == "psycopg2":
            connection = pg_connect()
        else:
            import psycopg

            connection = psycopg.connect(PG_DSN)
        warehouse = WarehouseWithAConcurrentWriter(connection, schema=schema)
        other = PostgresWarehouse(pg_connect(), schema=schema)
        try:
            warehouse.execute("CREATE TABLE customers (customer_id VARCHAR, plan VARCHAR)")
            warehouse.execute(f"CREATE TABLE events (customer_id VARCHAR, event_type VARCHAR, "
                              f"occurred_at TIMESTAMP, revenue DOUBLE PRECISION, {LOAD_COLUMN} VARCHAR)")
            warehouse.execute(f"INSERT INTO customers SELECT 'c' || i, CASE WHEN i % 3 = 0 THEN 'pro' ELSE 'free' END "
                              f"FROM generate_series(0, {CUSTOMERS - 1}) AS t(i)")
            # even customers bought (revenue i), odd ones viewed, one event each
            warehouse.load("events", _events([(f"c{i}", "view" if i % 2 else "buy",
                                               AS_OF - dt.timedelta(days=i % 30), None if i % 2 else float(i))
                                              for i in range(CUSTOMERS)], "load-0"))
            yield project, warehouse, other
        finally:
            other.close()
            warehouse.close()


def _commit_late_buys(other: PostgresWarehouse) -> Callable[[], None]:
    def commit() -> None:  # the other connection is in autocommit: the COPY is committed when it returns
        other.load("events", _events([(key, "buy", AS_OF - dt.timedelta(hours=2), 60.0) for key in LATE_BUYERS],
                                     "late-load"))
    return commit


def _assert_equals_a_full_evaluation(project: Project, warehouse: PostgresWarehouse, at: dt.datetime) -> None:
    incremental_members = stored(warehouse, at)
    evaluate(project, warehouse, at, run_id="reference", full=True)  # rewrites the snapshot at ``at`` in full
    full_members = stored(warehouse, at)
    for segment in ("big_spenders", "two_buys"):
        doubled = sorted(set(incremental_members.get(segment, {})) & set(LATE_BUYERS))
        assert not doubled, f"{segment}: the late load was counted twice for {doubled}"
    assert incremental_members == full_members


def test_a_load_committed_during_an_incremental_run_is_counted_once(world: World) -> None:
    project, warehouse, other = world
    assert evaluate(project, warehouse, AS_OF, run_id="day-1").mode == "full"
    warehouse.concurrently = _commit_late_buys(other)
    second = evaluate(project, warehouse, AS_OF + DAY, run_id="day-2")
    assert warehouse.fired_in_transaction is True  # the load was committed inside the evaluation
    assert second.mode == "incremental", second.reason
    third = evaluate(project, warehouse, AS_OF + 2 * DAY, run_id="day-3")
    assert third.mode == "incremental", third.reason
    _assert_equals_a_full_evaluation(project, warehouse, AS_OF + 2 * DAY)


def test_a_load_committed_during_a_full_run_that_keeps_the_state_is_counted_once(world: World) -> None:
    project, warehouse, other = world
    warehouse.concurrently = _commit_late_buys(other)
    first = evaluate(project, warehouse, AS_OF, run_id="day-1")
    assert warehouse.fired_in_transaction is True
    assert first.mode == "full" and first.touched == CUSTOMERS  # a full run that keeps the state
    second = evaluate(project, warehouse, AS_OF + DAY, run_id="day-2")
    assert second.mode == "incremental", second.reason
    _assert_equals_a_full_evaluation(project, warehouse, AS_OF + DAY)


def test_a_concurrent_write_to_the_state_fails_the_run_as_transient_and_a_retry_succeeds(world: World) -> None:
    project, warehouse, other = world
    evaluate(project, warehouse, AS_OF, run_id="day-1")

    def another_run_saves_its_state() -> None:
        other.execute(f"UPDATE {state_tables.STATE} SET run_id = {text_literal('concurrent')}")

    warehouse.concurrently = another_run_saves_its_state
    with pytest.raises(TransientEvaluationError) as failed:
        evaluate(project, warehouse, AS_OF + DAY, run_id="day-2")
    cause = failed.value.__cause__
    assert (getattr(cause, "pgcode", None) or getattr(cause, "sqlstate", None)) == "40001", repr(cause)
    assert warehouse.query(f"SELECT COUNT(*) FROM {SNAPSHOTS} WHERE run_id = 'day-2'") == [(0,)]  # nothing written
    retried = evaluate(project, warehouse, AS_OF + DAY, run_id="day-2")
    assert retried.mode == "incremental", retried.reason
    _assert_equals_a_full_evaluation(project, warehouse, AS_OF + DAY)


def test_a_snapshot_transaction_runs_at_repeatable_read_and_a_plain_one_at_the_default(world: World) -> None:
    _project, warehouse, _other = world
    with warehouse.transaction(snapshot=True):
        assert warehouse.query("SHOW transaction_isolation") == [("repeatable read",)]
        with warehouse.transaction():  # nested use joins the snapshot
            assert warehouse.query("SHOW transaction_isolation") == [("repeatable read",)]
    with warehouse.transaction():
        assert warehouse.query("SHOW transaction_isolation") == [("read committed",)]


def test_a_snapshot_cannot_join_a_transaction_begun_without_one() -> None:
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

    warehouse = DuckDBWarehouse(":memory:")
    try:
        warehouse.execute("CREATE TABLE t (x INTEGER)")
        with pytest.raises(RuntimeError, match="begun without a snapshot"), warehouse.transaction():
            warehouse.execute("INSERT INTO t VALUES (1)")
            with warehouse.transaction(snapshot=True):
                pass
        assert warehouse.query("SELECT COUNT(*) FROM t") == [(0,)]  # the outer transaction rolled back
    finally:
        warehouse.close()

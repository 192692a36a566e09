"""Incremental runs when an event or consent table types the customer key otherwise than the customer table.

A full evaluation joins a source's key to the customers' with the warehouse's own equality, so ``7.0`` in a
``DOUBLE`` column or ``'7'`` in a ``VARCHAR`` one is the customer ``7``. Incremental runs must find the same
customer: before, they looked the stored membership up by the event key's text (``'7.0'`` is not ``'7'``: the
member was stored twice and never removed) or compared keys with ``IN`` (DuckDB refuses ``VARCHAR IN
(INTEGER)``: every incremental run failed). A column type changed since the state was kept makes the next run
full. Each run here is compared with a full evaluation of the same data in a second warehouse, on DuckDB
(several type pairs) and PostgreSQL (``integer`` customers, ``numeric`` events).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.state.ingest import LOAD_COLUMN
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.core.warehouses.postgres import PostgresWarehouse
from support.engine_harness import write_project
from support.postgres import pg_connect, postgres_schema
from support.warehouse_matrix import stored

DAY = dt.timedelta(days=1)
T1 = dt.datetime(2026, 3, 10, 6, 30)
MODEL: dict[str, Any] = {
    "customer": {"table": "customers", "key": "customer_id", "attributes": {"name": {"type": "string"}}},
    "event_tables": {"events": {"table": "events", "customer_key": "customer_id", "timestamp": "occurred_at",
                                "type_column": "event_type", "event_types": ["buy"], "properties": {}}},
    "consent": {"table": "consents", "customer_key": "customer_id", "channel_column": "channel",
                "opted_in_column": "opted_in", "updated_at_column": "updated_at",
                "channels": {"email": {"require_opt_in": True}}},
}
SEGMENTS: list[dict[str, Any]] = [
    {"name": "buy1d", "rule": {"event": "buy", "aggregate": "count", "within": "1d", "op": "gte", "value": 1}},
    {"name": "named", "rule": {"attribute": "name", "op": "is_not_null"}, "channels": ["email"]},
]
#: (customer key type, event and consent key type, how a key is written in each): pairs a join compares
DUCKDB_PAIRS = {
    "integer-double": ("INTEGER", "DOUBLE", "{i}", "{i}.0"),
    "integer-varchar": ("INTEGER", "VARCHAR", "{i}", "'{i}'"),
    "varchar-bigint": ("VARCHAR", "BIGINT", "'{i}'", "{i}"),
    "bigint-decimal": ("BIGINT", "DECIMAL(18, 2)", "{i}", "{i}.00"),
    "uuid-varchar": ("UUID", "VARCHAR", "'00000000-0000-0000-0000-{i:012d}'", "'00000000-0000-0000-0000-{i:012d}'"),
}


class Pair:
    """Two warehouses fed the same statements: one evaluated as it chooses, one in full each time."""

    def __init__(self, project, chosen, full) -> None:
        self.project, self.chosen, self.full = project, chosen, full

    def sql(self, statement: str) -> None:
        for warehouse in (self.chosen, self.full):
            warehouse.execute(statement)

    def day(self, at: dt.datetime, mode: str) -> dict:
        result = evaluate(self.project, self.chosen, at, run_id=f"run-{at:%d}")
        assert result.mode == mode, result.reason
        evaluate(self.project, self.full, at, run_id=f"run-{at:%d}", full=True)
        chosen = stored(self.chosen, at)  # also refuses a key stored twice
        assert chosen == stored(self.full, at)
        return chosen


def _fill(pair: Pair, customer: str, event: str) -> None:
    """Customers 7, 8 and 100-199, all opted in to e-mail; 40 old events in a load seen on day 1 (they keep
    the later runs under the share of touched customers that would make them full)."""
    keys = (7, 8, *range(100, 200))
    pair.sql("INSERT INTO customers VALUES " + ", ".join(f"({customer.format(i=i)}, 'n{i}')" for i in keys))
    pair.sql("INSERT INTO consents VALUES " + ", ".join(
        f"({event.format(i=i)}, 'email', TRUE, TIMESTAMP '2026-01-01', 'c-0')" for i in keys))
    pair.sql("INSERT INTO events VALUES " + ", ".join(
        f"({event.format(i=i)}, 'buy', TIMESTAMP '2025-01-01', 'load-0')" for i in range(100, 140)))


def _walk_three_days(pair: Pair, customer: str, event: str) -> None:
    seven = customer.format(i=7).strip("'")
    _fill(pair, customer, event)
    pair.sql(f"INSERT INTO events VALUES ({event.format(i=7)}, 'buy', TIMESTAMP '{T1 - dt.timedelta(hours=1)}', "
             "'load-0')")
    assert seven in pair.day(T1, "full")["buy1d"]
    # day 2: a new buy keeps 7 in; customer 8 opts out of e-mail (a consent row keyed by the source's type)
    pair.sql(f"INSERT INTO events VALUES ({event.format(i=7)}, 'buy', TIMESTAMP '{T1 + dt.timedelta(hours=20)}', "
             "'l-1')")
    pair.sql(f"INSERT INTO consents VALUES ({event.format(i=8)}, 'email', FALSE, "
             f"TIMESTAMP '{T1 + DAY - dt.timedelta(hours=1)}', 'c-1')")
    second = pair.day(T1 + DAY, "incremental")
    assert seven in second["buy1d"] and customer.format(i=8).strip("'") not in second["named"]
    # day 3: the buy leaves the 1-day window: 7 is removed, once
    assert seven not in pair.day(T1 + 2 * DAY, "incremental").get("buy1d", {})


@pytest.mark.parametrize("pair_name", sorted(DUCKDB_PAIRS))
def test_duckdb_key_types_that_a_join_compares(pair_name: str, tmp_path: Path) -> None:
    customer_type, event_type, customer, event = DUCKDB_PAIRS[pair_name]
    project = write_project(tmp_path / "project", SEGMENTS, model=MODEL)
    warehouses = [DuckDBWarehouse(str(tmp_path / f"{side}.duckdb")) for side in ("chosen", "full")]
    pair = Pair(project, *warehouses)
    try:
        pair.sql(f"CREATE TABLE customers (customer_id {customer_type}, name VARCHAR)")
        pair.sql(f"CREATE TABLE events (customer_id {event_type}, event_type VARCHAR, occurred_at TIMESTAMP, "
                 f"{LOAD_COLUMN} VARCHAR)")
        pair.sql(f"CREATE TABLE consents (customer_id {event_type}, channel VARCHAR, opted_in BOOLEAN, "
                 f"updated_at TIMESTAMP, {LOAD_COLUMN} VARCHAR)")
        _walk_three_days(pair, customer, event)
    finally:
        for warehouse in warehouses:
            warehouse.close()


def test_postgres_integer_customers_and_numeric_events(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", SEGMENTS, model=MODEL)
    with postgres_schema() as chosen_schema, postgres_schema() as full_schema:
        warehouses = [PostgresWarehouse(pg_connect(), schema=schema) for schema in (chosen_schema, full_schema)]
        pair = Pair(project, *warehouses)
        try:
            pair.sql("CREATE TABLE customers (customer_id INTEGER, name VARCHAR)")
            pair.sql(f"CREATE TABLE events (customer_id NUMERIC, event_type VARCHAR, occurred_at TIMESTAMP, "
                     f"{LOAD_COLUMN} VARCHAR)")
            pair.sql(f"CREATE TABLE consents (customer_id NUMERIC, channel VARCHAR, opted_in BOOLEAN, "
                     f"updated_at TIMESTAMP, {LOAD_COLUMN} VARCHAR)")
            for i in (7, 8):
                pair.sql(f"INSERT INTO customers VALUES ({i}, 'n{i}')")
                pair.sql(f"INSERT INTO consents VALUES ({i}.0, 'email', TRUE, TIMESTAMP '2026-01-01', 'c-0')")
            pair.sql("INSERT INTO customers SELECT i, 'n' || i FROM generate_series(100, 199) AS t(i)")
            pair.sql("INSERT INTO consents SELECT i, 'email', TRUE, TIMESTAMP '2026-01-01', 'c-0' "
                     "FROM generate_series(100, 199) AS t(i)")
            pair.sql("INSERT INTO events SELECT i, 'buy', TIMESTAMP '2025-01-01', 'load-0' "
                     "FROM generate_series(100, 139) AS t(i)")
            pair.sql(f"INSERT INTO events VALUES (7.0, 'buy', TIMESTAMP '{T1 - dt.timedelta(hours=1)}', 'load-0')")
            assert "7" in pair.day(T1, "full")["buy1d"]
            pair.sql(f"INSERT INTO events VALUES (7.00, 'buy', TIMESTAMP '{T1 + dt.timedelta(hours=20)}', 'l-1')")
            pair.sql(f"INSERT INTO consents VALUES (8.0, 'email', FALSE, "
                     f"TIMESTAMP '{T1 + DAY - dt.timedelta(hours=1)}', 'c-1')")
            second = pair.day(T1 + DAY, "incremental")
            assert "7" in second["buy1d"] and "8" not in second["named"]
            assert "7" not in pair.day(T1 + 2 * DAY, "incremental").get("buy1d", {})
        finally:
            for warehouse in warehouses:
                warehouse.close()


def test_a_key_type_changed_since_the_state_makes_the_next_run_full(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", SEGMENTS, model=MODEL)
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    try:
        warehouse.execute("CREATE TABLE customers (customer_id VARCHAR, name VARCHAR)")
        warehouse.execute(f"CREATE TABLE events (customer_id VARCHAR, event_type VARCHAR, occurred_at TIMESTAMP, "
                          f"{LOAD_COLUMN} VARCHAR)")
        warehouse.execute(f"CREATE TABLE consents (customer_id VARCHAR, channel VARCHAR, opted_in BOOLEAN, "
                          f"updated_at TIMESTAMP, {LOAD_COLUMN} VARCHAR)")
        warehouse.execute("INSERT INTO customers SELECT CAST(i AS VARCHAR), 'n' || i FROM range(100) t(i)")
        warehouse.execute(f"INSERT INTO events SELECT CAST(i AS VARCHAR), 'buy', TIMESTAMP '{T1}' - INTERVAL 2 HOUR, "
                          "'load-0' FROM range(50) t(i)")
        assert evaluate(project, warehouse, T1).mode == "full"
        for table in ("customers", "events", "consents"):  # the keys migrated to integers
            warehouse.execute(f"ALTER TABLE {table} ALTER customer_id TYPE BIGINT")
        result = evaluate(project, warehouse, T1 + DAY)
        assert result.mode == "full" and "plan changed" in result.reason
        assert "a column type" in result.reason
        assert evaluate(project, warehouse, T1 + 2 * DAY).mode == "incremental"
    finally:
        warehouse.close()


def test_keys_that_do_not_convert_in_rows_the_plan_does_not_read(tmp_path: Path) -> None:
    """Integer customers, text-keyed events and consent: a new load's late event of a guest ('guest-1', older
    than the rule's window) and a guest's answer on a channel no segment uses. A full evaluation never reads
    those rows, so their keys never meet the customers'; the incremental run must not either (it failed on
    every retry: "Could not convert string 'guest-1' to INT32")."""
    project = write_project(tmp_path / "project", SEGMENTS, model=MODEL)
    warehouses = [DuckDBWarehouse(str(tmp_path / f"{side}.duckdb")) for side in ("chosen", "full")]
    pair = Pair(project, *warehouses)
    try:
        pair.sql("CREATE TABLE customers (customer_id INTEGER, name VARCHAR)")
        pair.sql(f"CREATE TABLE events (customer_id VARCHAR, event_type VARCHAR, occurred_at TIMESTAMP, "
                 f"{LOAD_COLUMN} VARCHAR)")
        pair.sql(f"CREATE TABLE consents (customer_id VARCHAR, channel VARCHAR, opted_in BOOLEAN, "
                 f"updated_at TIMESTAMP, {LOAD_COLUMN} VARCHAR)")
        _fill(pair, "{i}", "'{i}'")
        pair.day(T1, "full")
        pair.sql(f"INSERT INTO events VALUES ('guest-1', 'buy', TIMESTAMP '{T1 - 30 * DAY}', 'l-1'), "
                 f"('7', 'buy', TIMESTAMP '{T1 + dt.timedelta(hours=3)}', 'l-1')")
        pair.sql(f"INSERT INTO consents VALUES ('anon-1', 'cookies', TRUE, TIMESTAMP '{T1 + dt.timedelta(hours=1)}', "
                 "'c-1')")
        assert "7" in pair.day(T1 + DAY, "incremental")["buy1d"]
    finally:
        for warehouse in warehouses:
            warehouse.close()

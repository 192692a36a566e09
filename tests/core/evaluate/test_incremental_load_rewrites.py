"""Rows of an ingest load the incremental state has seen, changed in place with the load's row count kept:
the next run must be full (docs/segments-language.md, "Incremental evaluation"), and its snapshot equal a
full evaluation's. The state records per load its rows and a checksum of the columns the plan reads.

Each case: day 1 full, the change, day 2 full with a reason naming the table and load, the snapshot compared
with ``full=True`` on a copy of the data. About 100 untouched filler customers keep the default limits
(new rows, touched customers) from forcing a full run for another reason.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from airflow_segprovider.core.errors import TransientEvaluationError
from airflow_segprovider.core.evaluate import engine, incremental
from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.evaluate.incremental import state as incremental_state
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.sql.dialects import render
from airflow_segprovider.core.state.incremental import LOADS
from airflow_segprovider.core.state.ingest import LOAD_COLUMN
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from support.engine_harness import write_project
from support.postgres import postgres_warehouse
from support.warehouse_matrix import copy_tables, stored

DAY1 = dt.datetime(2026, 3, 10)
DAY2 = DAY1 + dt.timedelta(days=1)
DAY3 = DAY2 + dt.timedelta(days=1)
TABLES = ["customers", "events", "consents"]
MODEL: dict[str, Any] = {
    "customer": {"table": "customers", "key": "customer_id", "attributes": {"score": {"type": "number"}}},
    "event_tables": {"events": {"table": "events", "customer_key": "customer_id", "timestamp": "occurred_at",
                                "type_column": "event_type", "event_types": ["view", "buy"],
                                "properties": {"revenue": "number"}}},
    "consent": {"table": "consents", "customer_key": "customer_id", "channel_column": "channel",
                "opted_in_column": "opted_in", "updated_at_column": "updated_at",
                "channels": {"email": {"require_opt_in": True}}},
}
SEGMENTS: list[dict[str, Any]] = [
    {"name": "buyers", "rule": {"event": "buy", "aggregate": "count", "op": "gte", "value": 1}},
    {"name": "twice", "rule": {"event": "buy", "aggregate": "count", "op": "gte", "value": 2}},
    {"name": "mailable", "rule": {"attribute": "score", "op": "gte", "value": 0}, "channels": ["email"]},
]
#: ``note`` is a column of events no rule reads
SCHEMA = {
    "customers": "customer_id VARCHAR, score DOUBLE",
    "events": f"customer_id VARCHAR, occurred_at TIMESTAMP, event_type VARCHAR, revenue DOUBLE, note VARCHAR, "
              f"{LOAD_COLUMN} VARCHAR",
    "consents": f"customer_id VARCHAR, channel VARCHAR, opted_in BOOLEAN, updated_at TIMESTAMP, {LOAD_COLUMN} VARCHAR",
}
DATA = [
    "INSERT INTO customers VALUES ('c1', 1), ('c2', 2), ('c3', 3)",
    "INSERT INTO events VALUES ('c1', TIMESTAMP '2026-03-01 10:00:00', 'buy', 5, 'x', 'src:file1.csv'), "
    "('anon-9', TIMESTAMP '2026-03-02 10:00:00', 'buy', 5, 'x', 'src:file1.csv'), "
    "('anon-9', TIMESTAMP '2026-03-02 10:00:00', 'buy', 5, 'x', 'src:file1.csv')",
    "INSERT INTO consents VALUES ('c3', 'email', TRUE, TIMESTAMP '2026-03-01 00:00:00', 'consents:page1')",
]


def _fill(execute) -> None:
    for table, columns in SCHEMA.items():
        execute(f"CREATE TABLE {table} ({columns})")
    values = ", ".join(f"('p{i}', 0)" for i in range(100))
    execute(f"INSERT INTO customers VALUES {values}")
    values = ", ".join(f"('p{i}', TIMESTAMP '2025-01-01 00:00:00', 'buy', 1, NULL, 'L0')" for i in range(100))
    execute(f"INSERT INTO events VALUES {values}")
    for statement in DATA:
        execute(statement)


@pytest.fixture
def world(tmp_path: Path):
    project = write_project(tmp_path / "project", SEGMENTS, model=MODEL)
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    _fill(warehouse.execute)
    first = evaluate(project, warehouse, DAY1, run_id="day-1")
    assert first.mode == "full"
    yield project, warehouse
    warehouse.close()


def _full_reference(project, warehouse, at: dt.datetime, tmp_path: Path) -> dict:
    copy = DuckDBWarehouse(str(tmp_path / f"ref-{at:%Y%m%d}.duckdb"))
    try:
        copy_tables(warehouse, copy, TABLES)
        evaluate(project, copy, at, run_id="reference", full=True)
        return stored(copy, at)
    finally:
        copy.close()


def _day2_is_full_and_exact(project, warehouse, tmp_path: Path, table: str, load: str) -> None:
    result = evaluate(project, warehouse, DAY2, run_id="day-2")
    assert result.mode == "full", result.reason
    assert f"load {load!r} of table {table}" in result.reason and "changed" in result.reason
    assert stored(warehouse, DAY2) == _full_reference(project, warehouse, DAY2, tmp_path)
    # the state now holds the new checksums: the next day continues incrementally
    assert evaluate(project, warehouse, DAY3, run_id="day-3").mode == "incremental"


def test_a_file_redelivered_under_the_same_load_with_corrected_rows_is_full(world, tmp_path: Path) -> None:
    project, warehouse = world
    warehouse.execute(f"DELETE FROM events WHERE {LOAD_COLUMN} = 'src:file1.csv'")
    warehouse.execute("INSERT INTO events VALUES ('c2', TIMESTAMP '2026-03-01 10:00:00', 'buy', 5, 'x', "
                      "'src:file1.csv'), ('anon-9', TIMESTAMP '2026-03-02 10:00:00', 'buy', 5, 'x', 'src:file1.csv'), "
                      "('anon-9', TIMESTAMP '2026-03-02 10:00:00', 'buy', 5, 'x', 'src:file1.csv')")
    _day2_is_full_and_exact(project, warehouse, tmp_path, "events", "src:file1.csv")
    assert "c2" in stored(warehouse, DAY2)["buyers"] and "c1" not in stored(warehouse, DAY2)["buyers"]


def test_events_rekeyed_in_place_are_full(world, tmp_path: Path) -> None:
    project, warehouse = world
    # identity stitching: both (identical) events of an anonymous id are a known customer's; a checksum that
    # XORed the row hashes would not see it (two equal rows cancel out before and after)
    warehouse.execute("UPDATE events SET customer_id = 'c3' WHERE customer_id = 'anon-9'")
    _day2_is_full_and_exact(project, warehouse, tmp_path, "events", "src:file1.csv")
    assert "c3" in stored(warehouse, DAY2)["twice"]


def test_a_consent_answer_corrected_in_place_is_full(world, tmp_path: Path) -> None:
    project, warehouse = world
    warehouse.execute("UPDATE consents SET opted_in = FALSE WHERE customer_id = 'c3'")
    _day2_is_full_and_exact(project, warehouse, tmp_path, "consents", "consents:page1")
    assert "c3" not in stored(warehouse, DAY2).get("mailable", {})


def test_a_column_no_rule_reads_changed_in_place_keeps_the_run_incremental(world, tmp_path: Path) -> None:
    project, warehouse = world
    warehouse.execute("UPDATE events SET note = 'corrected'")
    result = evaluate(project, warehouse, DAY2, run_id="day-2")
    assert result.mode == "incremental", result.reason
    assert stored(warehouse, DAY2) == _full_reference(project, warehouse, DAY2, tmp_path)


def test_a_state_table_without_checksums_is_upgraded_and_the_next_run_is_full(world, tmp_path: Path) -> None:
    """A loads table kept by an earlier version (no ``checksum`` column): ensure_tables adds the column, a
    NULL checksum is unknown, so the run is full (and records the checksums); the one after is incremental."""
    project, warehouse = world
    warehouse.execute(f"ALTER TABLE {LOADS} DROP COLUMN checksum")
    result = evaluate(project, warehouse, DAY2, run_id="day-2")
    assert result.mode == "full" and "no checksum" in result.reason, result.reason
    assert "checksum" in {c.lower() for c in warehouse.columns(LOADS)}
    assert stored(warehouse, DAY2) == _full_reference(project, warehouse, DAY2, tmp_path)
    assert warehouse.query(f"SELECT COUNT(*) FROM {LOADS} WHERE checksum IS NULL")[0][0] == 0
    assert evaluate(project, warehouse, DAY3, run_id="day-3").mode == "incremental"


def test_a_rewrite_while_the_run_read_makes_it_write_nothing(world) -> None:
    """Where the run stages before its transaction (Snowflake, BigQuery), the loads are counted again after
    staging: a seen load rewritten in place meanwhile (same count) must be caught there too."""
    project, warehouse = world
    original = incremental.stage

    def stage_then_rewrite(*args, **kwargs):
        out = original(*args, **kwargs)
        warehouse.execute("UPDATE events SET customer_id = 'c3' WHERE customer_id = 'anon-9'")
        return out

    with mock.patch.object(engine, "ddl_outside_transaction", return_value=True), \
            mock.patch.object(incremental_state, "ddl_outside_transaction", return_value=True), \
            mock.patch.object(incremental, "stage", stage_then_rewrite), \
            pytest.raises(TransientEvaluationError, match="while this evaluation read them"):
        evaluate(project, warehouse, DAY2, run_id="day-2")


def test_a_file_redelivered_through_ingest_is_full(tmp_path: Path) -> None:
    """Through the project's own ingest: append mode replaces a re-delivered file's rows under its load id."""
    from airflow_segprovider.ingest import ingest_source

    landing = tmp_path / "project" / "landing"
    landing.mkdir(parents=True)
    model = {"customer": {"table": "customers", "key": "customer_id", "attributes": {"name": {"type": "string"}}},
             "event_tables": {"events": {"table": "events", "customer_key": "customer_id",
                                         "timestamp": "occurred_at", "type_column": "event_type",
                                         "event_types": ["buy"], "properties": {}}}}
    write_project(tmp_path / "project", SEGMENTS[:1], model=model)
    (tmp_path / "project" / "sources.yml").write_text(
        "sources:\n"
        "  - {name: crm, table: customers, kind: file, format: csv, path: landing/customers*.csv}\n"
        "  - {name: shop, table: events, kind: file, format: csv, path: landing/events*.csv}\n")
    project = load_project(tmp_path / "project")
    (landing / "customers.csv").write_text("customer_id,name\n" + "".join(f"p{i},pad\n" for i in range(100)) +
                                           "c1,a\nc2,b\n")
    (landing / "events_0000.csv").write_text("customer_id,occurred_at,event_type\n" + "".join(
        f"p{i},2025-01-01 00:00:00,buy\n" for i in range(100)))
    (landing / "events_0301.csv").write_text("customer_id,occurred_at,event_type\nc1,2026-03-01 10:00:00,buy\n")
    warehouse = DuckDBWarehouse(str(tmp_path / "w.duckdb"))
    try:
        for source in ("crm", "shop"):
            ingest_source(project, warehouse, source, now=DAY1)
        assert evaluate(project, warehouse, DAY1, run_id="day-1").mode == "full"
        # the shop corrects the file and delivers it again: the purchase was c2's
        (landing / "events_0301.csv").write_text("customer_id,occurred_at,event_type\nc2,2026-03-01 10:00:00,buy\n")
        for source in ("crm", "shop"):
            ingest_source(project, warehouse, source, now=DAY2)
        [(load,)] = warehouse.query(f"SELECT DISTINCT {LOAD_COLUMN} FROM events WHERE customer_id = 'c2'")
        result = evaluate(project, warehouse, DAY2, run_id="day-2")
        assert result.mode == "full" and f"load {load!r} of table events" in result.reason, result.reason
        assert set(stored(warehouse, DAY2)["buyers"]) & {"c1", "c2"} == {"c2"}
    finally:
        warehouse.close()


def test_events_rekeyed_in_place_on_postgres_are_full(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", SEGMENTS, model=MODEL)
    with postgres_warehouse() as warehouse, postgres_warehouse() as reference:
        _fill(lambda sql: warehouse.execute(render(sql, "postgres")))
        assert evaluate(project, warehouse, DAY1, run_id="day-1").mode == "full"
        warehouse.execute("UPDATE events SET customer_id = 'c3' WHERE customer_id = 'anon-9'")
        result = evaluate(project, warehouse, DAY2, run_id="day-2")
        assert result.mode == "full", result.reason
        assert "load 'src:file1.csv' of table events" in result.reason and "changed" in result.reason
        copy_tables(warehouse, reference, TABLES)
        evaluate(project, reference, DAY2, run_id="reference", full=True)
        assert stored(warehouse, DAY2) == stored(reference, DAY2)
        assert "c3" in stored(warehouse, DAY2)["twice"]
        assert evaluate(project, warehouse, DAY3, run_id="day-3").mode == "incremental"


def test_postgres_checksum_sees_swapped_values_and_a_zero_written_for_a_null(tmp_path: Path) -> None:
    """PostgreSQL's record hash is linear in its fields and hashes NULL as it does a float 0.0: summed as is,
    two rows swapping their event types, or a 0.0 written where a revenue was missing, kept the checksum."""
    segments = [*SEGMENTS, {"name": "zero_revenue", "rule": {"event": "buy", "aggregate": "min",
                                                             "property": "revenue", "op": "eq", "value": 0}}]
    project = write_project(tmp_path / "project", segments, model=MODEL)
    day4 = DAY3 + dt.timedelta(days=1)
    with postgres_warehouse() as warehouse:
        _fill(lambda sql: warehouse.execute(render(sql, "postgres")))
        warehouse.execute(render(
            "INSERT INTO events VALUES ('c1', TIMESTAMP '2026-03-03 10:00:00', 'view', 1, NULL, 'swap.csv'), "
            "('c2', TIMESTAMP '2026-03-04 10:00:00', 'buy', 1, NULL, 'swap.csv'), "
            "('c3', TIMESTAMP '2026-03-05 10:00:00', 'buy', NULL, NULL, 'swap.csv')", "postgres"))
        assert evaluate(project, warehouse, DAY1, run_id="day-1").mode == "full"
        assert evaluate(project, warehouse, DAY2, run_id="day-2").mode == "incremental"
        for at, change in ((DAY3, "UPDATE events SET event_type = CASE event_type WHEN 'view' THEN 'buy' ELSE 'view' "
                                  f"END WHERE customer_id IN ('c1', 'c2') AND {LOAD_COLUMN} = 'swap.csv'"),
                           (day4, "UPDATE events SET revenue = 0 WHERE customer_id = 'c3' AND revenue IS NULL")):
            warehouse.execute(change)
            result = evaluate(project, warehouse, at, run_id=f"run-{at:%d}")
            assert result.mode == "full" and "load 'swap.csv' of table events" in result.reason, result.reason
            with postgres_warehouse() as reference:
                copy_tables(warehouse, reference, TABLES)
                evaluate(project, reference, at, run_id="reference", full=True)
                assert stored(warehouse, at) == stored(reference, at)
        assert "c1" in stored(warehouse, DAY3)["buyers"] and "c2" not in stored(warehouse, DAY3)["buyers"]
        assert "c3" in stored(warehouse, day4)["zero_revenue"]

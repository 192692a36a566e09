"""Where a warehouse takes no DDL inside a transaction (Snowflake commits an open transaction at any DDL,
https://docs.snowflake.com/en/sql-reference/transactions; BigQuery refuses DDL on permanent tables inside
one, https://cloud.google.com/bigquery/docs/transactions), an evaluation computes its tables before its
transaction and then only writes. Another evaluation may commit in between: the run must then write
nothing and fail with a transient error (the task's retry decides again), never write what it computed
from a state that is gone.

The path is the one Snowflake and BigQuery take (``ddl_outside_transaction`` true), run on DuckDB so that a
second evaluation can commit at the exact moment; the per-dialect SQL of that path is checked by the
differential tests on fakesnow and on BigQuery's SQL.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from unittest import mock

import pytest

from airflow_segprovider.core.errors import TransientEvaluationError
from airflow_segprovider.core.evaluate import engine, incremental
from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.evaluate.incremental import state as incremental_state
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.state.incremental import BASE_NEXT, STATE
from airflow_segprovider.core.state.ingest import LOAD_COLUMN
from airflow_segprovider.core.state.membership import SNAPSHOTS, MembershipStore
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.example.generate import generate

DAY = [dt.datetime(2026, 11, 20) + dt.timedelta(days=n) for n in range(4)]


@pytest.fixture
def warehouse(tmp_path: Path):
    project = load_project(EXAMPLE_PROJECT)
    wh = DuckDBWarehouse(str(tmp_path / "warehouse.duckdb"))
    generate(wh, 2_000)
    for table in sorted({s.table for s in project.model.events.values()} | {project.model.consent.table}):
        wh.execute(f"ALTER TABLE {table} ADD COLUMN {LOAD_COLUMN} VARCHAR DEFAULT 'initial'")
    with mock.patch.object(engine, "ddl_outside_transaction", return_value=True), \
            mock.patch.object(incremental_state, "ddl_outside_transaction", return_value=True):
        yield project, wh
    wh.close()


def _interleaved(project, warehouse, other_as_of: dt.datetime, step: str):
    """``step`` (``stage`` or ``stage_base``) of the next evaluation, with another evaluation at
    ``other_as_of`` committed right after it (as a concurrent task would)."""
    original = getattr(incremental, step)
    fired = []

    def step_then_other(*args, **kwargs):
        out = original(*args, **kwargs)
        if not fired:
            fired.append(True)
            with mock.patch.object(incremental, step, original):
                evaluate(project, warehouse, other_as_of, run_id="concurrent")
        return out

    return mock.patch.object(incremental, step, step_then_other)


def _snapshot(warehouse, project, at):
    store = MembershipStore(warehouse)
    return {name: store.members(name, at) for name in project.segments}


def test_an_incremental_run_whose_state_moved_meanwhile_writes_nothing_and_its_retry_is_exact(warehouse):
    project, wh = warehouse
    evaluate(project, wh, DAY[0], run_id="day0")
    with _interleaved(project, wh, DAY[1], "stage"), pytest.raises(TransientEvaluationError,
                                                                    match="another evaluation"):
        evaluate(project, wh, DAY[2], run_id="day2")

    assert wh.query(f"SELECT COUNT(*) FROM {SNAPSHOTS} WHERE as_of = %(at)s", {"at": DAY[2]})[0][0] == 0
    assert wh.query(f"SELECT as_of, run_id FROM {STATE}") == [(DAY[1], "concurrent")]
    assert not [t for (t,) in wh.query("SELECT table_name FROM information_schema.tables")
                if t.startswith("segprovider_incremental_")]  # the scratch tables were dropped

    retried = evaluate(project, wh, DAY[2], run_id="day2-retry")
    assert retried.mode == "incremental"
    incremental_members = _snapshot(wh, project, DAY[2])
    evaluate(project, wh, DAY[2], run_id="day2-full", full=True)
    assert _snapshot(wh, project, DAY[2]) == incremental_members


def test_a_full_run_stages_the_state_in_a_table_of_its_own_and_fails_when_another_run_committed(warehouse):
    project, wh = warehouse
    with _interleaved(project, wh, DAY[0], "stage_base"), pytest.raises(TransientEvaluationError,
                                                                         match="another evaluation"):
        evaluate(project, wh, DAY[1], run_id="day1")

    assert wh.query(f"SELECT as_of, run_id FROM {STATE}") == [(DAY[0], "concurrent")]
    assert not [t for (t,) in wh.query("SELECT table_name FROM information_schema.tables")
                if t.startswith(BASE_NEXT)]
    assert evaluate(project, wh, DAY[1], run_id="day1-retry").mode == "incremental"


def test_a_load_committed_while_the_run_read_makes_it_write_nothing_and_its_retry_counts_it_once(warehouse):
    """Snowflake reads at READ COMMITTED (https://docs.snowflake.com/en/sql-reference/transactions#isolation-level):
    rows of a load committed after the decision counted the loads can be in what the run staged. The run
    counts the loads again after staging; they changed, so it writes nothing, and its retry counts the
    load once (the snapshot equals a full evaluation's)."""
    project, wh = warehouse
    evaluate(project, wh, DAY[0], run_id="day0")
    original = incremental.stage

    def stage_then_load(*args, **kwargs):
        out = original(*args, **kwargs)
        # a purchase for each of 50 customers, dated in the run's new day: counted twice, several would change
        wh.execute(f"INSERT INTO events (customer_id, event_type, occurred_at, revenue, channel, category, "
                   f"{LOAD_COLUMN}) SELECT customer_id, 'purchase', TIMESTAMP '{DAY[0] + dt.timedelta(hours=6)}', "
                   f"500, 'web', 'shoes', 'late-load' FROM customers ORDER BY customer_id LIMIT 50")
        return out

    with mock.patch.object(incremental, "stage", stage_then_load), \
            pytest.raises(TransientEvaluationError, match="a load was committed"):
        evaluate(project, wh, DAY[1], run_id="day1")
    assert wh.query(f"SELECT COUNT(*) FROM {SNAPSHOTS} WHERE as_of = %(at)s", {"at": DAY[1]})[0][0] == 0

    retried = evaluate(project, wh, DAY[1], run_id="day1-retry")
    assert retried.mode == "incremental"
    members = _snapshot(wh, project, DAY[1])
    later = evaluate(project, wh, DAY[2], run_id="day2")
    assert later.mode == "incremental"
    after = _snapshot(wh, project, DAY[2])
    evaluate(project, wh, DAY[1], run_id="day1-full", full=True)
    evaluate(project, wh, DAY[2], run_id="day2-full", full=True)
    assert (_snapshot(wh, project, DAY[1]), _snapshot(wh, project, DAY[2])) == (members, after)

"""Differential tests of incremental evaluation: at every step of a random sequence of days, the
snapshot an incremental run writes equals the one a full evaluation writes over the same data.

Hypothesis draws a random project (rule trees over every operator, windows, filters, references,
consent channels, priority groups, splits: :mod:`support.random_cases`) and a first dataset, then
two to four later ``as_of`` (an hour to 40 days apart, often exactly a window apart) each with a
change: new events of a new ingest load (timestamps anywhere in the last 400 days: late events
too, and some after ``as_of``), new orders and app events, changed, new and deleted customers, new
consent answers. Two warehouses receive the same data: one evaluates incrementally (thresholds
lifted, so every later step takes the incremental path and the test fails if one does not), the
other with ``full=True``. Members, arms, the per-segment counts and the changes must be equal.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow as pa
from hypothesis import HealthCheck, Phase, event, given, note, reject, settings
from hypothesis import strategies as st

from airflow_segprovider.core.errors import ProjectValidationError
from airflow_segprovider.core.evaluate import incremental
from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.sql.dialects import render
from airflow_segprovider.core.state.ingest import LOAD_COLUMN
from airflow_segprovider.core.state.membership import MembershipStore
from support.engine_harness import COLUMN_TYPES, write_project
from support.random_cases import datasets, projects, windows_of
from support.warehouse_matrix import open_warehouse, stored

#: every table but the customers' is appended to by loads, as ingest's append sources write them
LOADED = ("events", "app_log", "orders", "consents")
TYPES: dict[str, dict[str, str]] = {
    table: ({**columns, LOAD_COLUMN: "VARCHAR"} if table in LOADED else dict(columns))
    for table, columns in COLUMN_TYPES.items()}
_ARROW = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(), "DATE": pa.date32(),
          "TIMESTAMP": pa.timestamp("us")}
START = dt.datetime(2026, 3, 10, 6, 30)
STEPS = [dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(days=7), dt.timedelta(days=30),
         dt.timedelta(days=40, microseconds=1), dt.timedelta(microseconds=1)]


def _create(warehouse: Any) -> None:
    for table, columns in TYPES.items():
        warehouse.execute(render(f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t in columns.items())})",
                                 warehouse.dialect))


def _append(warehouse: Any, table: str, rows: list[dict[str, Any]]) -> None:
    if rows:
        columns = TYPES[table]
        warehouse.load(table, pa.table({c: pa.array([row.get(c) for row in rows], type=_ARROW[t])
                                        for c, t in columns.items()}))


def _apply(warehouse: Any, change: dict[str, Any], load: str) -> None:
    """One day's change: customers replaced or deleted, rows of a new load appended."""
    gone = sorted(change["delete"] | {row["customer_id"] for row in change["customers"]})
    if gone:
        keys = ", ".join(f"'{key}'" for key in gone)
        warehouse.execute(render(f"DELETE FROM customers WHERE customer_id IN ({keys})", warehouse.dialect))
    _append(warehouse, "customers", change["customers"])
    for table in LOADED:
        _append(warehouse, table, [{**row, LOAD_COLUMN: load} for row in change[table]])


@st.composite
def day_changes(draw: st.DrawFn, as_of: dt.datetime, focus: tuple[dt.timedelta, ...],
                keys: list[str]) -> dict[str, Any]:
    """A day's change drawn around ``as_of``: the datasets strategy's rows, a random part of each."""
    fresh = draw(datasets(as_of, focus))

    def part(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return rows[: draw(st.integers(0, len(rows)))] if rows else []

    return {
        "customers": part(fresh["customers"]),
        "delete": set(draw(st.lists(st.sampled_from(keys), max_size=3))) if keys else set(),
        **{table: part(fresh[table]) for table in LOADED},
    }


def _check(warehouse: Any, reference: Any, project: Any, at: dt.datetime, result: Any, expected: Any) -> None:
    assert stored(warehouse, at) == stored(reference, at)
    got = {d.segment: (d.members, d.added, d.removed, d.unchanged, d.previous_as_of) for d in result.diffs}
    want = {d.segment: (d.members, d.added, d.removed, d.unchanged, d.previous_as_of) for d in expected.diffs}
    assert got == want
    store, reference_store = MembershipStore(warehouse), MembershipStore(reference)
    for segment in project.segments:
        assert store.changes(segment, at) == reference_store.changes(segment, at), segment


def _run(kind: str, data: st.DataObject) -> None:
    documents = data.draw(projects(START), label="project")
    focus = windows_of(documents["segments"])
    first = data.draw(datasets(START, focus), label="first day")
    with tempfile.TemporaryDirectory() as folder:
        try:
            project = write_project(Path(folder), documents["segments"], model=documents["model"],
                                    priority_groups=documents["priority_groups"],
                                    destinations=documents["destinations"], syncs=documents["syncs"])
        except ProjectValidationError:
            reject()  # the generator can draw a rule validation refuses (e.g. a regex with \s)
    with open_warehouse(kind) as warehouse, open_warehouse(kind) as reference, \
            mock.patch.object(incremental.limits, "MAX_TOUCHED_SHARE", float("inf")), \
            mock.patch.object(incremental.limits, "MAX_NEW_ROWS_SHARE", 1e9), \
            mock.patch.object(incremental.limits, "MAX_DELTA_SHARE", 1e9):
        for target in (warehouse, reference):
            _create(target)
            _apply(target, {"delete": set(), **first}, "load-0")
        at = START
        result = evaluate(project, warehouse, at, run_id="day-0")
        expected = evaluate(project, reference, at, run_id="day-0", full=True)
        assert result.mode == "full"
        _check(warehouse, reference, project, at, result, expected)
        keys = sorted({row["customer_id"] for row in first["customers"]})
        for day in range(1, data.draw(st.integers(2, 3), label="days") + 1):
            at = at + data.draw(st.sampled_from(STEPS), label=f"step {day}")
            change = data.draw(day_changes(at, focus, keys), label=f"change {day}")
            note(f"day {day} at {at}: {change}")
            for target in (warehouse, reference):
                _apply(target, change, f"load-{day}")
            keys = sorted((set(keys) - change["delete"]) | {row["customer_id"] for row in change["customers"]})
            result = evaluate(project, warehouse, at, run_id=f"day-{day}")
            expected = evaluate(project, reference, at, run_id=f"day-{day}", full=True)
            assert result.mode == "incremental", result.reason
            event(f"touched {'none' if not result.touched else 'some'}")
            _check(warehouse, reference, project, at, result, expected)


_SETTINGS = dict(derandomize=True, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.large_base_example])


@settings(max_examples=6, **_SETTINGS)
@given(data=st.data())
def test_incremental_equals_full_on_duckdb(data: st.DataObject) -> None:
    _run("duckdb", data)


@settings(max_examples=3, **_SETTINGS)
@given(data=st.data())
def test_incremental_equals_full_on_postgres(data: st.DataObject) -> None:
    _run("postgres", data)

"""Differential tests of incremental evaluation: at every step of a random sequence of days, the
snapshot an incremental run writes equals the one a full evaluation writes over the same data.

Hypothesis draws a random project (rule trees over every operator, windows, filters, references,
consent channels, priority groups, splits: :mod:`support.random_cases`) and a first dataset, then
two or three later ``as_of`` (an hour to 40 days apart, often exactly a window apart) each with a
change: new events of a new ingest load (timestamps anywhere in the last 400 days: late events
too, and some after ``as_of``), new orders and app events, changed, new and deleted customers, new
consent answers. Two warehouses receive the same data: one evaluates incrementally (thresholds
lifted, so every later step takes the incremental path and the test fails if one does not), the
other with ``full=True``. Members, arms, the per-segment counts and the changes must be equal.

The examples are kept small (a few segments, rules two levels deep, a dozen customers drawn from a
pool of 16 keys so that later days change and delete the same people): Hypothesis then keeps every
example it draws instead of discarding over-long ones, and each dialect's test runs in well under a
minute. ``event()`` reports what the examples exercised (``--hypothesis-show-statistics``).

One test module per dialect (``tests/core/evaluate/test_incremental_differential_<kind>.py``), so
that ``pytest -n 2 --dist loadfile`` runs them side by side.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow as pa
from hypothesis import HealthCheck, Phase, event, note, reject
from hypothesis import strategies as st

from airflow_segprovider.core.errors import ProjectValidationError
from airflow_segprovider.core.evaluate import incremental
from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.sql.dialects import render
from airflow_segprovider.core.state.ingest import LOAD_COLUMN
from airflow_segprovider.core.state.membership import MembershipStore
from support.engine_harness import COLUMN_TYPES, write_project
from support.random_cases import ATTRIBUTES, DURATIONS, datasets, projects, windows_of
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

#: the generators' bounds: small enough that Hypothesis keeps the examples (no overruns)
KEY_POOL = 16
PROJECT = dict(min_segments=2, max_segments=4, max_depth=2)
FIRST_DAY = dict(key_pool=KEY_POOL, max_customers=10, max_events=30, max_app_log=10, max_orders=15,
                 max_answers=2, max_stray=3)
LATER_DAY = dict(key_pool=KEY_POOL, max_customers=4, max_events=12, max_app_log=5, max_orders=6,
                 max_answers=1, max_stray=2)

SETTINGS = dict(derandomize=True, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow])


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
    """A day's change drawn around ``as_of``: a small dataset whose rows are appended as a new load and
    whose first customers (a random part) replace those of the same key, and up to three existing
    customers deleted. The other customers of the dataset only get events and consent answers: an
    existing customer whose row did not change is touched through them alone."""
    fresh = draw(datasets(as_of, focus, **LATER_DAY))
    customers = fresh["customers"][: draw(st.integers(0, len(fresh["customers"])))]
    deleted = set(draw(st.lists(st.sampled_from(keys), max_size=3))) if keys else set()
    return {**fresh, "customers": customers, "delete": deleted}


def _check(warehouse: Any, reference: Any, project: Any, at: dt.datetime, result: Any, expected: Any) -> None:
    assert stored(warehouse, at) == stored(reference, at)
    got = {d.segment: (d.members, d.added, d.removed, d.unchanged, d.previous_as_of) for d in result.diffs}
    want = {d.segment: (d.members, d.added, d.removed, d.unchanged, d.previous_as_of) for d in expected.diffs}
    assert got == want
    store, reference_store = MembershipStore(warehouse), MembershipStore(reference)
    for segment in project.segments:
        assert store.changes(segment, at) == reference_store.changes(segment, at), segment


@st.composite
def with_relative_predicate(draw: st.DrawFn, documents: dict[str, Any]) -> dict[str, Any]:
    """Half the time, one segment's rule joined (``all`` / ``any``) with a ``within_last`` or
    ``more_than_ago`` on a date or timestamp attribute: the predicates whose outcome moves with
    ``as_of`` alone (the incremental run must touch the customers whose value crossed a bound), which
    the random rules draw too seldom for a few examples to hold one."""
    if not draw(st.booleans()):
        return documents
    segments = list(documents["segments"])
    index = draw(st.integers(0, len(segments) - 1))
    attribute = draw(st.sampled_from(sorted(a for a, t in ATTRIBUTES.items() if t in ("date", "timestamp"))))
    extra = {"attribute": attribute, "op": draw(st.sampled_from(["within_last", "more_than_ago"])),
             "value": draw(st.sampled_from(DURATIONS))}
    segments[index] = {**segments[index], "rule": {draw(st.sampled_from(["all", "any"])): [segments[index]["rule"],
                                                                                         extra]}}
    return {**documents, "segments": segments}


def _project_events(documents: dict[str, Any]) -> None:
    """What the project exercises, for ``--hypothesis-show-statistics``."""
    segments = documents["segments"]
    text = repr(segments)
    event(f"segments: {len(segments)}")
    event(f"windows: {'yes' if windows_of(segments) else 'no'}")
    event(f"within on an aggregate: {'yes' if repr('within') + ':' in text else 'no'}")
    event(f"relative predicates (within_last, more_than_ago): "
          f"{'yes' if 'within_last' in text or 'more_than_ago' in text else 'no'}")
    event(f"references: {'yes' if repr('segment') + ':' in text else 'no'}")
    event(f"priority groups: {'yes' if documents['priority_groups'] else 'no'}")
    event(f"splits: {'yes' if any('split' in s for s in segments) else 'no'}")
    event(f"consent channels: {'yes' if any('channels' in s for s in segments) else 'no'}")


def _change_events(change: dict[str, Any], keys: list[str], previous: dt.datetime) -> None:
    """What a day's change exercises (an event is counted once per example)."""
    replaced = {row["customer_id"] for row in change["customers"]} & set(keys)
    if change["delete"]:
        event("change: customers deleted")
    if replaced:
        event("change: customers changed")
    if len(change["customers"]) > len(replaced):
        event("change: new customers")
    times = [row.get("occurred_at") for row in change["events"]] + [row.get("ts") for row in change["app_log"]] + [
        row.get("ordered_at") for row in change["orders"]]
    if any(t is not None and t <= previous for t in times):
        event("change: late events (at or before the previous as_of)")
    if any(t is not None and t > previous for t in times):
        event("change: events since the previous as_of")
    if any(row["customer_id"] in keys for row in change["consents"]):
        event("change: new consent answers of existing customers")
    untouched_rows = set(keys) - {row["customer_id"] for row in change["customers"]} - change["delete"]
    if any(row["customer_id"] in untouched_rows for row in change["consents"]):
        event("change: consent answers of a customer whose row did not change")
    if any(row.get("customer_id") in untouched_rows or row.get("cid") in untouched_rows
           for table in ("events", "app_log", "orders") for row in change[table]):
        event("change: events of a customer whose row did not change")


_DDL = re.compile(r"^\s*(CREATE|DROP|ALTER|COMMENT|UNDROP)\b", re.IGNORECASE)


class SnowflakeTransactionRules:
    """Refuses DDL inside a transaction, as Snowflake would not run it there: "Executing a DDL statement
    within an open transaction commits the open transaction" (https://docs.snowflake.com/en/sql-reference/transactions),
    which fakesnow does not do for a connection in autocommit mode with an explicit ``BEGIN``. (BigQuery's
    rule is checked by ``support.warehouse_matrix.BigQuerySQLOnDuckDB``.)"""

    _in_transaction: bool

    def execute(self, sql: str) -> None:
        if getattr(self, "_in_transaction", False) and _DDL.match(sql):
            raise AssertionError(f"DDL inside a Snowflake transaction (it would commit the transaction): {sql[:200]}")
        super().execute(sql)  # type: ignore[misc]


@contextlib.contextmanager
def warehouse_pair(kind: str) -> Iterator[tuple[Any, Any]]:
    """Two fresh, separate warehouses of ``kind``. fakesnow can be patched in only once at a time: the
    Snowflake pair are two connections (two databases) of one emulator, checked against Snowflake's
    transaction rule (:class:`SnowflakeTransactionRules`)."""
    if kind != "snowflake":
        with open_warehouse(kind) as warehouse, open_warehouse(kind) as reference:
            yield warehouse, reference
        return
    import fakesnow
    import snowflake.connector

    from airflow_segprovider.core.warehouses.snowflake import SnowflakeWarehouse

    checked = type("CheckedSnowflakeWarehouse", (SnowflakeTransactionRules, SnowflakeWarehouse), {})
    with fakesnow.patch():
        warehouse, reference = (checked(snowflake.connector.connect(database=database, schema="main"), schema="main")
                                for database in ("segprovider_incremental", "segprovider_full"))
        try:
            yield warehouse, reference
        finally:
            warehouse.close()
            reference.close()


def run_case(kind: str, data: st.DataObject) -> None:
    """One example: a project, a first day, two or three later days; incremental == full at each."""
    documents = data.draw(projects(START, **PROJECT).flatmap(with_relative_predicate), label="project")
    focus = windows_of(documents["segments"])
    first = data.draw(datasets(START, focus, **FIRST_DAY), label="first day")
    with tempfile.TemporaryDirectory() as folder:
        try:
            project = write_project(Path(folder), documents["segments"], model=documents["model"],
                                    priority_groups=documents["priority_groups"],
                                    destinations=documents["destinations"], syncs=documents["syncs"])
        except ProjectValidationError:
            reject()  # the generator can draw a rule validation refuses (e.g. a regex with \s)
    _project_events(documents)
    with warehouse_pair(kind) as (warehouse, reference), \
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
            previous = at
            step = data.draw(st.sampled_from(STEPS), label=f"step {day}")
            at = at + step
            change = data.draw(day_changes(at, focus, keys), label=f"change {day}")
            note(f"day {day} at {at}: {change}")
            event(f"step: {step}")
            _change_events(change, keys, previous)
            for target in (warehouse, reference):
                _apply(target, change, f"load-{day}")
            keys = sorted((set(keys) - change["delete"]) | {row["customer_id"] for row in change["customers"]})
            result = evaluate(project, warehouse, at, run_id=f"day-{day}")
            expected = evaluate(project, reference, at, run_id=f"day-{day}", full=True)
            assert result.mode == "incremental", result.reason
            event(f"touched {'none' if not result.touched else 'some'}")
            if any(d.added or d.removed for d in expected.diffs):
                event("membership changed on a later day")
            _check(warehouse, reference, project, at, result, expected)

"""Summaries an evaluation writes for the insights views, beside the snapshot they describe.

The views answer from tables sized by segments x days, never by reading membership history per
request; what the snapshot registry (``segprovider_snapshots``) does not hold is kept here, written in
the evaluation's own transaction (so a summary exists exactly when its snapshot does):

``segprovider_arm_sizes`` (:data:`ARM_SIZES`)
    one row per split segment, arm and ``as_of``: the arm's members in that snapshot.
``segprovider_priority_removals`` (:data:`PRIORITY_REMOVALS`)
    one row per segment of a priority group below its first, higher-priority segment of the group
    (``taken_by``) and ``as_of``: the customers the segment's own rule and consent admit who are
    members of ``taken_by`` instead (a priority group puts a customer in its highest segment only).
    A row with ``customers`` 0 says the count was made and found none.
``segprovider_customer_changes`` (:data:`CUSTOMER_CHANGES`)
    the rows of ``segprovider_membership_changes`` (each ``as_of``'s adds and removes), copied with an index
    on ``customer_key`` (DuckDB, PostgreSQL; Snowflake and BigQuery have no indexes): the customer lookup's
    history reads one customer's rows by key. Without the index DuckDB decompresses and compares every key
    of every change: about 200 ms for the 4M changes of 30 days of ``benchmarks/evaluation.py``'s
    data on a busy machine, against 3 to 9 ms through the index. A copy rather than an index on the
    changes table itself: DuckDB refuses ``ALTER TABLE`` on a table with an index, and the membership
    store's own tables stay free to change.

Each is replaced for the segments an evaluation writes, at its ``as_of``, as the snapshot is (and the
changes of the next ``as_of`` too, which a backfill rewrites).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Sequence

from airflow_segprovider.core.sql.dialects import in_list, render, text_literal, ts_literal
from airflow_segprovider.core.state.membership import CHANGES, MEMBERSHIPS, SNAPSHOTS

if TYPE_CHECKING:
    from airflow_segprovider.core.warehouses.base import Warehouse

ARM_SIZES = "segprovider_arm_sizes"
PRIORITY_REMOVALS = "segprovider_priority_removals"
CUSTOMER_CHANGES = "segprovider_customer_changes"
_CUSTOMER_INDEX = "segprovider_customer_changes_by_key"
TABLES = (ARM_SIZES, PRIORITY_REMOVALS, CUSTOMER_CHANGES)
#: the warehouses whose tables take an index
_INDEXED = ("duckdb", "postgres")
_CHANGE_COLUMNS = "customer_key, segment, change, arm, as_of"

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {ARM_SIZES} (
        segment VARCHAR NOT NULL, arm VARCHAR NOT NULL, as_of TIMESTAMP NOT NULL, run_id VARCHAR NOT NULL,
        members BIGINT NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {PRIORITY_REMOVALS} (
        priority_group VARCHAR NOT NULL, segment VARCHAR NOT NULL, taken_by VARCHAR NOT NULL,
        as_of TIMESTAMP NOT NULL, run_id VARCHAR NOT NULL, customers BIGINT NOT NULL)""",
)


def ensure_tables(warehouse: Warehouse) -> None:
    """Create the summary tables when missing (DDL: call outside a transaction, after the membership store's).

    A new ``segprovider_customer_changes`` starts as a copy of every change the store holds (one
    statement), and gets its index after that bulk copy.
    """
    for statement in _DDL:
        warehouse.execute(render(statement, warehouse.dialect))
    if warehouse.columns(CUSTOMER_CHANGES) is None:  # the membership store's tables exist already
        warehouse.execute(render(f"CREATE TABLE IF NOT EXISTS {CUSTOMER_CHANGES} AS SELECT {_CHANGE_COLUMNS} "
                                 f"FROM {CHANGES}", warehouse.dialect))
    if warehouse.dialect in _INDEXED:
        warehouse.execute(f"CREATE INDEX IF NOT EXISTS {_CUSTOMER_INDEX} ON {CUSTOMER_CHANGES} (customer_key)")


def copy_customer_changes(warehouse: Warehouse, pairs: Sequence[tuple[str, dt.datetime]]) -> None:
    """Replace the copied changes of each ``(segment, as_of)`` with the store's."""
    by_as_of: dict[dt.datetime, list[str]] = {}
    for segment, as_of in pairs:
        by_as_of.setdefault(as_of, []).append(segment)
    for as_of, segments in sorted(by_as_of.items()):
        where = f"as_of = {ts_literal(as_of)} AND segment IN {in_list(sorted(segments))}"
        warehouse.execute(render(f"DELETE FROM {CUSTOMER_CHANGES} WHERE {where}", warehouse.dialect))
        warehouse.execute(render(f"INSERT INTO {CUSTOMER_CHANGES} ({_CHANGE_COLUMNS}) "
                                 f"SELECT {_CHANGE_COLUMNS} FROM {CHANGES} WHERE {where}", warehouse.dialect))


def write_arm_sizes(warehouse: Warehouse, segments: Sequence[str], as_of: dt.datetime, run_id: str) -> None:
    """Replace the ``as_of`` arm sizes of the split ``segments`` with their snapshot's, just written.

    Reads the one ``as_of`` of the membership view (one snapshot, not the history); an arm with no
    member gets no row (the views read it as 0).
    """
    if not segments:
        return
    at = ts_literal(as_of)
    warehouse.execute(render(f"DELETE FROM {ARM_SIZES} WHERE as_of = {at} AND segment IN {in_list(segments)}",
                             warehouse.dialect))
    warehouse.execute(render(
        f"INSERT INTO {ARM_SIZES} (segment, arm, as_of, run_id, members) "
        f"SELECT segment, arm, {at}, {text_literal(run_id)}, COUNT(*) FROM {MEMBERSHIPS} "
        f"WHERE as_of = {at} AND segment IN {in_list(segments)} AND arm IS NOT NULL GROUP BY segment, arm",
        warehouse.dialect))


def write_priority_removals(warehouse: Warehouse, segments: Sequence[str], as_of: dt.datetime, run_id: str,
                            rows: Sequence[tuple[str, str, str, int]]) -> None:
    """Replace the ``as_of`` removals of ``segments`` with ``rows``.

    :param rows: ``(priority_group, segment, taken_by, customers)``, one per segment and higher-priority
        segment of its group (a count of 0 included).
    """
    if not segments:
        return
    at = ts_literal(as_of)
    warehouse.execute(render(
        f"DELETE FROM {PRIORITY_REMOVALS} WHERE as_of = {at} AND segment IN {in_list(segments)}", warehouse.dialect))
    if not rows:
        return
    values = " UNION ALL ".join(
        f"SELECT {text_literal(group)} AS priority_group, {text_literal(segment)} AS segment, "
        f"{text_literal(taken_by)} AS taken_by, CAST({int(customers)} AS BIGINT) AS customers"
        for group, segment, taken_by, customers in rows)
    warehouse.execute(render(
        f"INSERT INTO {PRIORITY_REMOVALS} (priority_group, segment, taken_by, as_of, run_id, customers) "
        f"SELECT priority_group, segment, taken_by, {at}, {text_literal(run_id)}, customers FROM ({values}) AS r",
        warehouse.dialect))


def next_snapshots(warehouse: Warehouse, segments: Sequence[str], as_of: dt.datetime) -> list[tuple[str, dt.datetime]]:
    """``(segment, as_of)`` of each segment's next snapshot after ``as_of`` (whose diff a backfill rewrites)."""
    if not segments:
        return []
    return [(segment, following) for segment, following in warehouse.query(render(
        f"SELECT segment, MIN(as_of) FROM {SNAPSHOTS} WHERE as_of > {ts_literal(as_of)} "
        f"AND segment IN {in_list(segments)} GROUP BY segment", warehouse.dialect))]

"""The membership store's deltas: a snapshot written as a delta on an earlier write reads as a full
snapshot, earlier snapshots keep reading as written, re-runs and backfills keep their documented
meaning, and a store of the version before deltas (words without ``valid_to``) keeps working.

Real DuckDB and PostgreSQL; the store is driven directly (the engine's use of it is tested in
tests/core/evaluate/test_incremental_*.py).
"""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_segprovider.core.sql.dialects import render
from airflow_segprovider.core.state.membership import BITS, MEMBERSHIPS, WORDS, MembershipStore, bit_layout
from support.warehouse_matrix import open_warehouse

DAY1, DAY2, DAY3 = dt.datetime(2026, 6, 1), dt.datetime(2026, 6, 2), dt.datetime(2026, 6, 3)
SLOTS = bit_layout([("a", []), ("b", ["x", "y"])])  # a: 1, b/x: 2, b/y: 4
NOW = dt.datetime(2026, 6, 10)


def _words(rows: list[tuple[str, int]]) -> str:
    """``(word, customer_key, bits)`` rows as a query."""
    return " UNION ALL ".join(f"SELECT 0 AS word, '{key}' AS customer_key, CAST({bits} AS BIGINT) AS bits"
                              for key, bits in rows)


def _read(warehouse, as_of: dt.datetime) -> set[tuple]:
    return set(warehouse.query(render(
        f"SELECT segment, customer_key, arm FROM {MEMBERSHIPS} WHERE as_of = TIMESTAMP '{as_of}'", warehouse.dialect)))


def _full(store: MembershipStore, rows: list[tuple[str, int]], as_of: dt.datetime, run: str) -> str:
    with store.warehouse.transaction():
        write_id = store.replace_snapshot(render(_words(rows), store.warehouse.dialect), SLOTS, as_of, run)
        store.write_diff(["a", "b"], as_of, run, NOW)
    return write_id


def _delta(store: MembershipStore, write_id: str, changed: list[tuple[str, int, int]], previous: dt.datetime,
           as_of: dt.datetime, run: str):
    warehouse = store.warehouse
    rows = " UNION ALL ".join(f"SELECT '{k}' AS customer_key, 0 AS word, CAST({o} AS BIGINT) AS old_bits, "
                              f"CAST({n} AS BIGINT) AS new_bits" for k, o, n in changed)
    with warehouse.transaction():
        warehouse.execute(render(f"CREATE TEMPORARY TABLE delta_rows AS {rows}", warehouse.dialect))
        diffs = store.write_delta(write_id, "delta_rows", SLOTS, as_of, previous, run, NOW)
        warehouse.execute("DROP TABLE delta_rows")
    return {d.segment: (d.members, d.added, d.removed) for d in diffs}


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_a_delta_reads_as_a_full_snapshot_and_the_earlier_one_as_written(kind: str) -> None:
    with open_warehouse(kind) as warehouse:
        store = MembershipStore(warehouse)
        store.ensure_tables()
        write_id = _full(store, [("k1", 1), ("k2", 2), ("k3", 5)], DAY1, "r1")
        day1 = _read(warehouse, DAY1)
        assert day1 == {("a", "k1", None), ("b", "k2", "x"), ("a", "k3", None), ("b", "k3", "y")}
        # k1 leaves a and joins b/y; k2 leaves everything; k4 is new in a; k3 is unchanged (not in the delta)
        counts = _delta(store, write_id, [("k1", 1, 4), ("k2", 2, 0), ("k4", 0, 1)], DAY1, DAY2, "r2")
        assert _read(warehouse, DAY2) == {("b", "k1", "y"), ("a", "k3", None), ("b", "k3", "y"), ("a", "k4", None)}
        assert _read(warehouse, DAY1) == day1
        assert counts == {"a": (2, 1, 1), "b": (2, 1, 1)}
        assert store.changes("a", DAY2) == {"added": {"k4"}, "removed": {"k1"}}
        assert store.changes("b", DAY2) == {"added": {"k1"}, "removed": {"k2"}}
        # a second delta on the same write
        _delta(store, write_id, [("k3", 5, 0)], DAY2, DAY3, "r3")
        assert _read(warehouse, DAY3) == {("b", "k1", "y"), ("a", "k4", None)}
        assert _read(warehouse, DAY2) == {("b", "k1", "y"), ("a", "k3", None), ("b", "k3", "y"), ("a", "k4", None)}
        # a full re-run of the first day replaces it, and the later snapshots, read through the old write, stay
        _full(store, [("k9", 1)], DAY1, "r1-again")
        assert _read(warehouse, DAY1) == {("a", "k9", None)}
        assert _read(warehouse, DAY3) == {("b", "k1", "y"), ("a", "k4", None)}
        assert warehouse.query(render(f"SELECT COUNT(*) FROM {WORDS} WHERE write_id = '{write_id}'",
                                      warehouse.dialect))[0][0] > 0


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_a_store_from_before_deltas_is_migrated_and_reads_as_before(kind: str) -> None:
    with open_warehouse(kind) as warehouse:
        d = warehouse.dialect
        # the layout of the previous version: words without valid_to, a view joining on as_of
        warehouse.execute(render(f"CREATE TABLE {WORDS} (write_id VARCHAR NOT NULL, as_of TIMESTAMP NOT NULL, "
                                 "word INTEGER NOT NULL, customer_key VARCHAR NOT NULL, bits BIGINT NOT NULL)", d))
        warehouse.execute(render(f"CREATE TABLE {BITS} (write_id VARCHAR NOT NULL, as_of TIMESTAMP NOT NULL, "
                                 "run_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, arm VARCHAR, "
                                 "word INTEGER NOT NULL, mask BIGINT NOT NULL)", d))
        warehouse.execute(render(
            f"CREATE VIEW {MEMBERSHIPS} AS SELECT b.segment, w.customer_key, b.as_of, b.run_id, b.arm, b.write_id "
            f"FROM {BITS} AS b JOIN {WORDS} AS w ON w.write_id = b.write_id AND w.as_of = b.as_of "
            "AND w.word = b.word WHERE (w.bits & b.mask) <> 0", d))
        for as_of, write, key in ((DAY1, "w1", "k1"), (DAY2, "w2", "k2")):
            warehouse.execute(render(f"INSERT INTO {WORDS} VALUES ('{write}', TIMESTAMP '{as_of}', 0, '{key}', 1)", d))
            warehouse.execute(render(
                f"INSERT INTO {BITS} VALUES ('{write}', TIMESTAMP '{as_of}', 'old', 'a', NULL, 0, 1)", d))
        store = MembershipStore(warehouse)
        store.ensure_tables()
        assert "valid_to" in {c.lower() for c in (warehouse.columns(WORDS) or {})}
        assert _read(warehouse, DAY1) == {("a", "k1", None)}
        assert _read(warehouse, DAY2) == {("a", "k2", None)}
        store.ensure_tables()  # a second start changes nothing
        assert _read(warehouse, DAY2) == {("a", "k2", None)}

"""The warehouse contract, checked on every adapter against a real server or emulator.

The same test body runs on DuckDB, the real PostgreSQL server (through psycopg2 and through
psycopg 3, both of which ``PostgresHook`` may hand out) and Snowflake through fakesnow: statements, small results, Arrow batches that stay bounded, bulk load, upsert
by key, rollback on error, column types.
"""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pytest

from support.warehouse_matrix import open_warehouse

pytestmark = pytest.mark.integration

KINDS = ("duckdb", "postgres", "postgres_psycopg3", "snowflake")


@pytest.fixture(params=KINDS)
def warehouse(request):
    with open_warehouse(request.param) as opened:
        yield opened


def _rows(n: int, offset: int = 0, label: str = "v") -> pa.Table:
    return pa.table({
        "id": pa.array([f"k{i:05d}" for i in range(offset, offset + n)]),
        "n": pa.array(list(range(offset, offset + n)), type=pa.int64()),
        "label": pa.array([None if i % 7 == 0 else f"{label}{i}" for i in range(offset, offset + n)]),
        "flag": pa.array([i % 2 == 0 for i in range(offset, offset + n)]),
        "seen_at": pa.array([dt.datetime(2026, 1, 1) + dt.timedelta(minutes=i) for i in range(offset, offset + n)],
                       type=pa.timestamp("us")),
        "amount": pa.array([decimal.Decimal(i) / 100 for i in range(offset, offset + n)], type=pa.decimal128(18, 2)),
    })


def _create(warehouse, table: str = "items") -> None:
    warehouse.execute(f"CREATE TABLE {table} (id VARCHAR NOT NULL PRIMARY KEY, n BIGINT, label VARCHAR, "
                      "flag BOOLEAN, seen_at TIMESTAMP, amount DECIMAL(18, 2))")


def test_execute_and_query(warehouse):
    _create(warehouse)
    warehouse.execute("INSERT INTO items (id, n, label) VALUES ('a', 1, 'x'), ('b', 2, NULL)")
    assert sorted(warehouse.query("SELECT id, n, label FROM items")) == [("a", 1, "x"), ("b", 2, None)]
    records = warehouse.query_records("SELECT id, n FROM items ORDER BY id")
    assert records == [{"id": "a", "n": 1}, {"id": "b", "n": 2}]


def test_load_appends_every_value_exactly(warehouse):
    _create(warehouse)
    rows = _rows(2_500)
    warehouse.load("items", rows)
    got = warehouse.query("SELECT id, n, label, flag, seen_at, amount FROM items ORDER BY id")
    assert len(got) == 2_500
    expected = list(zip(*(rows.column(c).to_pylist() for c in rows.column_names)))
    assert [tuple(r) for r in got] == expected


def test_load_keeps_empty_text_apart_from_null_and_odd_characters(warehouse):
    _create(warehouse)
    odd = ['', None, 'quote " and \' both', 'comma, here', 'back\\slash', 'line\nbreak', 'ünïcödé ✓']
    rows = pa.table({"id": [f"k{i}" for i in range(len(odd))], "label": odd})
    warehouse.load("items", rows)
    assert dict(warehouse.query("SELECT id, label FROM items")) == {f"k{i}": v for i, v in enumerate(odd)}


def test_load_can_create_the_table_from_the_arrow_schema(warehouse):
    rows = _rows(10)
    warehouse.load("fresh", rows, create=True)
    columns = warehouse.columns("fresh")
    assert [c.lower() for c in columns] == ["id", "n", "label", "flag", "seen_at", "amount"]
    assert warehouse.query("SELECT COUNT(*) FROM fresh")[0][0] == 10


def test_batches_are_arrow_and_bounded(warehouse):
    _create(warehouse)
    warehouse.load("items", _rows(5_000))
    batches = list(warehouse.iter_batches("SELECT id, n, seen_at, amount FROM items", batch_size=1_000))
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    assert all(b.num_rows <= 1_000 for b in batches)
    assert sum(b.num_rows for b in batches) == 5_000
    table = pa.Table.from_batches(batches)
    assert [name.lower() for name in table.column_names] == ["id", "n", "seen_at", "amount"]
    assert sorted(table.column(0).to_pylist()) == [f"k{i:05d}" for i in range(5_000)]
    assert pa.types.is_timestamp(table.schema.field(2).type)


def test_batches_of_an_empty_result(warehouse):
    _create(warehouse)
    assert sum(b.num_rows for b in warehouse.iter_batches("SELECT id FROM items", batch_size=10)) == 0


def test_statements_may_run_between_batches(warehouse):
    # the sync engine commits state while it still reads the plan's batches
    _create(warehouse)
    warehouse.load("items", _rows(300))
    warehouse.execute("CREATE TABLE seen (id VARCHAR)")
    seen = 0
    for batch in warehouse.iter_batches("SELECT id FROM items", batch_size=100):
        with warehouse.transaction():
            warehouse.load("seen", pa.table({"id": batch.column(0)}))
        seen += batch.num_rows
    assert seen == 300
    assert warehouse.query("SELECT COUNT(*) FROM seen")[0][0] == 300


def test_upsert_replaces_by_key(warehouse):
    _create(warehouse)
    warehouse.load("items", _rows(100))
    warehouse.upsert("items", ["id"], _rows(100, offset=50, label="new"))
    assert warehouse.query("SELECT COUNT(*) FROM items")[0][0] == 150
    labels = dict(warehouse.query("SELECT id, label FROM items WHERE id IN ('k00048', 'k00051', 'k00149')"))
    assert labels == {"k00048": "v48", "k00051": "new51", "k00149": "new149"}


def test_upsert_of_keys_only_inserts_missing(warehouse):
    warehouse.execute("CREATE TABLE pairs (a VARCHAR NOT NULL, b VARCHAR NOT NULL, PRIMARY KEY (a, b))")
    warehouse.upsert("pairs", ["a", "b"], pa.table({"a": ["x", "x"], "b": ["1", "2"]}))
    warehouse.upsert("pairs", ["a", "b"], pa.table({"a": ["x", "y"], "b": ["2", "1"]}))
    assert sorted(warehouse.query("SELECT a, b FROM pairs")) == [("x", "1"), ("x", "2"), ("y", "1")]


def test_transaction_rollback_leaves_nothing(warehouse):
    _create(warehouse)
    warehouse.load("items", _rows(5))
    with pytest.raises(RuntimeError, match="boom"):
        with warehouse.transaction():
            warehouse.execute("DELETE FROM items")
            warehouse.load("items", _rows(3, offset=100))
            warehouse.upsert("items", ["id"], _rows(2, offset=200))
            raise RuntimeError("boom")
    assert sorted(r[0] for r in warehouse.query("SELECT id FROM items")) == [f"k{i:05d}" for i in range(5)]


def test_transaction_commits_on_success(warehouse):
    _create(warehouse)
    with warehouse.transaction():
        warehouse.load("items", _rows(3))
        with warehouse.transaction():  # nested joins the outer one
            warehouse.upsert("items", ["id"], _rows(1, offset=1, label="again"))
    assert warehouse.query("SELECT label FROM items WHERE id = 'k00001'") == [("again1",)]


def test_failed_statement_inside_a_transaction_rolls_back(warehouse):
    _create(warehouse)
    with pytest.raises(Exception):
        with warehouse.transaction():
            warehouse.load("items", _rows(3))
            warehouse.execute("SELECT * FROM no_such_table")
    assert warehouse.query("SELECT COUNT(*) FROM items")[0][0] == 0
    warehouse.load("items", _rows(1))  # the connection is usable afterwards
    assert warehouse.query("SELECT COUNT(*) FROM items")[0][0] == 1


def test_columns_describe_types(warehouse):
    _create(warehouse)
    columns = {name.lower(): kind for name, kind in warehouse.columns("items").items()}
    assert list(columns) == ["id", "n", "label", "flag", "seen_at", "amount"]
    assert columns["id"].startswith(("VARCHAR", "CHARACTER VARYING", "TEXT"))
    assert columns["flag"] == "BOOLEAN"
    assert columns["seen_at"].startswith("TIMESTAMP")
    assert warehouse.columns("missing_table") is None

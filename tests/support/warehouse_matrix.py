"""Warehouses of every supported kind for the tests, each isolated in its own schema.

``open_warehouse(kind)`` yields a fresh, empty warehouse: DuckDB in memory, the real
PostgreSQL server on this machine (a schema ``t_<uuid>`` dropped afterwards) and
Snowflake emulated by ``fakesnow``. BigQuery has no server here: its SQL is checked by
the differential tests (parsed as BigQuery, executed after transpiling to DuckDB).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

import pyarrow as pa

from airflow_segprovider.core.sql.dialects import ts_literal
from airflow_segprovider.core.state.membership import MEMBERSHIPS
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from support.postgres import PG_DSN, pg_connect, postgres_schema  # noqa: F401  (re-exported)

KINDS = ("duckdb", "postgres", "snowflake")
#: where the differential tests compare members: the three engines above, and BigQuery's SQL on DuckDB
DIFFERENTIAL_KINDS = ("duckdb", "postgres", "snowflake", "bigquery_sql")


class BigQuerySQLOnDuckDB(DuckDBWarehouse):
    """Runs the SQL the core writes for BigQuery: each statement is parsed as BigQuery by sqlglot
    (a syntax error fails the test) and executed after transpiling to DuckDB.

    It checks that the BigQuery SQL means the same as the DuckDB SQL wherever sqlglot models
    BigQuery's semantics (functions, literals, casts, hashing); what only a BigQuery server could
    show (type checks between DATETIME and TIMESTAMP columns, quotas, sessions) it cannot.
    """

    dialect = "bigquery"

    @staticmethod
    def to_duckdb(sql: str) -> str:
        import sqlglot

        statements = sqlglot.parse(sql, read="bigquery", error_level=sqlglot.ErrorLevel.RAISE)
        return ";\n".join(s.sql(dialect="duckdb") for s in statements if s is not None)

    def execute(self, sql: str) -> None:
        self.refuse_permanent_ddl_in_transaction(sql)
        super().execute(self.to_duckdb(sql))

    def refuse_permanent_ddl_in_transaction(self, sql: str) -> None:
        """BigQuery's rule, which DuckDB does not have: "DDL statements that create or drop permanent entities,
        such as datasets, tables, and functions, are not supported inside transactions"; CREATE TEMP TABLE and
        DROP TABLE of a temporary table are (https://cloud.google.com/bigquery/docs/transactions, "Statements
        supported in transactions")."""
        import sqlglot
        from sqlglot import exp

        if not self._in_transaction:
            return
        for statement in sqlglot.parse(sql, read="bigquery"):
            if isinstance(statement, (exp.Create, exp.Drop)) and statement.kind == "TABLE":
                temporary = statement.args.get("temporary") or any(
                    isinstance(p, exp.TemporaryProperty) for p in (statement.args.get("properties") or exp.Properties(
                        expressions=[])).expressions)
                if not temporary:
                    raise RuntimeError(f"BigQuery refuses DDL on a permanent table inside a transaction: {sql[:200]}")

    def query(self, sql: str):
        return super().query(self.to_duckdb(sql))

    def query_records(self, sql: str):
        return super().query_records(self.to_duckdb(sql))

    def iter_batches(self, sql: str, batch_size: int = 50_000):
        return super().iter_batches(self.to_duckdb(sql), batch_size)

    def columns(self, table: str):
        # the adapter's own catalogue query is DuckDB SQL, not SQL the core writes for BigQuery
        plain = DuckDBWarehouse(connection=self.connection, schema=self.schema)
        return plain.columns(table)


@contextlib.contextmanager
def open_warehouse(kind: str, **pg_options) -> Iterator:
    """A fresh, empty warehouse of ``kind``; ``pg_options`` go to ``psycopg2.connect`` (e.g. ``options``)."""
    if kind == "duckdb":
        warehouse = DuckDBWarehouse(":memory:")
        try:
            yield warehouse
        finally:
            warehouse.close()
    elif kind in ("postgres", "postgres_psycopg3"):
        from airflow_segprovider.core.warehouses.postgres import PostgresWarehouse

        with postgres_schema() as schema:
            if kind == "postgres":
                connection = pg_connect(**pg_options)
            else:  # what PostgresHook hands out when SQLAlchemy 2 is installed
                import psycopg

                connection = psycopg.connect(PG_DSN, **pg_options)
            warehouse = PostgresWarehouse(connection, schema=schema)
            try:
                yield warehouse
            finally:
                warehouse.close()
    elif kind == "bigquery_sql":
        warehouse = BigQuerySQLOnDuckDB(":memory:")
        try:
            yield warehouse
        finally:
            warehouse.close()
    elif kind == "snowflake":
        import fakesnow
        import snowflake.connector

        from airflow_segprovider.core.warehouses.snowflake import SnowflakeWarehouse

        with fakesnow.patch():
            connection = snowflake.connector.connect(database="segprovider_test", schema="main")
            warehouse = SnowflakeWarehouse(connection, schema="main")
            try:
                yield warehouse
            finally:
                warehouse.close()
    else:
        raise ValueError(kind)


def load_rows(warehouse, tables: dict, column_types: dict[str, dict[str, str]]) -> None:
    """Create each table with exactly ``column_types`` (DuckDB names, rendered per dialect) and load the
    rows through the warehouse's own ``load``."""
    from airflow_segprovider.core.sql.dialects import render

    arrow_types = {"VARCHAR": pa.string(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(), "DATE": pa.date32(),
                   "TIMESTAMP": pa.timestamp("us"), "BIGINT": pa.int64()}
    for table, columns in column_types.items():
        ddl = f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t in columns.items())})"
        warehouse.execute(render(ddl, warehouse.dialect))
        rows = tables.get(table, [])
        if rows:
            warehouse.load(table, pa.table({c: pa.array([row.get(c) for row in rows], type=arrow_types[t])
                                            for c, t in columns.items()}))


def copy_tables(source, target, tables: list[str]) -> None:
    """Copy tables from one warehouse to another through Arrow batches and the target's ``load``."""
    for table in tables:
        first = True
        for batch in source.iter_batches(f"SELECT * FROM {table}", batch_size=20_000):
            rows = pa.Table.from_batches([batch])
            target.load(table, rows, create=first)
            first = False


def stored(warehouse, as_of: dt.datetime) -> dict[str, dict[str, str | None]]:
    """segment -> {customer key -> arm} of one snapshot, read back from the warehouse."""
    out: dict[str, dict[str, str | None]] = {}
    for segment, key, arm in warehouse.query(
            f"SELECT segment, customer_key, arm FROM {MEMBERSHIPS} WHERE as_of = {ts_literal(as_of)}"
            if warehouse.dialect == "duckdb" else render_sql(
                f"SELECT segment, customer_key, arm FROM {MEMBERSHIPS} WHERE as_of = {ts_literal(as_of)}",
                warehouse.dialect)):
        assert key not in out.setdefault(segment, {}), f"{segment}: key {key!r} stored twice"
        out[segment][key] = arm
    return out


def render_sql(sql: str, dialect: str) -> str:
    from airflow_segprovider.core.sql.dialects import render

    return render(sql, dialect)

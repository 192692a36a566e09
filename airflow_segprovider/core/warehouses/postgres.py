"""PostgreSQL: the connection ``PostgresHook.get_conn()`` hands out (psycopg2, or psycopg 3 when the
provider uses it: with SQLAlchemy 2 installed it does).

* statements run in autocommit mode; :meth:`transaction` issues ``BEGIN`` / ``COMMIT``
  / ``ROLLBACK`` itself, so a transaction is real and everything outside one is committed
  statement by statement, as on DuckDB. A transaction runs at the server's default isolation
  (``READ COMMITTED``: each statement sees what was committed when it began), and at
  ``REPEATABLE READ`` when it asks for a snapshot (``transaction(snapshot=True)``: every statement
  sees what was committed before its first one), as an evaluation does;
* results stream through a server-side named cursor (``DECLARE ... WITH HOLD``), fetched
  ``batch_size`` rows at a time into Arrow batches typed from the column's type OID;
* rows load with ``COPY ... FROM STDIN (FORMAT csv)`` from Arrow, chunk by chunk;
* upserts copy into a temporary staging table and ``INSERT ... ON CONFLICT (keys) DO UPDATE``,
  the same statement DuckDB runs (so the key needs a primary key or unique constraint there too).

The session runs in UTC with ``search_path`` set to the warehouse's schema, which is created
when missing, so the core's unqualified table names land there.
"""

from __future__ import annotations

import io
import itertools
from typing import TYPE_CHECKING, Any, Sequence

from airflow_segprovider.core.sql.dialects import quote_identifier, sql_literal
from airflow_segprovider.core.state.staging import BATCH_CURSOR_PREFIX, UPSERT_STAGING_PREFIX, upsert_staging_ddl
from airflow_segprovider.core.warehouses.dbapi import DBAPIWarehouse, rows_to_batch

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa

_cursor_ids = itertools.count()


def _arrow_type_of_oid(oid: int, precision: int | None, scale: int | None) -> pa.DataType | None:
    import pyarrow as pa

    known = {
        16: pa.bool_(), 20: pa.int64(), 21: pa.int16(), 23: pa.int32(), 700: pa.float32(), 701: pa.float64(),
        25: pa.string(), 1043: pa.string(), 1042: pa.string(), 19: pa.string(), 1082: pa.date32(),
        1114: pa.timestamp("us"), 1184: pa.timestamp("us", tz="UTC"), 1083: pa.time64("us"),
        17: pa.binary(),
    }
    if oid == 1700:  # numeric: exact when the column declares precision and scale, else inferred per batch
        if precision and scale is not None and 0 < precision <= 38:
            return pa.decimal128(precision, scale)
        return None
    return known.get(oid)


class PostgresWarehouse(DBAPIWarehouse):
    """A PostgreSQL database as the project's warehouse.

    :param connection: a psycopg2 or psycopg 3 connection, e.g. ``PostgresHook(postgres_conn_id=...).get_conn()``;
        it is switched to autocommit and used for the warehouse's lifetime.
    :param schema: schema of the project's tables and the core's own tables (created when missing).
    """

    dialect = "postgres"

    def __init__(self, connection: Any, *, schema: str | None = "public") -> None:
        super().__init__(connection, schema=schema)
        # psycopg 3 copies through cursor.copy(); psycopg2 through copy_expert()
        self._psycopg3 = hasattr(connection, "info") and not hasattr(connection, "get_transaction_status")
        status = (connection.info.transaction_status if self._psycopg3
                  else connection.get_transaction_status())
        if status != 0:  # autocommit cannot be switched inside an open transaction
            connection.rollback()
        connection.autocommit = True
        self.execute("SET TIME ZONE 'UTC'")
        if schema:
            exists = self.query(f"SELECT 1 FROM pg_namespace WHERE nspname = {sql_literal(schema)}")
            if not exists:
                self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
            self.execute(f"SET search_path TO {quote_identifier(schema)}")

    def _begin_snapshot(self) -> None:
        # https://www.postgresql.org/docs/current/transaction-iso.html#XACT-REPEATABLE-READ: a write
        # conflicting with a concurrent committed one fails with SQLSTATE 40001, resolved by a retry
        self.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")

    def _arrow_types(self, description: Sequence[Any]) -> list[pa.DataType | None]:
        return [_arrow_type_of_oid(column.type_code, getattr(column, "precision", None),
                                   getattr(column, "scale", None)) for column in description]

    def iter_batches(self, sql: str, batch_size: int = 50_000) -> Iterator[pa.RecordBatch]:
        """Stream through a server-side cursor: the client holds one batch at a time.

        ``WITH HOLD`` keeps the cursor open across commits, so other statements (the sync
        engine's state writes) may run on the connection between batches.
        """
        with self._lock:
            cursor = self.connection.cursor(name=f"{BATCH_CURSOR_PREFIX}{next(_cursor_ids)}", withhold=True)
            cursor.itersize = batch_size
            cursor.execute(sql)
        try:
            first = True
            while True:
                with self._lock:
                    rows = cursor.fetchmany(batch_size)
                    if first:  # a named cursor knows its columns after the first fetch
                        names = [column.name for column in cursor.description]
                        types = self._arrow_types(cursor.description)
                        first = False
                if not rows:
                    return
                yield rows_to_batch(names, rows, types)
        finally:
            with self._lock:
                if not cursor.closed:
                    cursor.close()

    def _load(self, table: str, rows: pa.Table) -> None:
        import pyarrow.csv as pa_csv

        columns = ", ".join(quote_identifier(name) for name in rows.column_names)
        statement = f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv, HEADER false)"
        options = pa_csv.WriteOptions(include_header=False)
        with self._lock:
            cursor = self.connection.cursor()
            try:
                # one COPY per chunk keeps the CSV text in memory small
                for batch in rows.to_batches(max_chunksize=100_000):
                    buffer = io.BytesIO()
                    # strings are always quoted and NULL is an empty unquoted field, so '' and NULL stay apart
                    pa_csv.write_csv(batch, buffer, options)
                    if self._psycopg3:
                        with cursor.copy(statement) as copy:
                            copy.write(buffer.getvalue())
                    else:
                        buffer.seek(0)
                        cursor.copy_expert(statement, buffer)
            finally:
                cursor.close()

    def upsert(self, table: str, keys: Sequence[str], rows: pa.Table) -> None:
        """Insert ``rows`` into ``table``, replacing rows with the same ``keys`` (its primary key)."""
        if rows.num_rows == 0:
            return
        names = [quote_identifier(name) for name in rows.column_names]
        columns = ", ".join(names)
        updates = ", ".join(f"{n} = EXCLUDED.{n}" for n, raw in zip(names, rows.column_names) if raw not in keys)
        conflict = ", ".join(quote_identifier(k) for k in keys)
        staging = f"{UPSERT_STAGING_PREFIX}{next(_cursor_ids)}"
        with self._lock, self.transaction():
            self.execute(upsert_staging_ddl(staging, columns, table))
            self._load(staging, rows)
            self.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} "
                         f"ON CONFLICT ({conflict}) DO " + (f"UPDATE SET {updates}" if updates else "NOTHING"))
            self.execute(f"DROP TABLE {staging}")

"""Snowflake: the connection ``SnowflakeHook.get_conn()`` hands out (snowflake-connector-python).

* identifiers: Snowflake folds unquoted names to upper case. The core writes its own tables
  unquoted, and the compiler upper-cases the simple quoted names of the project (see
  :func:`~airflow_segprovider.core.sql.dialects.to_sql`), so a project naming ``customers.customer_id``
  reads ``CUSTOMERS.CUSTOMER_ID`` as every Snowflake user expects. Result column names come back
  lower-cased (``SEGMENT`` -> ``segment``), as the core names them;
* transactions: ``BEGIN`` / ``COMMIT`` / ``ROLLBACK`` with the connection in autocommit mode.
  Snowflake commits implicitly before any DDL, so nothing inside :meth:`transaction` creates a
  table or stage: upserts and loads inside one are ``UPDATE`` + ``INSERT`` from literal rows.
  Snowflake's only isolation level is ``READ COMMITTED``
  (https://docs.snowflake.com/en/sql-reference/transactions#isolation-level): each statement sees
  what was committed when it began, so ``transaction(snapshot=True)`` cannot give one snapshot here;
* results: the connector's Arrow result chunks (``fetch_arrow_batches``), re-cut to at most
  ``batch_size`` rows; drivers without it (``fakesnow``) go through ``fetchmany``;
* bulk loads outside a transaction use the connector's ``write_pandas`` (stage + ``COPY INTO``).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Sequence

from airflow_segprovider.core.sql.dialects import snowflake_literal, sql_literal
from airflow_segprovider.core.warehouses.dbapi import DBAPIWarehouse, rows_to_batch, split_table_name

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa

log = logging.getLogger(__name__)

_SIMPLE = re.compile(r"^[a-z_][a-z0-9_$]*$")
_FOLDED = re.compile(r"^[A-Z_][A-Z0-9_$]*$")
# SQL text of one literal-rows statement stays well under Snowflake's statement size limit
_MAX_STATEMENT_CHARS = 500_000


def identifier(name: str) -> str:
    """A column name as Snowflake resolves the project's names: simple names unquoted (upper-cased)."""
    if _SIMPLE.match(name):
        return name
    return '"' + name.replace('"', '""') + '"'


def _arrow_type(column: Any) -> pa.DataType | None:
    import pyarrow as pa

    code, precision, scale = column[1], column[4], column[5]
    if code == 0:  # FIXED: exact decimals stay exact; integers are inferred (int64)
        return pa.decimal128(precision, scale) if scale and precision and precision <= 38 else None
    return {1: pa.float64(), 2: pa.string(), 3: pa.date32(), 8: pa.timestamp("us"),
            6: pa.timestamp("us", tz="UTC"), 7: pa.timestamp("us", tz="UTC"), 13: pa.bool_()}.get(code)


class SnowflakeWarehouse(DBAPIWarehouse):
    """A Snowflake database (or ``fakesnow``) as the project's warehouse.

    :param connection: a ``snowflake.connector`` connection, e.g. ``SnowflakeHook(...).get_conn()``.
    :param schema: schema of the project's tables and the core's own tables (created when missing).
    """

    dialect = "snowflake"

    def __init__(self, connection: Any, *, schema: str | None = None) -> None:
        super().__init__(connection, schema=schema)
        try:
            self.execute("ALTER SESSION SET TIMEZONE = 'UTC'")
        except Exception as exc:  # fakesnow does not implement session parameters; its clock is UTC
            if "not implemented" not in str(exc):
                raise
            log.debug("session time zone not set: %s", exc)
        if schema:
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {identifier(schema)}")
            self.execute(f"USE SCHEMA {identifier(schema)}")

    def _result_names(self, description: Sequence[Any]) -> list[str]:
        return [column[0].lower() if _FOLDED.match(column[0]) else column[0] for column in description]

    def _arrow_types(self, description: Sequence[Any]) -> list[pa.DataType | None]:
        return [_arrow_type(column) for column in description]

    def iter_batches(self, sql: str, batch_size: int = 50_000) -> Iterator[pa.RecordBatch]:
        """The connector's Arrow result chunks, re-cut to ``batch_size``; ``fetchmany`` where the
        driver has no Arrow results (``fakesnow``, or a session set to the JSON result format)."""
        from snowflake.connector.errors import NotSupportedError

        with self._lock:
            cursor = self.connection.cursor()
            cursor.execute(sql)
            names = self._result_names(cursor.description)
            types = self._arrow_types(cursor.description)
        try:
            try:
                chunks = cursor.fetch_arrow_batches()
            except (AttributeError, NotSupportedError):
                chunks = None
            if chunks is None:
                while True:
                    with self._lock:
                        rows = cursor.fetchmany(batch_size)
                    if not rows:
                        return
                    yield rows_to_batch(names, rows, types)
            for chunk in chunks:
                yield from chunk.rename_columns(names).to_batches(max_chunksize=batch_size)
        finally:
            with self._lock:
                cursor.close()

    def _columns_sql(self, schema: str | None, name: str) -> str:
        where = f"UPPER(table_schema) = UPPER({sql_literal(schema)}) AND " if schema else ""
        return ("SELECT table_name, column_name, data_type FROM information_schema.columns "
                f"WHERE {where}UPPER(table_name) = UPPER({sql_literal(name)}) ORDER BY ordinal_position")

    def columns(self, table: str) -> dict[str, str] | None:
        described = super().columns(table)
        if described is None:
            return None
        return {(name.lower() if _FOLDED.match(name) else name): kind for name, kind in described.items()}

    def _typed_rows_sql(self, table: str, rows: pa.Table) -> list[str]:
        """``SELECT CAST(column1 AS type) AS name, ... FROM VALUES (...), ...`` chunks for ``rows``."""
        target = self.columns(table) or {}
        casts = []
        for index, name in enumerate(rows.column_names, start=1):
            kind = target.get(name) or target.get(name.lower())
            value = f"column{index}"
            casts.append(f"CAST({value} AS {kind}) AS {identifier(name)}" if kind else f"{value} AS {identifier(name)}")
        head = f"SELECT {', '.join(casts)} FROM VALUES "
        statements, values, size = [], [], 0
        for record in rows.to_pylist():
            text = "(" + ", ".join(snowflake_literal(v) for v in record.values()) + ")"
            if values and size + len(text) > _MAX_STATEMENT_CHARS:
                statements.append(head + ", ".join(values))
                values, size = [], 0
            values.append(text)
            size += len(text) + 2
        if values:
            statements.append(head + ", ".join(values))
        return statements

    def _load(self, table: str, rows: pa.Table) -> None:
        columns = ", ".join(identifier(name) for name in rows.column_names)
        if not self._in_transaction and self._write_pandas(table, rows):
            return
        with self._lock, self.transaction():
            for select in self._typed_rows_sql(table, rows):
                self.execute(f"INSERT INTO {table} ({columns}) {select}")

    def _write_pandas(self, table: str, rows: pa.Table) -> bool:
        """Bulk load through a stage; False when the table name is not a plain (schema.)table."""
        from snowflake.connector.pandas_tools import write_pandas

        schema, name = split_table_name(table, self.schema)
        if not _SIMPLE.match(name.lower()) or (schema and not _SIMPLE.match(schema.lower())):
            return False
        frame = rows.to_pandas()
        frame.columns = [n.upper() if _SIMPLE.match(n) else n for n in rows.column_names]
        with self._lock:
            ok, _, written, _ = write_pandas(self.connection, frame, name.upper(),
                                             schema=schema.upper() if schema else None, quote_identifiers=True,
                                             use_logical_type=True, auto_create_table=False)
        if not ok or written != rows.num_rows:
            raise RuntimeError(f"write_pandas loaded {written} of {rows.num_rows} rows into {table}")
        return True

    def upsert(self, table: str, keys: Sequence[str], rows: pa.Table) -> None:
        """Update the rows whose ``keys`` exist, insert the others: ``UPDATE``, then ``INSERT ... WHERE NOT EXISTS``.

        Two DML statements inside one transaction rather than ``MERGE``: the same meaning, no staging
        table (DDL would end an open transaction), and ``fakesnow`` cannot run ``MERGE`` inside a
        transaction, so this is the path the tests exercise.
        """
        if rows.num_rows == 0:
            return
        names = rows.column_names
        on = " AND ".join(f"t.{identifier(k)} = s.{identifier(k)}" for k in keys)
        updates = ", ".join(f"{identifier(n)} = s.{identifier(n)}" for n in names if n not in keys)
        insert = ", ".join(identifier(n) for n in names)
        values = ", ".join(f"s.{identifier(n)}" for n in names)
        with self._lock, self.transaction():
            for select in self._typed_rows_sql(table, rows):
                if updates:
                    self.execute(f"UPDATE {table} AS t SET {updates} FROM ({select}) AS s WHERE {on}")
                self.execute(f"INSERT INTO {table} ({insert}) SELECT {values} FROM ({select}) AS s "
                             f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE {on})")

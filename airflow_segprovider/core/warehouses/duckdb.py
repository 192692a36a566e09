"""The embedded default warehouse: DuckDB, in-process, one file."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from airflow_segprovider.core.sql.dialects import text_literal
from airflow_segprovider.core.state.staging import DUCKDB_LOAD_ROWS, DUCKDB_UPSERT_ROWS
from airflow_segprovider.core.warehouses.base import TransactionMixin

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


class DuckDBWarehouse(TransactionMixin):
    """The embedded default warehouse.

    :param path: database file (created if missing), or ``":memory:"``.
    :param connection: an open DuckDB connection to use instead of ``path`` (e.g. from ``DuckDBHook``).
    :param schema: schema of the project's tables.
    :param threads: worker threads; None lets DuckDB use every core.
    :param memory_limit: e.g. ``"4GB"``; None keeps DuckDB's default.
    """

    dialect = "duckdb"

    def __init__(self, path: str | Path = ":memory:", *, connection: duckdb.DuckDBPyConnection | None = None,
                 schema: str | None = "main", threads: int | None = None, memory_limit: str | None = None) -> None:
        import duckdb

        self.path = str(path)
        self.schema = schema
        self.connection = connection if connection is not None else duckdb.connect(self.path)
        self._lock = threading.RLock()
        # Evaluation is defined in UTC; results are sets, so row order need not be preserved
        # (keeping insertion order costs seconds on large writes).
        self.connection.execute("SET TimeZone = 'UTC'")
        self.connection.execute("SET preserve_insertion_order = false")
        if threads:
            self.connection.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.connection.execute(f"SET memory_limit = '{memory_limit}'")
        self._in_transaction = False

    def execute(self, sql: str) -> None:
        with self._lock:
            self.connection.execute(sql)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.connection.execute(sql).fetchall()

    def query_records(self, sql: str) -> list[dict[str, Any]]:
        """Small results as dicts keyed by column name."""
        with self._lock:
            cursor = self.connection.execute(sql)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def iter_batches(self, sql: str, batch_size: int = 50_000) -> Iterator[pa.RecordBatch]:
        with self._lock:
            cursor = self.connection.cursor()
        # a relation streams its result in Arrow batches without materialising it first
        reader = cursor.sql(sql).to_arrow_reader(batch_size)
        try:
            yield from reader
        finally:
            cursor.close()

    def _begin(self) -> None:
        self.connection.execute("BEGIN TRANSACTION")

    def _commit(self) -> None:
        self.connection.execute("COMMIT")

    def _rollback(self) -> None:
        self.connection.execute("ROLLBACK")

    def columns(self, table: str) -> dict[str, str] | None:
        """Column name -> upper-case type of ``table``, or None when it does not exist."""
        parts = table.split(".")
        name, schema = parts[-1], parts[-2] if len(parts) > 1 else (self.schema or "main")
        rows = self.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = {text_literal(schema)} AND table_name = {text_literal(name)} "
            "ORDER BY ordinal_position"
        )
        return {column: data_type.upper() for column, data_type in rows} or None

    def upsert(self, table: str, keys: Sequence[str], rows: pa.Table) -> None:
        """Insert ``rows`` into ``table``, replacing rows with the same ``keys`` (the table's primary key)."""
        if rows.num_rows == 0:
            return
        columns = ", ".join(f'"{name}"' for name in rows.column_names)
        updates = ", ".join(f'"{name}" = excluded."{name}"' for name in rows.column_names if name not in keys)
        conflict = ", ".join(f'"{k}"' for k in keys)
        with self._lock:
            self.connection.register(DUCKDB_UPSERT_ROWS, rows)
            try:
                self.connection.execute(
                    f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {DUCKDB_UPSERT_ROWS} "
                    f"ON CONFLICT ({conflict}) DO " + (f"UPDATE SET {updates}" if updates else "NOTHING"))
            finally:
                self.connection.unregister(DUCKDB_UPSERT_ROWS)

    def load(self, table: str, rows: pa.Table, *, create: bool = False) -> None:
        """Append ``rows`` (columns matched by name) to ``table``.

        :param create: create the table from the Arrow schema first when it does not exist.
        """
        with self._lock:
            if create and self.columns(table) is None:
                from airflow_segprovider.core.warehouses.dbapi import arrow_table_ddl

                self.execute(arrow_table_ddl(table, rows.schema, self.dialect))
            if rows.num_rows == 0:
                return
            columns = ", ".join(f'"{name}"' for name in rows.column_names)
            self.connection.register(DUCKDB_LOAD_ROWS, rows)
            try:
                self.connection.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {DUCKDB_LOAD_ROWS}")
            finally:
                self.connection.unregister(DUCKDB_LOAD_ROWS)

    def close(self) -> None:
        self.connection.close()

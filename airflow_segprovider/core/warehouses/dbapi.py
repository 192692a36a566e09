"""What the PostgreSQL, Snowflake and BigQuery adapters share: DB-API plumbing and Arrow conversion.

Results leave the warehouse in bounded Arrow record batches (``fetchmany`` or the
driver's own Arrow batches), never as one Python list of a whole table. Rows go
in from Arrow tables, chunk by chunk, through each warehouse's bulk path.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Sequence

from airflow_segprovider.core.sql.dialects import render, sql_literal
from airflow_segprovider.core.warehouses.base import TransactionMixin

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DBAPIWarehouse", "arrow_table_ddl", "arrow_type_sql", "rows_to_batch", "split_table_name"]


def split_table_name(table: str, default_schema: str | None) -> tuple[str | None, str]:
    """``"schema.table"`` or ``"table"`` -> ``(schema, table)``; quotes around parts are dropped."""
    parts = [part.strip('"`') for part in table.split(".")]
    return (parts[-2] if len(parts) > 1 else default_schema), parts[-1]


def arrow_type_sql(field: pa.Field) -> str:
    """The DuckDB-dialect SQL type of an Arrow field (rendered per dialect by :func:`arrow_table_ddl`).

    :raises ValueError: naming the field when its type has no portable SQL type (lists, structs, maps).
    """
    import pyarrow.types as t

    kind = field.type
    if t.is_dictionary(kind):
        kind = kind.value_type
    if t.is_string(kind) or t.is_large_string(kind) or t.is_null(kind):
        return "VARCHAR"
    if t.is_boolean(kind):
        return "BOOLEAN"
    if t.is_int8(kind) or t.is_int16(kind) or t.is_uint8(kind):
        return "SMALLINT"
    if t.is_int32(kind) or t.is_uint16(kind):
        return "INTEGER"
    if t.is_integer(kind):
        return "BIGINT"
    if t.is_floating(kind):
        return "DOUBLE"
    if t.is_decimal(kind):
        return f"DECIMAL({kind.precision}, {kind.scale})"
    if t.is_date(kind):
        return "DATE"
    if t.is_timestamp(kind):
        return "TIMESTAMPTZ" if kind.tz else "TIMESTAMP"
    if t.is_time(kind):
        return "TIME"
    if t.is_binary(kind) or t.is_large_binary(kind):
        return "BLOB"
    raise ValueError(f"column {field.name!r} has Arrow type {kind}, which has no portable warehouse type; "
                     "flatten it (e.g. to JSON text) before loading")


def arrow_table_ddl(table: str, schema: pa.Schema, dialect: str) -> str:
    """``CREATE TABLE IF NOT EXISTS table (...)`` for an Arrow schema, in ``dialect``.

    :param table: the table name as SQL text (qualified and quoted as the caller wants it).
    """
    from airflow_segprovider.core.sql.dialects import quote_identifier

    columns = ", ".join(f"{quote_identifier(f.name)} {arrow_type_sql(f)}" for f in schema)
    return render(f"CREATE TABLE IF NOT EXISTS {table} ({columns})", dialect)


def rows_to_batch(names: Sequence[str], rows: Sequence[Sequence[Any]],
                  types: Sequence[pa.DataType | None] | None = None) -> pa.RecordBatch:
    """A record batch of driver rows; a column without a known type is inferred from its values."""
    import pyarrow as pa

    columns = list(zip(*rows)) if rows else [() for _ in names]
    arrays = []
    for index, values in enumerate(columns):
        kind = types[index] if types is not None else None
        if kind is None:
            arrays.append(pa.array(list(values)))
        else:
            arrays.append(pa.array(list(values), type=kind))
    return pa.RecordBatch.from_arrays(arrays, names=list(names))


def _execute(cursor: Any, sql: str, parameters: Mapping[str, Any] | None) -> None:
    # without parameters the text goes as is: a literal '%' need not be doubled then (pyformat's rule)
    if parameters is None:
        cursor.execute(sql)
    else:
        cursor.execute(sql, dict(parameters))


class DBAPIWarehouse(TransactionMixin):
    """A warehouse over one DB-API 2 connection, guarded by a lock (the sync engine uses threads).

    Subclasses set :attr:`dialect` and override what their warehouse does differently:
    how a transaction starts and ends, how rows are loaded in bulk, how to upsert and how
    to read a table's columns.

    :param connection: an open DB-API connection (the adapter uses it for its lifetime).
    :param schema: schema of the project's tables and the core's own tables.
    """

    dialect = ""

    def __init__(self, connection: Any, *, schema: str | None = None) -> None:
        self.connection = connection
        self.schema = schema
        self._lock = threading.RLock()
        self._in_transaction = False

    def _cursor(self) -> Any:
        return self.connection.cursor()

    def execute(self, sql: str) -> None:
        with self._lock:
            cursor = self._cursor()
            try:
                cursor.execute(sql)
            finally:
                cursor.close()

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of ``sql``; ``parameters`` are bound by the driver to its ``%(name)s`` placeholders."""
        with self._lock:
            cursor = self._cursor()
            try:
                _execute(cursor, sql, parameters)
                return [tuple(row) for row in cursor.fetchall()]
            finally:
                cursor.close()

    def query_records(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Small results as dicts keyed by column name; ``parameters`` as in :meth:`query`."""
        with self._lock:
            cursor = self._cursor()
            try:
                _execute(cursor, sql, parameters)
                names = self._result_names(cursor.description)
                return [dict(zip(names, row)) for row in cursor.fetchall()]
            finally:
                cursor.close()

    def _result_names(self, description: Sequence[Any]) -> list[str]:
        return [column[0] for column in description]

    def _arrow_types(self, description: Sequence[Any]) -> list[pa.DataType | None] | None:
        return None

    def iter_batches(self, sql: str, batch_size: int = 50_000) -> Iterator[pa.RecordBatch]:
        """Stream a result in Arrow record batches of at most ``batch_size`` rows."""
        with self._lock:
            cursor = self._cursor()
            cursor.execute(sql)
            names = self._result_names(cursor.description)
            types = self._arrow_types(cursor.description)
        try:
            while True:
                with self._lock:
                    rows = cursor.fetchmany(batch_size)
                if not rows:
                    return
                yield rows_to_batch(names, rows, types)
        finally:
            with self._lock:
                cursor.close()

    def _begin(self) -> None:
        self.execute("BEGIN")

    def _commit(self) -> None:
        self.execute("COMMIT")

    def _rollback(self) -> None:
        self.execute("ROLLBACK")

    def _columns_sql(self, schema: str | None, name: str) -> str:
        where = f"table_schema = {sql_literal(schema)} AND " if schema else ""
        return ("SELECT table_name, column_name, data_type FROM information_schema.columns "
                f"WHERE {where}LOWER(table_name) = LOWER({sql_literal(name)}) ORDER BY ordinal_position")

    def columns(self, table: str) -> dict[str, str] | None:
        """Column name -> upper-case type of ``table``, or None when it does not exist.

        Names match case-insensitively (an exact match wins), because warehouses fold
        unquoted names differently: PostgreSQL to lower case, Snowflake to upper case.
        """
        schema, name = split_table_name(table, self.schema)
        rows = self.query(self._columns_sql(schema, name))
        exact = [row for row in rows if row[0] == name]
        chosen = exact or [row for row in rows if row[0] == rows[0][0]]
        return {column: str(data_type).upper() for _, column, data_type in chosen} or None

    def load(self, table: str, rows: pa.Table, *, create: bool = False) -> None:
        """Append ``rows`` (columns matched by name) to ``table``.

        :param table: the table name as SQL text.
        :param create: create the table from the Arrow schema first when it does not exist.
        """
        if create and self.columns(table) is None:
            self.execute(arrow_table_ddl(table, rows.schema, self.dialect))
        if rows.num_rows:
            self._load(table, rows)

    def _load(self, table: str, rows: pa.Table) -> None:
        raise NotImplementedError

    def upsert(self, table: str, keys: Sequence[str], rows: pa.Table) -> None:
        """Insert ``rows`` into ``table``, replacing rows with the same ``keys``."""
        raise NotImplementedError

    def close(self) -> None:
        with self._lock:
            self.connection.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(schema={self.schema!r})"

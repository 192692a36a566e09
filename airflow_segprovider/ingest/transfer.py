"""Move typed rows from the typing engine into a table of the target warehouse, in Arrow batches.

Ingest types and checks rows in an in-process DuckDB (its readers parse the files,
its ``TRY_CAST`` types the values; see :mod:`.loader`). When the target warehouse
is that same DuckDB, rows never leave it. For any other warehouse, the valid rows
(and the quarantine rows) are streamed out of DuckDB as Arrow record batches and
bulk-loaded into the target, batch by batch: memory holds one batch at a time,
never a whole table.

Each batch goes through the adapter's bulk loader, ``load(table, rows)`` (``COPY ... FROM
STDIN`` on PostgreSQL, ``write_pandas`` / staged files on Snowflake, load jobs on
BigQuery); an adapter without one gets multi-row ``INSERT ... VALUES`` statements
rendered in its dialect.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.dialects import quote_identifier, render

if TYPE_CHECKING:
    import pyarrow as pa

    from airflow_segprovider.core.warehouse import Warehouse

#: Rows per ``INSERT ... VALUES`` statement on warehouses without a bulk path.
INSERT_CHUNK = 1_000


def load_batches(warehouse: Warehouse, table: str, columns: Sequence[str],
                 batches: Iterable[pa.RecordBatch]) -> int:
    """Append every batch to ``table`` (SQL reference, already quoted) in the order of ``columns``.

    The batches' columns are matched by position to ``columns``. Runs in the caller's transaction.

    :returns: rows loaded.
    """
    total = 0
    bulk = getattr(warehouse, "load", None)
    for batch in batches:
        if batch.num_rows == 0:
            continue
        batch = batch.rename_columns(list(columns))
        if bulk is not None:
            import pyarrow as pa

            bulk(table, pa.Table.from_batches([batch]))
        else:
            _insert_values(warehouse, table, columns, batch)
        total += batch.num_rows
    return total


def _insert_values(warehouse: Warehouse, table: str, columns: Sequence[str], batch: pa.RecordBatch) -> None:
    names = ", ".join(quote_identifier(c) for c in columns)
    rows = batch.to_pylist()
    keys = batch.schema.names
    for start in range(0, len(rows), INSERT_CHUNK):
        values = ", ".join("(" + ", ".join(sql_literal(row[k]) for k in keys) + ")"
                           for row in rows[start:start + INSERT_CHUNK])
        warehouse.execute(render(f"INSERT INTO {table} ({names}) VALUES {values}", warehouse.dialect))


def sql_literal(value: Any) -> str:
    """A Python value as a typed SQL literal in DuckDB's dialect (rendered for the target by the caller)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "NULL"  # never produced by the typed cast; kept defensive
        return f"CAST({value!r} AS DOUBLE)"
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return f"CAST('{value.isoformat(sep=' ')}' AS TIMESTAMP)"
    if isinstance(value, dt.date):
        return f"CAST('{value.isoformat()}' AS DATE)"
    return "'" + str(value).replace("'", "''") + "'"

"""Move typed rows from the typing engine into a table of the target warehouse, in Arrow batches.

Ingest types and checks rows in an in-process DuckDB (its readers parse the files,
its ``TRY_CAST`` types the values; see :mod:`.loader`). When the target warehouse
is that same DuckDB, rows never leave it. For any other warehouse, the valid rows
(and the quarantine rows) are streamed out of DuckDB as Arrow record batches and
bulk-loaded into the target, batch by batch: memory holds one batch at a time,
never a whole table.

Each batch goes through the adapter's bulk loader, ``Warehouse.load(table, rows)``
(``COPY ... FROM STDIN`` on PostgreSQL, ``write_pandas`` / staged files on Snowflake,
load jobs on BigQuery).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from airflow_segprovider.core.warehouses.base import Warehouse


def load_batches(warehouse: Warehouse, table: str, columns: Sequence[str],
                 batches: Iterable[pa.RecordBatch]) -> int:
    """Append every batch to ``table`` (SQL reference, already quoted) in the order of ``columns``.

    The batches' columns are matched by position to ``columns``. Runs in the caller's transaction.

    :returns: rows loaded.
    """
    total = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        warehouse.load(table, pa.Table.from_batches([batch.rename_columns(list(columns))]))
        total += batch.num_rows
    return total

"""Export warehouse tables as landing files, so the demo can run a real ingest end to end.

The demo path: ``generate`` the example data into a scratch warehouse,
:func:`write_landing_files` from it, then ingest the files through the example
project's ``sources:`` into the project's warehouse. (Ingesting back into the
warehouse the files came from would append the events a second time.)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import text_literal as text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

#: The tables ``airflow_segprovider.example.generate.generate`` writes.
GENERATED_TABLES = ("customers", "events", "orders", "consents")


def write_landing_files(warehouse: DuckDBWarehouse, landing_dir: str | Path,
                        tables: Sequence[str] = GENERATED_TABLES) -> dict[str, Path]:
    """Write each table to ``<landing_dir>/<table>/<table>.parquet`` (replacing an earlier export).

    DuckDB streams each table to the file; nothing passes through Python.

    :param tables: the tables to export; by default those the example data generator writes.
    :returns: table -> the file written.
    """
    written: dict[str, Path] = {}
    for table in tables:
        folder = Path(landing_dir) / table
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{table}.parquet"
        reference = ".".join('"' + part.replace('"', '""') + '"' for part in table.split("."))
        warehouse.execute(f"COPY (SELECT * FROM {reference}) TO {text(str(target))} (FORMAT parquet)")
        written[table] = target
    return written

"""Landing files for the example project: what an upstream export would deliver.

``segprovider land`` (:func:`land_example_data`) writes them, dated relative to today, where a
deployment's DAGs read them (:func:`default_data_dir`). The demo path: ``generate`` the example data into a scratch warehouse,
:func:`write_landing_files` from it, then ingest the files through the example
project's ``sources:`` into the project's warehouse. (Ingesting back into the
warehouse the files came from would append the events a second time.)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import text_literal as text

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.example.generate import GeneratedCounts

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


#: The environment variable naming the folder the example DAGs read their landing files from.
DATA_DIR_VARIABLE = "SEGPROVIDER_DATA_DIR"


def default_data_dir() -> Path:
    """Where the example DAGs read landing files and ``segprovider land`` writes them.

    ``$SEGPROVIDER_DATA_DIR``, else ``$AIRFLOW_HOME/segprovider_data`` (``~/airflow`` when unset). The
    example project's sources read ``landing/<table>/*.parquet`` under it.
    """
    import os

    configured = os.environ.get(DATA_DIR_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "segprovider_data"


def land_example_data(data_dir: str | Path, *, anchor: dt.datetime | None = None, customers: int = 50_000,
                      seed: int = 42) -> tuple[GeneratedCounts, dict[str, Path]]:
    """Write the example landing files, their newest timestamp at ``anchor``, under ``<data_dir>/landing``.

    What an upstream export would deliver for a real deployment of the example project: one Parquet file
    per table, replacing an earlier landing (ingest then replaces the rows that file loaded before).

    :param anchor: the newest timestamp in the data (naive: UTC); default: now, so the freshness gate passes today.
    :returns: the generated counts and table -> the file written.
    """
    import tempfile

    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.example.generate import generate

    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    at = anchor or dt.datetime.now(dt.timezone.utc)
    if at.tzinfo is not None:  # a naive anchor is already UTC (as --anchor parses it)
        at = at.astimezone(dt.timezone.utc).replace(tzinfo=None)
    with tempfile.TemporaryDirectory(prefix="segprovider-land-") as scratch:
        upstream = DuckDBWarehouse(Path(scratch) / "upstream.duckdb")
        try:
            counts = generate(upstream, customers, seed=seed, anchor=at)
            written = write_landing_files(upstream, Path(data_dir) / "landing")
        finally:
            upstream.close()
    return counts, written

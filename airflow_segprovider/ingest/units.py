"""The units a load reads, one kind per source kind: files, a warehouse table or query, API pages.

A unit is one file, one API page or one query result, as a relation of the typing
engine (DuckDB) selecting the source's fields plus ``ROW_COLUMN``, each row's 1-based
position in its unit. Files are read in place by DuckDB's readers; a warehouse
table is read in place on DuckDB and copied into the private engine, in Arrow
batches, from any other warehouse; an API page, already in memory, is registered
as an Arrow table.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.sql.dialects import text_literal as text
from airflow_segprovider.core.state.ingest import (
    BATCH_VIEW,
    INCREMENTAL_ALIAS,
    INVALID_COLUMN,
    ROW_COLUMN,
    SOURCE_ALIAS,
    create_as_sql,
    page_view,
    source_copy_table,
)
from airflow_segprovider.ingest.errors import TerminalIngestError, TransientIngestError
from airflow_segprovider.ingest.sql import qualified, quote

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Source
    from airflow_segprovider.core.warehouses.base import Warehouse
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.ingest.layout import TableLayout

#: Rows per Arrow batch moved from the engine into another warehouse (and read from its tables).
TRANSFER_BATCH_ROWS = 100_000


@dataclass(frozen=True)
class Unit:
    """One file, page or query result: ``relation`` selects its fields plus ``ROW_COLUMN`` (1-based position)."""

    origin: str
    relation: str
    page: int | None = None


def file_units(source: Source, layout: TableLayout, root: Path) -> list[Unit]:
    assert source.path is not None
    pattern = source.path if os.path.isabs(source.path) else str(root / source.path)
    files = sorted(path for path in glob.glob(pattern, recursive=True) if os.path.isfile(path))
    if not files:
        raise TransientIngestError(f"no file matches {pattern!r}", source=source.name,
                                   hint="check the source's path; retry once the files have arrived")
    units = []
    for path in files:
        try:
            origin = str(Path(path).resolve().relative_to(root.resolve()))
        except ValueError:
            origin = str(Path(path).resolve())
        if source.format == "csv":
            # The dialect is fixed, not sniffed: a sniffer can take a broken line for the header or skip
            # lines; fixed, DuckDB names the line of any malformed row and the load fails.
            columns = ", ".join(f"{text(name)}: 'VARCHAR'" for name in _csv_header(source, path))
            relation = (f"SELECT *, ordinality AS {ROW_COLUMN} FROM read_csv({text(path)}, auto_detect=false, "
                        f"columns={{{columns}}}, header=true, delim={text(source.delimiter or ',')}, quote='\"', "
                        "escape='\"', skip=0, comment='', strict_mode=true) WITH ORDINALITY")
        elif source.format == "parquet":
            relation = (f"SELECT *, file_row_number + 1 AS {ROW_COLUMN} FROM read_parquet({text(path)}, "
                        "file_row_number=true)")
        else:  # jsonl: every declared field read as text; a missing key is a null value
            columns = ", ".join(f"{text(c)}: 'VARCHAR'" for c in layout.columns)
            relation = (f"SELECT *, ordinality AS {ROW_COLUMN} FROM read_json({text(path)}, format='newline_delimited', "
                        f"columns={{{columns}}}) WITH ORDINALITY")
        units.append(Unit(origin, relation))
    return units


def _csv_header(source: Source, path: str) -> list[str]:
    import csv

    with open(path, newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle, delimiter=source.delimiter or ","), None)
    if not header:
        raise TerminalIngestError(f"{path} has no header row", source=source.name,
                                  hint="CSV files start with a row of column names")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates or "" in header:
        raise TerminalIngestError(f"{path}: the header row has {'duplicate' if duplicates else 'empty'} column names "
                                  f"{duplicates or ['']}", source=source.name, hint="name every column once")
    return header


def warehouse_unit(source: Source, layout: TableLayout, warehouse: Warehouse, engine: DuckDBWarehouse,
                   watermark: str | None, load_id: str) -> Unit:
    """The source's table or query as one unit.

    On DuckDB the engine reads it in place. On other warehouses the query runs there (in the
    warehouse's own dialect, as the user wrote it) and its result streams into an engine table in
    Arrow batches, typed from there like any file. A result without rows (an incremental load with
    nothing new) streams no batch to learn its columns from: it is an empty unit of the declared fields.
    """
    if source.query:
        base, origin = source.query, "query"
    else:
        assert source.from_table is not None
        base, origin = f"SELECT * FROM {qualified(source.from_table, warehouse.schema)[0]}", source.from_table
    if source.incremental is not None and watermark is not None:
        base = (f"SELECT * FROM ({base}) AS {INCREMENTAL_ALIAS} "
                f"WHERE {quote(source.incremental.column)} > {text(watermark)}")
        origin += f" where {source.incremental.column} > {watermark}"
    if engine is warehouse:
        return Unit(origin, f"SELECT *, row_number() OVER () AS {ROW_COLUMN} FROM ({base}) AS {SOURCE_ALIAS}")
    copy = source_copy_table(load_id)
    created = False
    for batch in warehouse.iter_batches(base, TRANSFER_BATCH_ROWS):
        engine.connection.register(BATCH_VIEW, batch)
        try:
            if created:
                engine.execute(f"INSERT INTO {copy} SELECT * FROM {BATCH_VIEW}")
            else:
                engine.execute(create_as_sql("TABLE", copy, f"SELECT * FROM {BATCH_VIEW}"))
                created = True
        finally:
            engine.connection.unregister(BATCH_VIEW)
    if not created:  # no rows and no batch to learn the columns from: an empty unit of the declared fields
        fields = list(layout.columns)
        if source.incremental is not None and source.incremental.column not in fields:
            fields.append(source.incremental.column)
        nulls = "".join(f"CAST(NULL AS VARCHAR) AS {quote(field)}, " for field in fields)
        return Unit(origin, f"SELECT {nulls}NULL AS {ROW_COLUMN} WHERE FALSE")
    return Unit(origin, f"SELECT *, row_number() OVER () AS {ROW_COLUMN} FROM {copy}")


def rest_units(source: Source, layout: TableLayout, engine: DuckDBWarehouse, connection: Mapping[str, Any] | None,
               watermark: str | None, load_id: str) -> Iterator[Unit]:
    from airflow_segprovider.ingest.rest import iter_pages, open_client, page_table

    fields = list(layout.columns)
    if source.incremental is not None and source.incremental.column not in fields:
        fields.append(source.incremental.column)
    client, first_path = open_client(source, connection)
    view = page_view(load_id)
    try:
        for page in iter_pages(source, client, first_path, watermark):
            engine.connection.register(view, page_table(page.records, fields, ROW_COLUMN, INVALID_COLUMN))
            try:
                yield Unit(page.origin, f"SELECT * FROM {view}", page.number)
            finally:
                engine.connection.unregister(view)
    finally:
        client.close()

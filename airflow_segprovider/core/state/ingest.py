"""Ingest's state in the warehouse: the load ledger, the quarantine, and the load's staging tables.

``segprovider_source_loads`` (:data:`LOADS_TABLE`)
    one row per load attempt: its source and table, counts of what it read, loaded
    and quarantined, its status and error, and the source's incremental watermark
    after it (the watermark of a source is the one of its latest successful load).
``segprovider_quarantine`` (:data:`QUARANTINE_TABLE`)
    one row per rejected value: the source, the load, where the row came from
    (``origin``: the file, or the page request; ``page`` for APIs; ``row_number``:
    1-based row in the file or record in the page), the row's key as read, the
    column, the raw value and the reason.

Staging, one set per load (``<prefix><first 12 hex digits of the load id>``), never
outliving its load's transaction:

``__segprovider_rows_<id>``
    a unit's rows read, typed and checked by the typing engine (DuckDB); its
    ``_latest`` sibling holds the last row of each key for an upsert on DuckDB.
``__segprovider_source_<id>``
    a warehouse-table source's rows copied into a private typing engine.
``__segprovider_page_<id>`` and ``__segprovider_batch``
    views of Arrow data registered in the typing engine (an API page, a batch read
    from the warehouse).
``__segprovider_stage_<id>``
    the target warehouse's temporary table of the rows a unit upserts.

The model tables a load writes (customers, events, ...) are named by the project's
data model and created by :mod:`airflow_segprovider.ingest`; an ``append`` source's
table has one column named here, ``_segprovider_load`` (:data:`LOAD_COLUMN`). The
typing engine's working columns and subquery aliases are named here too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import quoted_table, render

if TYPE_CHECKING:
    from airflow_segprovider.core.warehouses.base import Warehouse

LOADS_TABLE = "segprovider_source_loads"
QUARANTINE_TABLE = "segprovider_quarantine"
#: Prefixes of the staging tables and views a load names ``<prefix><load id[:12]>``.
ROWS_PREFIX = "__segprovider_rows_"
SOURCE_COPY_PREFIX = "__segprovider_source_"
PAGE_VIEW_PREFIX = "__segprovider_page_"
STAGE_PREFIX = "__segprovider_stage_"
#: The view of one Arrow batch read from a warehouse-table source, registered in the typing engine.
BATCH_VIEW = "__segprovider_batch"

#: Column that identifies which file or page an appended row came from.
LOAD_COLUMN = "_segprovider_load"
#: Column of each unit's relation in the typing engine: the row's 1-based position in its unit.
ROW_COLUMN = "__segprovider_row"
#: Column of an API page: a record's JSON text when the record is not a JSON object.
INVALID_COLUMN = "__segprovider_invalid"
#: Subquery aliases of the typing engine's SQL: a unit's relation, an incremental source's
#: query before its watermark filter, a warehouse-table source read in place.
UNIT_ALIAS = "__segprovider_unit"
INCREMENTAL_ALIAS = "__segprovider_all"
SOURCE_ALIAS = "__segprovider_source"

TABLES = (LOADS_TABLE, QUARANTINE_TABLE, ROWS_PREFIX, SOURCE_COPY_PREFIX, PAGE_VIEW_PREFIX, STAGE_PREFIX,
          BATCH_VIEW)

#: The ledger's columns, in table order.
LOADS_COLUMNS = ("source", "table_name", "load_id", "mode", "status", "started_at", "finished_at", "rows_read",
                 "rows_loaded", "rows_quarantined", "units", "watermark", "error")
#: The quarantine's columns, in table order.
QUARANTINE_COLUMNS = ("source", "table_name", "load_id", "origin", "page", "row_number", "record_key", "column_name",
                      "raw_value", "reason", "quarantined_at")

_DDL = (
    """CREATE TABLE IF NOT EXISTS {loads} (
        source VARCHAR NOT NULL, table_name VARCHAR NOT NULL, load_id VARCHAR NOT NULL, mode VARCHAR NOT NULL,
        status VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP NOT NULL,
        rows_read BIGINT NOT NULL, rows_loaded BIGINT NOT NULL, rows_quarantined BIGINT NOT NULL,
        units BIGINT NOT NULL, watermark VARCHAR, error VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS {quarantine} (
        source VARCHAR NOT NULL, table_name VARCHAR NOT NULL, load_id VARCHAR NOT NULL, origin VARCHAR NOT NULL,
        page BIGINT, row_number BIGINT, record_key VARCHAR, column_name VARCHAR, raw_value VARCHAR,
        reason VARCHAR NOT NULL, quarantined_at TIMESTAMP NOT NULL)""",
)


def loads_table(warehouse: Warehouse) -> str:
    """The ledger's SQL reference in the warehouse's schema."""
    return quoted_table(LOADS_TABLE, warehouse.schema)


def quarantine_table(warehouse: Warehouse) -> str:
    """The quarantine's SQL reference in the warehouse's schema."""
    return quoted_table(QUARANTINE_TABLE, warehouse.schema)


def ensure_tables(warehouse: Warehouse) -> None:
    for statement in _DDL:
        warehouse.execute(render(statement.format(loads=loads_table(warehouse),
                                                  quarantine=quarantine_table(warehouse)), warehouse.dialect))


def rows_table(load_id: str) -> str:
    """The typing engine's table of the unit being applied."""
    return f"{ROWS_PREFIX}{load_id[:12]}"


def latest_rows_table(rows: str) -> str:
    """The typing engine's table of the last row of each key of ``rows`` (upserts on DuckDB)."""
    return f"{rows}_latest"


def source_copy_table(load_id: str) -> str:
    """The private typing engine's copy of a warehouse-table source's rows."""
    return f"{SOURCE_COPY_PREFIX}{load_id[:12]}"


def page_view(load_id: str) -> str:
    """The typing engine's view of the API page being applied."""
    return f"{PAGE_VIEW_PREFIX}{load_id[:12]}"


def stage_table(load_id: str) -> str:
    """The target warehouse's staging table of upserted rows (unquoted)."""
    return f"{STAGE_PREFIX}{load_id[:12]}"


def create_as_sql(kind: str, table: str, select: str) -> str:
    """``CREATE OR REPLACE`` a staging table of the typing engine from ``select``.

    :param kind: ``TABLE`` or ``TEMP TABLE``.
    """
    return f"CREATE OR REPLACE {kind} {table} AS {select}"


def create_stage_sql(table: str, definition: str) -> str:
    """Create the target's temporary staging table (``definition``: its columns and types)."""
    return f"CREATE TEMP TABLE {table} ({definition})"

"""The load ledger and the quarantine: what every load read, loaded and rejected, and why.

``segprovider_source_loads`` has one row per load attempt. A successful load writes
its row in the same transaction as its data, so the ledger never claims rows that
are not there; a failed load writes its row after the rollback (``status = 'failed'``,
``error`` set, counts of what was read before the failure, watermark unchanged).
The freshness gate reads :func:`last_loads`.

``segprovider_quarantine`` has one row per rejected value: the source, the load, where
the row came from (``origin``: the file, or the page request; ``page`` for APIs;
``row_number``: 1-based row in the file or record in the page), the row's key as read,
the column, the raw value and the reason. Reloading an origin (the same file, the
same page request) replaces its earlier quarantine rows; a ``replace`` load replaces
all of its source's.

Both tables' names and DDL live in :mod:`airflow_segprovider.core.state.ingest`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.sql.dialects import render
from airflow_segprovider.core.sql.dialects import text_literal as text
from airflow_segprovider.core.state.ingest import (
    LOADS_COLUMNS,
    LOADS_TABLE,
    QUARANTINE_COLUMNS,
    QUARANTINE_TABLE,
    ensure_tables,
    loads_table,
    quarantine_table,
)

if TYPE_CHECKING:
    from airflow_segprovider.core.warehouses.base import Warehouse

__all__ = [
    "LOADS_TABLE",
    "QUARANTINE_COLUMNS",
    "QUARANTINE_TABLE",
    "current_watermark",
    "ensure_tables",
    "last_loads",
    "loads_table",
    "quarantine_table",
    "record_load",
    "stored_watermarks",
    "text",
    "timestamp",
]


def timestamp(value: dt.datetime) -> str:
    return f"TIMESTAMP '{value.isoformat(sep=' ')}'"


def current_watermark(warehouse: Warehouse, source: str) -> str | None:
    """The watermark after the source's latest successful load, or None before the first one."""
    rows = warehouse.query(render(
        f"SELECT watermark FROM {loads_table(warehouse)} WHERE source = {text(source)} AND status = 'succeeded' "
        "ORDER BY finished_at DESC, started_at DESC LIMIT 1", warehouse.dialect))
    return rows[0][0] if rows else None


def stored_watermarks(warehouse: Warehouse, source: str) -> list[str]:
    """Every distinct watermark of the source's successful loads, newest load first."""
    rows = warehouse.query(render(
        f"SELECT watermark, max(finished_at) AS latest FROM {loads_table(warehouse)} WHERE source = {text(source)} "
        "AND status = 'succeeded' AND watermark IS NOT NULL GROUP BY watermark ORDER BY latest DESC",
        warehouse.dialect))
    return [row[0] for row in rows]


def record_load(warehouse: Warehouse, row: dict[str, Any]) -> None:
    """Append one ledger row (``row`` has every column of the ledger)."""
    values = ", ".join([
        text(row["source"]), text(row["table_name"]), text(row["load_id"]), text(row["mode"]), text(row["status"]),
        timestamp(row["started_at"]), timestamp(row["finished_at"]), str(int(row["rows_read"])),
        str(int(row["rows_loaded"])), str(int(row["rows_quarantined"])), str(int(row["units"])),
        text(row["watermark"]), text(row["error"]),
    ])
    columns = ", ".join(LOADS_COLUMNS)
    warehouse.execute(render(f"INSERT INTO {loads_table(warehouse)} ({columns}) VALUES ({values})",
                             warehouse.dialect))


def last_loads(warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    """Each source's latest successful load: ``{source: {table_name, load_id, finished_at, rows_loaded, ...}}``.

    Sources never loaded successfully are absent. This is what the freshness gate compares with its threshold.
    """
    if warehouse.columns(LOADS_TABLE) is None:
        return {}
    columns = ", ".join(LOADS_COLUMNS)
    records = warehouse.query_records(render(
        f"SELECT {columns} FROM (SELECT {columns}, row_number() OVER (PARTITION BY source ORDER BY finished_at DESC, "
        f"started_at DESC) AS load_rank FROM {loads_table(warehouse)} WHERE status = 'succeeded') AS latest "
        "WHERE load_rank = 1 ORDER BY source", warehouse.dialect))
    return {record["source"]: record for record in records}

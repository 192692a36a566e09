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
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_segprovider.core.warehouse import DuckDBWarehouse

LOADS_TABLE = "segprovider_source_loads"
QUARANTINE_TABLE = "segprovider_quarantine"

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {LOADS_TABLE} (
        source VARCHAR NOT NULL, table_name VARCHAR NOT NULL, load_id VARCHAR NOT NULL, mode VARCHAR NOT NULL,
        status VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP NOT NULL,
        rows_read BIGINT NOT NULL, rows_loaded BIGINT NOT NULL, rows_quarantined BIGINT NOT NULL,
        units BIGINT NOT NULL, watermark VARCHAR, error VARCHAR)""",
    f"""CREATE TABLE IF NOT EXISTS {QUARANTINE_TABLE} (
        source VARCHAR NOT NULL, table_name VARCHAR NOT NULL, load_id VARCHAR NOT NULL, origin VARCHAR NOT NULL,
        page BIGINT, row_number BIGINT, record_key VARCHAR, column_name VARCHAR, raw_value VARCHAR,
        reason VARCHAR NOT NULL, quarantined_at TIMESTAMP NOT NULL)""",
)


def text(value: str | None) -> str:
    """A SQL string literal (or NULL)."""
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def timestamp(value: dt.datetime) -> str:
    return f"TIMESTAMP '{value.isoformat(sep=' ')}'"


def ensure_tables(warehouse: DuckDBWarehouse) -> None:
    for statement in _DDL:
        warehouse.execute(statement)


def current_watermark(warehouse: DuckDBWarehouse, source: str) -> str | None:
    """The watermark after the source's latest successful load, or None before the first one."""
    rows = warehouse.query(
        f"SELECT watermark FROM {LOADS_TABLE} WHERE source = {text(source)} AND status = 'succeeded' "
        "ORDER BY finished_at DESC, started_at DESC LIMIT 1")
    return rows[0][0] if rows else None


def record_load(warehouse: DuckDBWarehouse, row: dict[str, Any]) -> None:
    """Append one ledger row (``row`` has every column of the ledger)."""
    values = ", ".join([
        text(row["source"]), text(row["table_name"]), text(row["load_id"]), text(row["mode"]), text(row["status"]),
        timestamp(row["started_at"]), timestamp(row["finished_at"]), str(int(row["rows_read"])),
        str(int(row["rows_loaded"])), str(int(row["rows_quarantined"])), str(int(row["units"])),
        text(row["watermark"]), text(row["error"]),
    ])
    warehouse.execute(f"INSERT INTO {LOADS_TABLE} VALUES ({values})")


def last_loads(warehouse: DuckDBWarehouse) -> dict[str, dict[str, Any]]:
    """Each source's latest successful load: ``{source: {table_name, load_id, finished_at, rows_loaded, ...}}``.

    Sources never loaded successfully are absent. This is what the freshness gate compares with its threshold.
    """
    if warehouse.columns(LOADS_TABLE) is None:
        return {}
    records = warehouse.query_records(
        f"SELECT * EXCLUDE (rank) FROM (SELECT *, row_number() OVER (PARTITION BY source ORDER BY finished_at DESC, "
        f"started_at DESC) AS rank FROM {LOADS_TABLE} WHERE status = 'succeeded') WHERE rank = 1 ORDER BY source")
    return {record["source"]: record for record in records}

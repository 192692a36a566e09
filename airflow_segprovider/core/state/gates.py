"""The gates' state in the warehouse: destination counts, and the gate queries' materialized results.

``segprovider_destination_counts`` (:data:`DESTINATION_COUNTS`)
    one row per report of what a destination holds: ``sync_id``, ``destination``,
    ``reported_count`` (NULL when the destination could not say), ``reported_at``,
    ``phase`` (``before`` or ``after`` the sync) and the ``as_of`` of the run that
    asked; and the destination's own notion of that size: ``reported_lower`` and
    ``reported_upper`` (the range a vendor reports, Meta's approximate bounds),
    ``min_match_rate`` (the lowest share of the people sent it may count: 1 for an
    exact count, below 1 for an ad platform counting the people it matched),
    ``match_rate`` (the share it says it matched, where it says) and ``pending``
    (it says it is still applying changes). History is kept; the
    ``cross_system_counts`` gate reads the latest report of its phase and ``as_of``.
``segprovider_gate_<16 hex digits>`` (:data:`GATE_RESULT_PREFIX`)
    where Great Expectations' SQL datasource validates a gate, the gate query's small
    result, created once so GX computes every metric on it, and dropped after the
    validation.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import quoted_table, render

if TYPE_CHECKING:
    from airflow_segprovider.core.warehouses.base import Warehouse

DESTINATION_COUNTS = "segprovider_destination_counts"
#: Prefix of a gate query's materialized result (``<prefix><16 hex digits>``).
GATE_RESULT_PREFIX = "segprovider_gate_"

TABLES = (DESTINATION_COUNTS, GATE_RESULT_PREFIX)

_COUNTS_COLUMNS = ("sync_id VARCHAR NOT NULL, destination VARCHAR NOT NULL, reported_count BIGINT, "
                   "reported_at TIMESTAMP NOT NULL, phase VARCHAR NOT NULL, as_of TIMESTAMP NOT NULL")
#: columns added after the table was first released: an older table gets them on the next
#: :func:`ensure_counts_table` (its rows read NULL there, which the gate reads as an exact count)
_COUNTS_ADDED_COLUMNS = (("reported_lower", "BIGINT"), ("reported_upper", "BIGINT"), ("min_match_rate", "DOUBLE"),
                         ("match_rate", "DOUBLE"), ("pending", "BOOLEAN"))


def ensure_counts_table(warehouse: Warehouse) -> None:
    """Create ``segprovider_destination_counts`` if it is missing, and add the columns an older one lacks."""
    ref = quoted_table(DESTINATION_COUNTS, warehouse.schema)
    warehouse.execute(render(f"CREATE TABLE IF NOT EXISTS {ref} ({_COUNTS_COLUMNS})", warehouse.dialect))
    for column, kind in _COUNTS_ADDED_COLUMNS:
        warehouse.execute(render(f"ALTER TABLE {ref} ADD COLUMN IF NOT EXISTS {column} {kind}", warehouse.dialect))


def gate_result_table(schema: str | None) -> str:
    """A new, unique result table's SQL reference in ``schema``."""
    return quoted_table(f"{GATE_RESULT_PREFIX}{uuid.uuid4().hex[:16]}", schema)


def create_gate_result_sql(table: str, sql: str) -> str:
    """Create ``table`` from the gate query ``sql`` (already in the warehouse's dialect)."""
    return f"CREATE TABLE {table} AS {sql}"


def drop_gate_result_sql(table: str) -> str:
    return f"DROP TABLE IF EXISTS {table}"

"""The SQL each gate validates: small, one row per checked thing, never a whole table.

Every query is written once in DuckDB's dialect and transpiled with
:func:`~airflow_segprovider.core.sql.dialects.render`, like the core's own statements.
Values that depend on ``as_of`` are emitted as typed literals; ages and type
families are derived in Python from the fetched rows (see :mod:`airflow_segprovider.gates.frames`), so no
dialect has to do date arithmetic. One module per gate:

=======================  ==========================================================
gate                     one row per
=======================  ==========================================================
``freshness``            table of the data model (newest timestamp at or before
                         ``as_of``), and declared source's last successful load
``types``                sampled customer row (profiled into one row per attribute)
``segment_size``         sync: the segment's (or arm's) size and previous size
``consent``              sync: planned payload checked against the consent table
``cross_system_counts``  sync: what the destination reported against what we expect
=======================  ==========================================================
"""

from __future__ import annotations

from airflow_segprovider.gates.queries.common import (
    GATES,
    HUB_GATES,
    PHASES,
    SYNC_GATES,
    GateConfigError,
    check_gate,
    gate_syncs,
    no_rows,
)
from airflow_segprovider.gates.queries.consent import consent_sql, planned_payload_sql
from airflow_segprovider.gates.queries.counts import cross_system_counts_sql
from airflow_segprovider.gates.queries.freshness import freshness_sql, timestamp_columns
from airflow_segprovider.gates.queries.size import segment_size_sql
from airflow_segprovider.gates.queries.types import DEFAULT_SAMPLE_ROWS, SAMPLE_SEED, type_attributes, types_sql

__all__ = [
    "DEFAULT_SAMPLE_ROWS",
    "GATES",
    "HUB_GATES",
    "PHASES",
    "SAMPLE_SEED",
    "SYNC_GATES",
    "GateConfigError",
    "check_gate",
    "consent_sql",
    "cross_system_counts_sql",
    "freshness_sql",
    "gate_syncs",
    "no_rows",
    "planned_payload_sql",
    "segment_size_sql",
    "timestamp_columns",
    "type_attributes",
    "types_sql",
]

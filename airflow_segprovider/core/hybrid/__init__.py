"""The hybrid model: the attribute hub (build, freshness, types), the push to each spoke, spoke segments, drift.

* :mod:`.build` builds the hub's profile table from the ingested tables (:class:`HubBuilder`),
  with each attribute's change time; :mod:`.sources` reads the source loads it comes from.
* :mod:`.freshness` tells how old each attribute's sources are and whether the hub is behind them.
* :mod:`.types` compares the model's, the hub's and each spoke's field types, and writes a value in
  a spoke field's wire format (:func:`to_wire`).
* :mod:`.push` sends changed profiles to a spoke (:class:`AttributePushEngine`, the sync engine in
  upsert mode over the hub).
* :mod:`.spokes` evaluates a spoke segment's rule centrally; the spokes' own segment languages
  are written by :mod:`airflow_segprovider.destinations.spoke_segments`.
* :mod:`.drift` compares what the hub expects with what the spokes report.

The hub's tables are named and created in :mod:`airflow_segprovider.core.state.hybrid`.

Pure core: no Airflow, no HTTP. SQL is written in DuckDB's dialect and rendered for the warehouse.
"""

from __future__ import annotations

from airflow_segprovider.core.destination import FieldType
from airflow_segprovider.core.hybrid.build import HubBuilder, HubBuildResult, latest_build
from airflow_segprovider.core.hybrid.drift import (
    DriftFinding,
    compare_counts,
    hub_drift_findings,
    record_drift,
)
from airflow_segprovider.core.hybrid.errors import HubError, WireTypeError
from airflow_segprovider.core.hybrid.freshness import freshness_rows
from airflow_segprovider.core.hybrid.hub import quoted_name, require_hub
from airflow_segprovider.core.hybrid.push import AttributePushEngine, push_sync
from airflow_segprovider.core.hybrid.sources import attribute_sources, source_loads
from airflow_segprovider.core.hybrid.spokes import spoke_count_sql, spoke_rule_sql
from airflow_segprovider.core.hybrid.types import COMPATIBLE, find_field, to_wire, type_checks, warehouse_type_matches

__all__ = [
    "COMPATIBLE",
    "AttributePushEngine",
    "DriftFinding",
    "FieldType",
    "HubBuildResult",
    "HubBuilder",
    "HubError",
    "WireTypeError",
    "attribute_sources",
    "compare_counts",
    "find_field",
    "freshness_rows",
    "hub_drift_findings",
    "latest_build",
    "push_sync",
    "quoted_name",
    "record_drift",
    "require_hub",
    "source_loads",
    "spoke_count_sql",
    "spoke_rule_sql",
    "to_wire",
    "type_checks",
    "warehouse_type_matches",
]

"""Freshness: how old each hub attribute's sources are, and whether the hub is behind them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.hybrid.hub import require_hub
from airflow_segprovider.core.hybrid.sources import attribute_sources, source_loads
from airflow_segprovider.core.sql.dialects import render
from airflow_segprovider.core.state.hybrid import HUB_FRESHNESS

if TYPE_CHECKING:
    import datetime as dt

    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.warehouses.base import Warehouse


def freshness_rows(project: Project, warehouse: Warehouse, as_of: dt.datetime) -> list[dict[str, Any]]:
    """One row per hub attribute and source: the source's age at ``as_of`` and whether the hub is behind it.

    ``stale_hub`` is true when the source changed after the hub last absorbed it (the hub is older
    than its source); ``source_age_hours`` is None for a declared source never loaded.
    """
    hub = require_hub(project)
    loads = source_loads(warehouse)
    absorbed: dict[str, Any] = {}
    if warehouse.columns(HUB_FRESHNESS) is not None:
        absorbed = {row["attribute"]: row for row in warehouse.query_records(render(
            f"SELECT attribute, source_changed_at, hub_built_at FROM {HUB_FRESHNESS}", warehouse.dialect))}
    rows = []
    for attribute in hub.attributes.values():
        record = absorbed.get(attribute.name)
        built = record["hub_built_at"] if record else None
        sources = attribute_sources(project, attribute) or [None]
        for source in sources:
            load = loads.get(source or "", {})
            last_load, last_change = load.get("last_load"), load.get("last_change")
            rows.append({
                "attribute": attribute.name,
                "source": source or "(none declared)",
                "source_table": attribute.source_table,
                "last_load": last_load,
                "source_changed_at": last_change,
                "hub_built_at": built,
                "source_age_hours": None if last_load is None and source else
                (0.0 if source is None else round((as_of - last_load).total_seconds() / 3600, 3)),
                "stale_hub": bool(built is None or (last_change is not None and last_change > built)),
            })
    return rows

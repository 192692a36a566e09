"""The hub's sources and their loads: which declared sources feed an attribute, and when each last loaded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.sql.dialects import render
from airflow_segprovider.core.state.ingest import LOADS_TABLE

if TYPE_CHECKING:
    from airflow_segprovider.core.project.hybrid import HubAttribute
    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.warehouses.base import Warehouse


def attribute_sources(project: Project, attribute: HubAttribute) -> list[str]:
    """The declared sources that load the table ``attribute`` is read from."""
    return sorted(name for name, source in project.sources.items() if source.table == attribute.source_table)


def source_loads(warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    """Per source: ``last_load`` (latest successful load) and ``last_change`` (latest one that loaded rows)."""
    if warehouse.columns(LOADS_TABLE) is None:
        return {}
    rows = warehouse.query(render(
        f"SELECT source, MAX(finished_at), MAX(CASE WHEN rows_loaded > 0 THEN finished_at END) "
        f"FROM {LOADS_TABLE} WHERE status = 'succeeded' GROUP BY source", warehouse.dialect))
    return {source: {"last_load": last, "last_change": change} for source, last, change in rows}

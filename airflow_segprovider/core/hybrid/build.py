"""Building the hub: the profile table and its freshness record.

:class:`HubBuilder` builds the profile table (``hub.table``) from the ingested tables: customer
attributes, event aggregates and the latest consent per channel, one row per customer. Each
attribute has a ``<attribute>__changed_at`` column: when its source last changed the value (the
finish time of the source load the new value arrived with). ``segprovider_hub_freshness`` keeps
one row per attribute: its sources' latest change and when the hub last absorbed it.

Pure core: no Airflow, no HTTP. SQL is written in DuckDB's dialect and rendered for the warehouse.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_segprovider.core.evaluate.compiler import EXACT_NUMBER
from airflow_segprovider.core.evaluate.customers import customer_relation_sql
from airflow_segprovider.core.hybrid.hub import quoted_name, require_hub, utc_now
from airflow_segprovider.core.hybrid.sources import attribute_sources, source_loads
from airflow_segprovider.core.sql.dialects import quote_identifier as q
from airflow_segprovider.core.sql.dialects import quoted_table, render, text_literal, ts_literal
from airflow_segprovider.core.state.hybrid import (
    CHANGED_SUFFIX,
    HUB_BUILDS,
    HUB_FRESHNESS,
    KEY,
    create_next_profiles,
    ensure_tables,
    swap_in_profiles,
)
from airflow_segprovider.core.sync.consent import latest_consent_sql

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

    from airflow_segprovider.core.project.hybrid import HubAttribute
    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.warehouses.base import Warehouse

log = logging.getLogger(__name__)


@dataclass
class HubBuildResult:
    build_id: str
    as_of: str
    profiles: int
    changed_profiles: int
    changed_by_attribute: dict[str, int]
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class HubBuilder:
    """Builds the hub's profile table and its freshness record on one warehouse."""

    def __init__(self, project: Project, warehouse: Warehouse) -> None:
        self.project = project
        self.hub = require_hub(project)
        self.warehouse = warehouse

    def _table(self, name: str) -> str:
        return quoted_table(name, self.warehouse.schema)

    def profile_sql(self, as_of: dt.datetime) -> str:
        """One row per customer: ``customer_key`` and every hub attribute, as of ``as_of``."""
        model = self.project.model
        customer = model.customer
        key = f"CAST(c.{q(customer.key)} AS VARCHAR)"
        columns = [f"{key} AS {KEY}"]
        joins: list[str] = []
        for index, attribute in enumerate(self.hub.attributes.values()):
            if attribute.column is not None:
                columns.append(f"c.{q(attribute.column)} AS {q(attribute.name)}")
                continue
            alias = f"j{index}"
            if attribute.consent_channel is not None:
                consent = model.consent
                assert consent is not None
                latest = latest_consent_sql(consent, attribute.consent_channel, self.warehouse.schema, as_of)
                joins.append(f"LEFT JOIN ({latest}) AS {alias} ON {alias}.k = {key}")
                columns.append(f"{alias}.opted_in AS {q(attribute.name)}")
                continue
            event = model.events[attribute.event or ""]
            where = [f"{q(event.timestamp)} <= {ts_literal(as_of)}"]
            if event.type_column is not None:
                where.append(f"{q(event.type_column)} = {text_literal(event.type_value or '')}")
            aggregate = attribute.aggregate
            if aggregate == "count":
                value = "COUNT(*)"
            elif aggregate in ("first", "last"):
                value = f"{'MIN' if aggregate == 'first' else 'MAX'}({q(event.timestamp)})"
                if attribute.type == "date":
                    value = f"CAST({value} AS DATE)"
            else:
                # exact decimals, as the compiler computes them: a floating-point sum depends on the
                # order of its terms and would move __changed_at when nothing changed
                argument = q(attribute.property or "")
                if aggregate in ("sum", "avg"):
                    argument = f"CAST({argument} AS {EXACT_NUMBER})"
                value = f"{aggregate.upper()}({argument})"  # type: ignore[union-attr]
            joins.append(
                f"LEFT JOIN (SELECT CAST({q(event.customer_key)} AS VARCHAR) AS k, {value} AS v "
                f"FROM {self._table(event.table)} WHERE {' AND '.join(where)} GROUP BY 1) AS {alias} "
                f"ON {alias}.k = {key}")
            columns.append(f"{'COALESCE(' + alias + '.v, 0)' if aggregate in ('count', 'sum') else alias + '.v'} "
                           f"AS {q(attribute.name)}")
        # the attribute values valid at the build's as_of (point-in-time attributes)
        return (f"SELECT {', '.join(columns)} "
                f"FROM {customer_relation_sql(self.project, self.warehouse.schema, as_of, alias='c')} "
                + " ".join(joins))

    def build(self, as_of: dt.datetime) -> HubBuildResult:
        """Rebuild the profile table for ``as_of``; an attribute's ``__changed_at`` moves only when its value did.

        The new table is written beside the old one and swapped in one transaction: readers see
        the previous build or the new one, never half of one.
        """
        started = time.perf_counter()
        ensure_tables(self.warehouse)
        built_at = utc_now()
        build_id = f"hub__{uuid.uuid4().hex[:12]}"
        loads = source_loads(self.warehouse)
        table = self._table(self.hub.table)
        next_table = self._table(self.hub.table + "__next")
        previous = self.warehouse.columns(quoted_name(self.hub.table, self.warehouse.schema))
        changed_at: list[str] = []
        changed_flags: list[str] = []
        for attribute in self.hub.attributes.values():
            when = self._source_changed_at(attribute, loads) or as_of
            name = q(attribute.name)
            if previous is not None and attribute.name in previous and attribute.name + CHANGED_SUFFIX in previous:
                differs = f"(p.{KEY} IS NULL OR p.{name} IS DISTINCT FROM n.{name})"
                changed_at.append(f"CASE WHEN {differs} THEN {ts_literal(when)} "
                                  f"ELSE p.{q(attribute.name + CHANGED_SUFFIX)} END AS {q(attribute.name + CHANGED_SUFFIX)}")
            else:
                differs = "TRUE"
                changed_at.append(f"{ts_literal(when)} AS {q(attribute.name + CHANGED_SUFFIX)}")
            changed_flags.append(f"CASE WHEN {differs} THEN 1 ELSE 0 END AS {q('chg__' + attribute.name)}")
        source = f"({self.profile_sql(as_of)}) AS n"
        if previous is not None:
            source += f" LEFT JOIN {table} AS p ON p.{KEY} = n.{KEY}"
        create_next_profiles(
            self.warehouse, next_table,
            f"SELECT n.*, {', '.join(changed_at)}, {', '.join(changed_flags)}, "
            f"{ts_literal(built_at)} AS hub_built_at FROM {source}")
        counts = self.warehouse.query_records(render(
            "SELECT COUNT(*) AS profiles, "
            + ", ".join(f"SUM({q('chg__' + a)}) AS {q(a)}" for a in self.hub.attributes)
            + f", SUM(CASE WHEN {' + '.join(q('chg__' + a) for a in self.hub.attributes)} > 0 THEN 1 ELSE 0 END) "
            f"AS any_changed FROM {next_table}", self.warehouse.dialect))[0]
        profiles = int(counts.pop("profiles") or 0)
        any_changed = int(counts.pop("any_changed") or 0)
        changed = {name: int(value or 0) for name, value in counts.items()}
        with self.warehouse.transaction():
            swap_in_profiles(self.warehouse, next_table, table, self.hub.table,
                             ["chg__" + attribute for attribute in self.hub.attributes])
            self._record(build_id, as_of, built_at, profiles, any_changed, changed, loads,
                         round(time.perf_counter() - started, 3))
        result = HubBuildResult(build_id, as_of.isoformat(), profiles, any_changed, changed,
                                round(time.perf_counter() - started, 3))
        log.info("hub %s built: %d profiles, %d changed (%s)", self.hub.table, profiles, any_changed, changed)
        return result

    def _source_changed_at(self, attribute: HubAttribute, loads: Mapping[str, Mapping[str, Any]]) -> dt.datetime | None:
        changes = [loads[s]["last_change"] for s in attribute_sources(self.project, attribute)
                   if s in loads and loads[s]["last_change"] is not None]
        return max(changes) if changes else None

    def _record(self, build_id: str, as_of: dt.datetime, built_at: dt.datetime, profiles: int, changed: int,
                by_attribute: dict[str, int], loads: Mapping[str, Mapping[str, Any]], duration_s: float) -> None:
        self.warehouse.upsert(HUB_BUILDS, ["build_id"], pa.table({
            "build_id": [build_id], "as_of": pa.array([as_of], pa.timestamp("us")),
            "built_at": pa.array([built_at], pa.timestamp("us")), "profiles": pa.array([profiles], pa.int64()),
            "changed_profiles": pa.array([changed], pa.int64()), "duration_s": [duration_s]}))
        attributes = list(self.hub.attributes.values())
        self.warehouse.upsert(HUB_FRESHNESS, ["attribute"], pa.table({
            "attribute": [a.name for a in attributes],
            "source_table": [a.source_table for a in attributes],
            "sources": [",".join(attribute_sources(self.project, a)) or None for a in attributes],
            "source_changed_at": pa.array([self._source_changed_at(a, loads) for a in attributes], pa.timestamp("us")),
            "hub_built_at": pa.array([built_at] * len(attributes), pa.timestamp("us")),
            "build_id": [build_id] * len(attributes),
            "changed_profiles": pa.array([by_attribute.get(a.name, 0) for a in attributes], pa.int64()),
        }))


def latest_build(warehouse: Warehouse) -> dict[str, Any] | None:
    if warehouse.columns(HUB_BUILDS) is None:
        return None
    rows = warehouse.query_records(render(f"SELECT * FROM {HUB_BUILDS} ORDER BY built_at DESC LIMIT 1",
                                          warehouse.dialect))
    return rows[0] if rows else None


"""The hybrid model's attribute hub: canonical profiles, their freshness, typed pushes and drift.

* :class:`HubBuilder` builds the profile table (``hub.table``) from the ingested tables: customer
  attributes, event aggregates and the latest consent per channel, one row per customer. Each
  attribute has a ``<attribute>__changed_at`` column: when its source last changed the value (the
  finish time of the source load the new value arrived with). ``segprovider_hub_freshness`` keeps
  one row per attribute: its sources' latest change and when the hub last absorbed it.
* :func:`type_checks` compares what the hub holds (warehouse column types) with what the model
  declares and with what each spoke's field expects (Mailchimp merge-field types, HubSpot property
  types); :func:`to_wire` converts one value to the spoke's documented format, or refuses it.
* :class:`AttributePushEngine` is the sync engine in upsert mode over the hub instead of a
  segment snapshot: a row hash per profile and destination (``segprovider_sync_state`` under
  sync id ``hub__<destination>``, committed per acknowledged batch) means only changed profiles
  are sent, and nothing is ever removed.
* :func:`spoke_count_sql` evaluates a spoke segment's rule centrally, on the hub's values of the
  profiles the spoke acknowledged; :func:`mailchimp_conditions` and :func:`hubspot_filter_branch`
  write the same rule in each spoke's own segment language.

Pure core: no Airflow, no HTTP. SQL is written in DuckDB's dialect and rendered for the warehouse.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_segprovider.core.evaluate.compiler import EXACT_NUMBER
from airflow_segprovider.core.evaluate.dialects import quote_identifier as q
from airflow_segprovider.core.evaluate.dialects import quoted_table, render
from airflow_segprovider.core.errors import SegproviderError
from airflow_segprovider.core.state.membership import text_literal, ts_literal
from airflow_segprovider.core.project.hybrid import push_sync_id
from airflow_segprovider.core.project.spec import AttributeCondition, Sync
from airflow_segprovider.core.sync.engine import STATE, SyncEngine, SyncOptions, SyncRunRecord, latest_consent_sql

if TYPE_CHECKING:
    from airflow_segprovider.core.project.hybrid import AttributePush, Hub, HubAttribute, SpokeSegment
    from airflow_segprovider.core.project.spec import Destination, Project
    from airflow_segprovider.core.warehouses.base import Warehouse
    from airflow_segprovider.core.destination import DestinationClient

log = logging.getLogger(__name__)

HUB_BUILDS = "segprovider_hub_builds"
HUB_FRESHNESS = "segprovider_hub_freshness"
DRIFT_REPORTS = "segprovider_drift_reports"
SOURCE_LOADS = "segprovider_source_loads"
KEY = "customer_key"
CHANGED_SUFFIX = "__changed_at"

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {HUB_BUILDS} (
        build_id VARCHAR NOT NULL, as_of TIMESTAMP NOT NULL, built_at TIMESTAMP NOT NULL,
        profiles BIGINT NOT NULL, changed_profiles BIGINT NOT NULL, duration_s DOUBLE, PRIMARY KEY (build_id))""",
    f"""CREATE TABLE IF NOT EXISTS {HUB_FRESHNESS} (
        attribute VARCHAR NOT NULL, source_table VARCHAR NOT NULL, sources VARCHAR,
        source_changed_at TIMESTAMP, hub_built_at TIMESTAMP NOT NULL, build_id VARCHAR NOT NULL,
        changed_profiles BIGINT NOT NULL, PRIMARY KEY (attribute))""",
    f"""CREATE TABLE IF NOT EXISTS {DRIFT_REPORTS} (
        run_id VARCHAR NOT NULL, checked_at TIMESTAMP NOT NULL, kind VARCHAR NOT NULL, name VARCHAR NOT NULL,
        destination VARCHAR NOT NULL, expected BIGINT, reported BIGINT, drift DOUBLE, tolerance DOUBLE,
        status VARCHAR NOT NULL, detail VARCHAR, PRIMARY KEY (run_id, kind, name, destination))""",
)


class HubError(SegproviderError):
    """The hub cannot do what was asked (no hub declared, not built yet, unknown destination)."""


class WireTypeError(SegproviderError):
    """A value cannot be written in the type the destination's field expects."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def require_hub(project: Project) -> Hub:
    if project.hub is None:
        raise HubError(f"project {project.name!r} declares no 'hub:'; the hybrid model needs one (see the "
                       "segments language reference, 'The hybrid model')")
    return project.hub


def ensure_tables(warehouse: Warehouse) -> None:
    for statement in _DDL:
        warehouse.execute(render(statement, warehouse.dialect))


# --- the hub's sources and their loads ----------------------------------------------------------


def attribute_sources(project: Project, attribute: HubAttribute) -> list[str]:
    """The declared sources that load the table ``attribute`` is read from."""
    return sorted(name for name, source in project.sources.items() if source.table == attribute.source_table)


def source_loads(warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    """Per source: ``last_load`` (latest successful load) and ``last_change`` (latest one that loaded rows)."""
    if warehouse.columns(SOURCE_LOADS) is None:
        return {}
    rows = warehouse.query(render(
        f"SELECT source, MAX(finished_at), MAX(CASE WHEN rows_loaded > 0 THEN finished_at END) "
        f"FROM {SOURCE_LOADS} WHERE status = 'succeeded' GROUP BY source", warehouse.dialect))
    return {source: {"last_load": last, "last_change": change} for source, last, change in rows}


# --- building the hub ---------------------------------------------------------------------------


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
        return (f"SELECT {', '.join(columns)} FROM {self._table(customer.table)} AS c "
                + " ".join(joins))

    def build(self, as_of: dt.datetime) -> HubBuildResult:
        """Rebuild the profile table for ``as_of``; an attribute's ``__changed_at`` moves only when its value did.

        The new table is written beside the old one and swapped in one transaction: readers see
        the previous build or the new one, never half of one.
        """
        started = time.perf_counter()
        ensure_tables(self.warehouse)
        built_at = _now()
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
        self.warehouse.execute(render(f"DROP TABLE IF EXISTS {next_table}", self.warehouse.dialect))
        self.warehouse.execute(render(
            f"CREATE TABLE {next_table} AS SELECT n.*, {', '.join(changed_at)}, {', '.join(changed_flags)}, "
            f"{ts_literal(built_at)} AS hub_built_at FROM {source}", self.warehouse.dialect))
        counts = self.warehouse.query_records(render(
            "SELECT COUNT(*) AS profiles, "
            + ", ".join(f"SUM({q('chg__' + a)}) AS {q(a)}" for a in self.hub.attributes)
            + f", SUM(CASE WHEN {' + '.join(q('chg__' + a) for a in self.hub.attributes)} > 0 THEN 1 ELSE 0 END) "
            f"AS any_changed FROM {next_table}", self.warehouse.dialect))[0]
        profiles = int(counts.pop("profiles") or 0)
        any_changed = int(counts.pop("any_changed") or 0)
        changed = {name: int(value or 0) for name, value in counts.items()}
        with self.warehouse.transaction():
            for attribute in self.hub.attributes:
                self.warehouse.execute(render(f"ALTER TABLE {next_table} DROP COLUMN {q('chg__' + attribute)}",
                                              self.warehouse.dialect))
            self.warehouse.execute(render(f"DROP TABLE IF EXISTS {table}", self.warehouse.dialect))
            self.warehouse.execute(render(f"ALTER TABLE {next_table} RENAME TO {q(self.hub.table)}",
                                          self.warehouse.dialect))
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


def quoted_name(name: str, schema: str | None) -> str:
    """``schema.table`` as :meth:`Warehouse.columns` takes it."""
    return name if "." in name or not schema else f"{schema}.{name}"


def latest_build(warehouse: Warehouse) -> dict[str, Any] | None:
    if warehouse.columns(HUB_BUILDS) is None:
        return None
    rows = warehouse.query_records(render(f"SELECT * FROM {HUB_BUILDS} ORDER BY built_at DESC LIMIT 1",
                                          warehouse.dialect))
    return rows[0] if rows else None


# --- freshness --------------------------------------------------------------------------------


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


# --- types ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldType:
    """A destination field as its API describes it.

    :param type: the vendor's type name (Mailchimp: ``text``, ``number``, ``date``...; HubSpot:
        ``string``, ``number``, ``date``, ``datetime``, ``bool``, ``enumeration``).
    :param date_format: Mailchimp date fields: ``MM/DD/YYYY`` or ``DD/MM/YYYY``.
    """

    name: str
    type: str
    date_format: str | None = None


#: Hub attribute type -> destination field types that hold it with its meaning: numbers only in number
#: fields (a number in a text field is compared as text by the tool's own segments), dates in date fields.
COMPATIBLE: dict[str, dict[str, frozenset[str]]] = {
    "mailchimp": {
        "string": frozenset({"text", "dropdown", "radio", "phone", "url", "imageurl", "zip"}),
        "number": frozenset({"number"}),
        "date": frozenset({"date"}),
        "timestamp": frozenset({"date"}),
        "boolean": frozenset({"text", "dropdown", "radio"}),
    },
    "hubspot": {
        "string": frozenset({"string", "enumeration", "phone_number"}),
        "number": frozenset({"number"}),
        "date": frozenset({"date", "datetime"}),
        "timestamp": frozenset({"datetime"}),
        "boolean": frozenset({"bool", "enumeration"}),
    },
}

#: Warehouse column types that hold each declared attribute type (any dialect, upper-cased prefixes).
_WAREHOUSE_TYPES: dict[str, tuple[str, ...]] = {
    "string": ("VARCHAR", "TEXT", "CHARACTER VARYING", "STRING", "CHAR"),
    "number": ("DOUBLE", "DECIMAL", "NUMERIC", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "HUGEINT", "FLOAT",
               "REAL", "INT", "UBIGINT", "UINTEGER", "NUMBER", "FLOAT64", "INT64", "BIGNUMERIC"),
    "boolean": ("BOOLEAN", "BOOL"),
    "date": ("DATE",),
    "timestamp": ("TIMESTAMP", "DATETIME"),
}


def warehouse_type_matches(declared: str, column_type: str) -> bool:
    column_type = column_type.upper()
    if declared == "date" and column_type.startswith("DATETIME"):
        return False
    return column_type.startswith(_WAREHOUSE_TYPES[declared])


def type_checks(project: Project, warehouse: Warehouse,
                field_types: Mapping[str, Mapping[str, FieldType]]) -> list[dict[str, Any]]:
    """One row per pushed field (and per hub attribute): is the type the same in the model, the hub and the spoke?

    :param field_types: per destination, the spoke's fields by name (as its API describes them);
        destinations left out are not compared.
    :returns: rows with ``attribute``, ``destination``, ``field``, ``declared``, ``hub_column_type``,
        ``destination_type``, ``compatible`` and ``problem`` (None when compatible).
    """
    hub = require_hub(project)
    columns = warehouse.columns(quoted_name(hub.table, warehouse.schema)) or {}
    rows = []
    for attribute in hub.attributes.values():
        column_type = columns.get(attribute.name)
        problem = None
        if column_type is None:
            problem = f"the hub table {hub.table} has no column {attribute.name!r}: build the hub first"
        elif not warehouse_type_matches(attribute.type, column_type):
            problem = (f"{attribute.name!r} is declared {attribute.type} but arrives as {column_type} from "
                       f"{attribute.source_table}: fix the source (or its ingest typing) before it reaches a tool")
        rows.append({"attribute": attribute.name, "destination": "(hub)", "field": attribute.name,
                     "declared": attribute.type, "hub_column_type": column_type, "destination_type": None,
                     "compatible": problem is None, "problem": problem})
    for destination, push in hub.push.items():
        if destination not in field_types:
            continue  # only the destinations whose fields were read are compared
        kind = project.destinations[destination].kind
        fields = field_types[destination]
        for field_name, attr_name in sorted(push.fields.items()):
            attribute = hub.attributes[attr_name]
            spoke = _field(fields, kind, field_name)
            problem = None
            if spoke is None:
                problem = (f"{destination} has no field {field_name!r}: create it (type for {attribute.type}: "
                           f"{', '.join(sorted(COMPATIBLE[kind][attribute.type]))}) or change the push")
            elif spoke.type not in COMPATIBLE.get(kind, {}).get(attribute.type, frozenset()):
                problem = (f"{destination} field {field_name!r} is a {spoke.type} field but hub attribute "
                           f"{attr_name!r} is a {attribute.type}; a {attribute.type} fits "
                           f"{', '.join(sorted(COMPATIBLE[kind][attribute.type]))}")
            rows.append({"attribute": attr_name, "destination": destination, "field": field_name,
                         "declared": attribute.type, "hub_column_type": columns.get(attr_name),
                         "destination_type": spoke.type if spoke else None, "compatible": problem is None,
                         "problem": problem})
    return rows


def _field(fields: Mapping[str, FieldType], kind: str, name: str) -> FieldType | None:
    if kind == "mailchimp":  # merge tags compare case-insensitively
        return next((f for tag, f in fields.items() if tag.upper() == name.upper()), None)
    return fields.get(name)


_DATE_FORMATS = {"MM/DD/YYYY": "%m/%d/%Y", "DD/MM/YYYY": "%d/%m/%Y", "YYYY-MM-DD": "%Y-%m-%d"}


def to_wire(kind: str, spoke: FieldType, value: Any) -> Any:
    """``value`` in the format the destination's API documents for the field's type; None clears the field.

    * Mailchimp: numbers as JSON numbers, dates in the field's ``date_format``, text as text.
    * HubSpot: numbers as decimal text, ``date`` as ``YYYY-MM-DD`` (midnight UTC), ``datetime`` as
      epoch milliseconds, ``bool`` as ``true``/``false``.

    :raises WireTypeError: the value cannot be written as that type (names the field).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    field_type = spoke.type
    if field_type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise WireTypeError(f"field {spoke.name!r} is a number field; {value!r} ({type(value).__name__}) "
                                "is not a number")
        if isinstance(value, float) and math.isinf(value):
            raise WireTypeError(f"field {spoke.name!r}: {value!r} is not a finite number")
        number: int | float = int(value) if isinstance(value, int) or (
            isinstance(value, Decimal) and value == value.to_integral_value()) else float(value)
        return number if kind == "mailchimp" else str(number)
    if field_type in ("date", "datetime"):
        if isinstance(value, dt.datetime):
            day = value.date()
        elif isinstance(value, dt.date):
            day = value
        else:
            raise WireTypeError(f"field {spoke.name!r} is a {field_type} field; {value!r} is not a date")
        if kind == "mailchimp":
            return day.strftime(_DATE_FORMATS.get(spoke.date_format or "MM/DD/YYYY", "%m/%d/%Y"))
        if field_type == "date":
            return day.isoformat()
        moment = value if isinstance(value, dt.datetime) else dt.datetime(day.year, day.month, day.day)
        return str(int(moment.replace(tzinfo=dt.timezone.utc).timestamp() * 1000))
    if field_type == "bool":
        if not isinstance(value, bool):
            raise WireTypeError(f"field {spoke.name!r} is a bool field; {value!r} is not a boolean")
        return "true" if value else "false"
    # text-like fields: the value's text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


# --- the push -----------------------------------------------------------------------------------


def push_sync(push: AttributePush) -> Sync:
    """The push as the sync engine runs it: upsert mode, keyed by ``hub__<destination>``."""
    return _PushSync(segment="__hub__", destination=push.destination, mode="upsert")


@dataclass(frozen=True)
class _PushSync(Sync):
    @property
    def id(self) -> str:
        return push_sync_id(self.destination)


class AttributePushEngine(SyncEngine):
    """Push changed hub attributes to one destination: the sync engine over the hub, upsert only.

    The desired state is every hub profile with an identity and consent for the destination's
    channel; a profile is sent when its row hash (identity and pushed values) differs from the
    hash the destination last acknowledged. Values are converted to the destination's field
    types (:func:`to_wire`) as batches are read; nothing is ever removed from a spoke.

    :param field_types: the destination's fields by name, as its API describes them.
    """

    def __init__(self, project: Project, warehouse: Warehouse, destination: str,
                 field_types: Mapping[str, FieldType]) -> None:
        hub = require_hub(project)
        if destination not in hub.push:
            raise HubError(f"the hub pushes nothing to {destination!r}; pushes: {', '.join(hub.push) or 'none'}")
        self.hub = hub
        self.push = hub.push[destination]
        # the push's fields stand in for the destination's field_mapping (names are hub attributes)
        pushed = replace(project.destinations[destination], field_mapping=dict(self.push.fields))
        super().__init__(replace(project, destinations={**project.destinations, destination: pushed}), warehouse)
        self.kind = pushed.kind
        self.field_types = {name: _field(field_types, self.kind, name) for name in self.push.fields}
        missing = [name for name, spoke in self.field_types.items() if spoke is None]
        if missing:
            raise HubError(f"{destination} has no field {', '.join(missing)}: run the hub_types gate")

    @property
    def sync(self) -> Sync:
        return push_sync(self.push)

    def run_push(self, client: DestinationClient, as_of: str | dt.datetime, *, options: SyncOptions | None = None,
                 run_id: str | None = None) -> SyncRunRecord:
        return self.run(self.sync, client, as_of, options=options, run_id=run_id)

    def _require_snapshot(self, sync: Sync, at: dt.datetime) -> None:
        if self.warehouse.columns(quoted_name(self.hub.table, self.warehouse.schema)) is None:
            raise HubError(f"the hub table {self.hub.table} does not exist: build the hub before pushing")

    def _desired_sql(self, sync: Sync, destination: Destination, as_of: dt.datetime) -> str:
        model = self.project.model
        identity = q(destination.identity)
        if destination.identity not in self.hub.attributes:
            raise HubError(f"the hub has no attribute {destination.identity!r}, the identity of {destination.name}")
        fields = sorted(self.push.fields.items())
        projections = [f"h.{q(attr)} AS {q('f__' + name)}" for name, attr in fields]
        hash_input = " || '|' || ".join(
            [f"COALESCE(CAST(h.{identity} AS VARCHAR), '')"]
            + [f"COALESCE(CAST(h.{q(attr)} AS VARCHAR), '\u2205')" for _, attr in fields])
        consent_ok = "TRUE"
        channel = destination.channel
        if model.consent is not None and channel in model.consent.channels:
            require = model.consent.channels[channel].require_opt_in
            consent_attr = next((a.name for a in self.hub.attributes.values() if a.consent_channel == channel), None)
            if consent_attr is not None:
                consent_ok = f"COALESCE(h.{q(consent_attr)}, {'FALSE' if require else 'TRUE'})"
            else:
                latest = latest_consent_sql(model.consent, channel, self.warehouse.schema)
                consent_ok = (f"COALESCE((SELECT x.opted_in FROM ({latest}) AS x WHERE x.k = h.{KEY}), "
                              f"{'FALSE' if require else 'TRUE'})")
        return (f"SELECT h.{KEY} AS customer_key, CAST(h.{identity} AS VARCHAR) AS identity, "
                + "".join(p + ", " for p in projections)
                + f"MD5({hash_input}) AS row_hash, {consent_ok} AS consent_ok "
                f"FROM {quoted_table(self.hub.table, self.warehouse.schema)} AS h")

    def _plan_sql(self, sync: Sync, destination: Destination, as_of: dt.datetime, max_attempts: int) -> dict[str, str]:
        queries = super()._plan_sql(sync, destination, as_of, max_attempts)
        # attribute pushes update contacts; they never take anyone out of a spoke
        queries["remove"] = queries["remove"] + " AND FALSE"
        return queries

    def _plan(self, sync: Sync, client: DestinationClient, queries: dict[str, str], options: SyncOptions,
              run_id: str, *, baseline: bool):  # type: ignore[override]
        # no baseline: a push owns no membership, so the spoke's existing members are not read
        plan = super()._plan(sync, client, queries, options, run_id, baseline=False)
        plan.remove = 0
        return plan

    def _field_value(self, destination: Destination, key: str, name: str, value: Any) -> Any:
        """The warehouse's value in the wire format of the destination field's type, checked."""
        try:
            return to_wire(self.kind, self.field_types[name], value)  # type: ignore[arg-type]
        except WireTypeError as exc:
            raise WireTypeError(f"push to {destination.name}, customer {key}: {exc}") from None

    def changed_count(self) -> dict[str, int]:
        """How many profiles the next push would send (new and changed), without sending anything."""
        destination = self.project.destinations[self.push.destination]
        queries = SyncEngine._plan_sql(self, self.sync, destination, _now(), SyncOptions().max_attempts)
        return {op: self._count(queries[op]) for op in ("add", "change")}


# --- spoke segments: central evaluation and the spokes' own languages ------------------------------


def _condition_sql(node: AttributeCondition, column: str, value_type: str) -> str:
    op, value = node.predicate.op, node.predicate.value
    if op == "is_null":
        return f"{column} IS NULL" + (" OR CAST({0} AS VARCHAR) = ''".format(column) if value_type == "string" else "")
    if op == "is_not_null":
        return f"{column} IS NOT NULL" + (f" AND CAST({column} AS VARCHAR) <> ''" if value_type == "string" else "")
    if value_type == "string":
        text = str(value).lower()
        lowered = f"LOWER({column})"
        if op == "contains":
            return f"STRPOS({lowered}, {text_literal(text)}) > 0"
        if op == "starts_with":
            return f"STARTS_WITH({lowered}, {text_literal(text)})"
        return f"{lowered} {'=' if op == 'eq' else '<>'} {text_literal(text)}"
    if value_type == "boolean":
        return f"{column} {'=' if op == 'eq' else '<>'} {'TRUE' if value else 'FALSE'}"
    symbol = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
    if value_type == "date":
        return f"CAST({column} AS DATE) {symbol} DATE '{value.isoformat()}'"
    if value_type == "timestamp":
        return f"{column} {symbol} {ts_literal(value)}"
    return f"{column} {symbol} {value!r}"


def spoke_rule_sql(spoke: SpokeSegment, hub: Hub, alias: str = "h") -> str:
    """The spoke's rule as a SQL predicate over the hub's profile table."""
    match, conditions = spoke.conditions()
    parts = [f"({_condition_sql(c, f'{alias}.{q(c.attribute)}', hub.attributes[c.attribute].type)})"
             for c in conditions]
    return "(" + (" AND " if match == "all" else " OR ").join(parts) + ")"


def spoke_count_sql(project: Project, spoke: SpokeSegment, schema: str | None) -> str:
    """How many profiles the spoke should count: those it acknowledged, matching the rule on the hub's values."""
    hub = require_hub(project)
    sync_id = hub.push[spoke.destination].sync_id
    return (f"SELECT COUNT(*) FROM {quoted_table(hub.table, schema)} AS h JOIN {STATE} AS s "
            f"ON s.customer_key = h.{KEY} AND s.sync_id = {text_literal(sync_id)} AND s.in_destination "
            f"WHERE {spoke_rule_sql(spoke, hub)}")


def mailchimp_conditions(spoke: SpokeSegment, hub: Hub) -> dict[str, Any]:
    """The rule as Mailchimp segment ``options``: ``match`` and merge-field ``conditions``."""
    fields = {attr: name for name, attr in hub.push[spoke.destination].fields.items()}
    match, conditions = spoke.conditions()
    ops = {"eq": "is", "ne": "not", "gt": "greater", "lt": "less", "contains": "contains",
           "starts_with": "starts", "is_null": "blank", "is_not_null": "blank_not"}
    out = []
    for node in conditions:
        value_type = hub.attributes[node.attribute].type
        value = node.predicate.value
        condition: dict[str, Any] = {
            "condition_type": "DateMerge" if value_type == "date" else "TextMerge",
            "field": fields[node.attribute].upper(), "op": ops[node.predicate.op]}
        if node.predicate.op not in ("is_null", "is_not_null"):
            condition["value"] = (value.isoformat() if isinstance(value, dt.date) else
                                  ("true" if value else "false") if isinstance(value, bool) else str(value))
        out.append(condition)
    return {"match": match, "conditions": out}


def hubspot_filter_branch(spoke: SpokeSegment, hub: Hub) -> dict[str, Any]:
    """The rule as a HubSpot list ``filterBranch`` (an OR of AND branches, as HubSpot requires)."""
    fields = {attr: name for name, attr in hub.push[spoke.destination].fields.items()}
    match, conditions = spoke.conditions()
    filters = [_hubspot_filter(node, fields[node.attribute], hub.attributes[node.attribute].type)
               for node in conditions]
    groups = [filters] if match == "all" else [[f] for f in filters]
    return {"filterBranchType": "OR", "filters": [], "filterBranches": [
        {"filterBranchType": "AND", "filters": group, "filterBranches": []} for group in groups]}


def _hubspot_filter(node: AttributeCondition, prop: str, value_type: str) -> dict[str, Any]:
    op, value = node.predicate.op, node.predicate.value
    if op in ("is_null", "is_not_null"):
        operation: dict[str, Any] = {"operationType": "ALL_PROPERTY",
                                     "operator": "IS_UNKNOWN" if op == "is_null" else "IS_KNOWN"}
    elif value_type in ("date", "timestamp"):
        moment = value if isinstance(value, dt.datetime) else dt.datetime(value.year, value.month, value.day)
        point: dict[str, Any] = {"timeType": "DATE", "timezoneSource": "CUSTOM", "zoneId": "UTC",
                                 "year": moment.year, "month": moment.month, "day": moment.day}
        if value_type == "timestamp":
            point.update(timeType="INDEXED", hour=moment.hour, minute=moment.minute, second=moment.second)
        operation = {"operationType": "TIME_POINT", "operator": "IS_AFTER" if op == "gt" else "IS_BEFORE",
                     "timePoint": point}
    else:
        operators = {"eq": "IS_EQUAL_TO", "ne": "IS_NOT_EQUAL_TO", "gt": "IS_GREATER_THAN",
                     "gte": "IS_GREATER_THAN_OR_EQUAL_TO", "lt": "IS_LESS_THAN",
                     "lte": "IS_LESS_THAN_OR_EQUAL_TO", "contains": "CONTAINS", "starts_with": "STARTS_WITH"}
        operation_type = {"number": "NUMBER", "boolean": "BOOL"}.get(value_type, "STRING")
        operation = {"operationType": operation_type, "operator": operators[op],
                     "value": value if value_type in ("number", "boolean") else str(value)}
    operation["includeObjectsWithNoValueSet"] = False
    return {"filterType": "PROPERTY", "property": prop, "operation": operation}


# --- drift ------------------------------------------------------------------------------------


@dataclass
class DriftFinding:
    """One comparison of what the hub (or the central engine) expects with what a destination reports.

    :param kind: ``spoke_segment`` (hub vs the spoke's own count), ``synced_segment`` (a central segment's
        snapshot vs the destination's member count), ``stale_attribute`` or ``type_mismatch``.
    :param status: ``ok``, ``drift`` (past tolerance), ``stale``, ``mismatch`` or ``unknown``.
    """

    kind: str
    name: str
    destination: str
    expected: int | None = None
    reported: int | None = None
    drift: float | None = None
    tolerance: float | None = None
    status: str = "ok"
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def relative_drift(expected: int, reported: int) -> float:
    return abs(reported - expected) / max(expected, 1)


def compare_counts(kind: str, name: str, destination: str, expected: int, reported: int | None,
                   tolerance: float, detail: str = "") -> DriftFinding:
    if reported is None:
        return DriftFinding(kind, name, destination, expected, None, None, tolerance, "unknown",
                            detail or "the destination reported no count")
    drift = relative_drift(expected, reported)
    status = "drift" if drift > tolerance else "ok"
    if status == "drift" and not detail:
        detail = (f"{destination} reports {reported} where the hub expects {expected} "
                  f"({drift:.1%} > tolerance {tolerance:.1%}): values were changed in the tool behind the hub's "
                  "back, contacts were added there, or a push is pending")
    return DriftFinding(kind, name, destination, expected, reported, round(drift, 6), tolerance, status, detail)


def record_drift(warehouse: Warehouse, run_id: str, findings: Sequence[DriftFinding]) -> None:
    """Write one monitor run's findings to ``segprovider_drift_reports``."""
    if not findings:
        return
    ensure_tables(warehouse)
    now = _now()
    rows = pa.table({
        "run_id": [run_id] * len(findings), "checked_at": pa.array([now] * len(findings), pa.timestamp("us")),
        "kind": [f.kind for f in findings], "name": [f.name for f in findings],
        "destination": [f.destination for f in findings],
        "expected": pa.array([f.expected for f in findings], pa.int64()),
        "reported": pa.array([f.reported for f in findings], pa.int64()),
        "drift": pa.array([f.drift for f in findings], pa.float64()),
        "tolerance": pa.array([f.tolerance for f in findings], pa.float64()),
        "status": [f.status for f in findings], "detail": [f.detail[:2000] for f in findings],
    })
    with warehouse.transaction():
        warehouse.upsert(DRIFT_REPORTS, ["run_id", "kind", "name", "destination"], rows)


def hub_drift_findings(project: Project, warehouse: Warehouse, as_of: dt.datetime,
                       spoke_counts: Mapping[str, int | None],
                       field_types: Mapping[str, Mapping[str, FieldType]] | None = None) -> list[DriftFinding]:
    """Spoke segments (hub count vs the spoke's), stale attributes and type mismatches.

    :param spoke_counts: per spoke segment name, the count its destination reports (None: unreadable).
    :param field_types: per destination, its fields; None skips the type comparison.
    """
    hub = require_hub(project)
    findings: list[DriftFinding] = []
    has_hub = warehouse.columns(quoted_name(hub.table, warehouse.schema)) is not None
    if has_hub and project.spoke_segments:
        SyncEngine(project, warehouse).ensure_tables()
    for name, spoke in project.spoke_segments.items():
        if not has_hub:
            findings.append(DriftFinding("spoke_segment", name, spoke.destination, status="unknown",
                                         detail="the hub has not been built"))
            continue
        expected = int(warehouse.query(render(spoke_count_sql(project, spoke, warehouse.schema),
                                              warehouse.dialect))[0][0])
        findings.append(compare_counts("spoke_segment", name, spoke.destination, expected, spoke_counts.get(name),
                                       spoke.drift_tolerance))
    for row in freshness_rows(project, warehouse, as_of):
        if row["stale_hub"]:
            findings.append(DriftFinding(
                "stale_attribute", row["attribute"], "(hub)", status="stale",
                detail=f"source {row['source']} changed at {row['source_changed_at']} but the hub was built at "
                       f"{row['hub_built_at']}: the hub is older than its source; rebuild it (segments_hybrid)"))
    if field_types is not None:
        for row in type_checks(project, warehouse, field_types):
            if not row["compatible"]:
                findings.append(DriftFinding("type_mismatch", f"{row['attribute']}->{row['field']}",
                                             row["destination"], status="mismatch", detail=row["problem"]))
    return findings

"""The segments project as plain, immutable data classes.

The segments' rule trees are in :mod:`airflow_segprovider.core.project.rules`.
A :class:`Project` is what :func:`airflow_segprovider.core.project.loader.load_project`
returns once a folder of YAML files has passed validation: every reference in it
resolves, every value has the type its operator needs. The compiler, the
evaluation engine, the sync engine and the DAG factory read only these classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from airflow_segprovider.core.errors import Location
from airflow_segprovider.core.project.rules import referenced_segments

if TYPE_CHECKING:
    from airflow_segprovider.core.project.rules import PriorityGroup, Segment

AttributeType = Literal["string", "number", "boolean", "date", "timestamp"]


@dataclass(frozen=True)
class Attribute:
    name: str
    type: AttributeType
    column: str
    description: str = ""


@dataclass(frozen=True)
class AttributeHistory:
    """Where the customer attributes' past values are kept (``model.customer.history``).

    :param table: the history table: one row per customer and version, with the customer table's key and
        attribute columns under their own names.
    :param valid_from: column of the time a version became valid (inclusive).
    :param valid_to: column of the time it stopped being valid (exclusive; NULL while it is current).
    :param managed: True when ingest writes the table (``history: true``); False for a declared table
        another tool keeps (a dbt snapshot), which ingest never writes.
    """

    table: str
    valid_from: str
    valid_to: str
    managed: bool


@dataclass(frozen=True)
class CustomerEntity:
    table: str
    key: str
    attributes: dict[str, Attribute]
    history: AttributeHistory | None = None


@dataclass(frozen=True)
class EventSource:
    """A stream of occurrences a rule can aggregate: one event type of an event table, or an order table.

    :param name: the name rules use (``purchase``, ``orders``).
    :param table: warehouse table.
    :param type_column: column holding the event type, None for order tables.
    :param type_value: the event type this source selects, None for order tables.
    """

    name: str
    table: str
    customer_key: str
    timestamp: str
    properties: dict[str, AttributeType]
    type_column: str | None = None
    type_value: str | None = None
    table_name: str = ""  # the model entry (event or order table) this source belongs to


@dataclass(frozen=True)
class ChannelPolicy:
    name: str
    require_opt_in: bool


@dataclass(frozen=True)
class ConsentModel:
    table: str
    customer_key: str
    channel_column: str
    opted_in_column: str
    updated_at_column: str
    channels: dict[str, ChannelPolicy]


@dataclass(frozen=True)
class DataModel:
    customer: CustomerEntity
    events: dict[str, EventSource]
    consent: ConsentModel | None


@dataclass(frozen=True)
class Destination:
    name: str
    kind: str
    connection_id: str
    channel: str
    identity: str
    config: dict[str, Any] = field(default_factory=dict)
    field_mapping: dict[str, str] = field(default_factory=dict)
    description: str = ""
    loc: Location = field(compare=False, default=Location(""))


@dataclass(frozen=True)
class Sync:
    segment: str
    destination: str
    mode: Literal["mirror", "add_only", "upsert"]
    schedule: str = "@daily"
    gates: tuple[str, ...] = ()
    arm: str | None = None
    max_remove_fraction: float = 0.2
    max_size_change: float | None = None
    min_size: int | None = None
    max_size: int | None = None
    target: dict[str, Any] = field(default_factory=dict)
    loc: Location = field(compare=False, default=Location(""))

    @property
    def id(self) -> str:
        return f"{self.segment}{'.' + self.arm if self.arm else ''}__{self.destination}"


@dataclass(frozen=True)
class ReconcilePolicy:
    """How the distributed model reconciles one segment's lists across the tools that keep it.

    :param segment: the segment whose lists are reconciled.
    :param policy: ``authoritative``, ``most_recent``, ``union`` or ``intersection``.
    :param systems: the destinations whose lists are compared (readable ones); others only receive.
    :param authority: the system that is the source of truth (``authoritative``).
    :param tie_break: ``add``, ``remove`` or a system name: who wins equal times (``most_recent``).
    :param max_change_fraction: a reconcile changing more than this fraction of a list stops and alerts.
    """

    segment: str
    policy: Literal["authoritative", "most_recent", "union", "intersection"]
    systems: tuple[str, ...]
    authority: str | None = None
    tie_break: str = "remove"
    max_change_fraction: float = 0.2
    description: str = ""
    loc: Location = field(compare=False, default=Location(""))


@dataclass(frozen=True)
class Pagination:
    """How a REST source walks through pages.

    :param style: ``none`` (one request), ``cursor`` (the next cursor is read from each body),
        ``offset`` (``offset_param`` advances by the page size) or ``link_header``
        (``Link: <...>; rel="next"``, RFC 8288).
    :param page_size: records asked per page (sent as ``page_size_param``); None sends none.
    :param cursor_path: dotted path of the next cursor in the JSON body.
    """

    style: Literal["none", "cursor", "offset", "link_header"] = "none"
    page_size: int | None = None
    page_size_param: str = "limit"
    cursor_param: str = "cursor"
    cursor_path: str = "next_cursor"
    offset_param: str = "offset"


@dataclass(frozen=True)
class Incremental:
    """Load only what changed since the last successful load.

    :param column: field of the source whose highest loaded value becomes the watermark.
    :param param: REST sources: query parameter that carries the watermark to the API.
    """

    column: str
    param: str | None = None


@dataclass(frozen=True)
class Source:
    """Where the rows of one table of the data model come from.

    :param table: the model table it loads (the customer table, an event or order table, the consent table).
    :param kind: ``file``, ``warehouse_table`` or ``rest_api``; the fields below apply by kind.
    :param mode: ``upsert`` by ``key``, ``append`` (idempotent per file or page) or ``replace``.
    :param key: upsert key columns (the model's key for the customer table).
    :param path: file sources: a glob, relative to the project folder unless absolute.
    :param url: REST sources: absolute, or a path under the base URL of ``connection_id``.
    :param records: REST sources: dotted path to the records in the JSON body; empty when the body is the list.
    :param max_shrink_fraction: ``replace`` sources: the largest share of the table's rows a load may drop.
    :param allow_empty: ``replace`` sources: whether a load of no rows may empty the table.
    :param future_tolerance: how far past the load time a row's date (or incremental value) may be; later
        rows are quarantined.
    """

    name: str
    table: str
    kind: Literal["file", "warehouse_table", "rest_api"]
    mode: Literal["upsert", "append", "replace"]
    key: tuple[str, ...] = ()
    format: Literal["csv", "parquet", "jsonl"] | None = None
    path: str | None = None
    delimiter: str | None = None
    query: str | None = None
    from_table: str | None = None
    url: str | None = None
    connection_id: str | None = None
    records: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    pagination: Pagination = Pagination()
    incremental: Incremental | None = None
    max_shrink_fraction: float = 0.5
    allow_empty: bool = False
    future_tolerance: timedelta = timedelta(days=1)
    description: str = ""
    loc: Location = field(compare=False, default=Location(""))


@dataclass(frozen=True)
class WarehouseSettings:
    kind: str = "duckdb"
    path: str = "segprovider.duckdb"
    schema: str = "main"
    connection_id: str | None = None


@dataclass(frozen=True)
class Project:
    name: str
    root: str
    model: DataModel
    segments: dict[str, Segment]
    priority_groups: dict[str, PriorityGroup]
    destinations: dict[str, Destination]
    syncs: tuple[Sync, ...]
    warehouse: WarehouseSettings = WarehouseSettings()
    description: str = ""
    sources: dict[str, Source] = field(default_factory=dict)
    reconcile: dict[str, ReconcilePolicy] = field(default_factory=dict)
    hub: Any = None  # core.project.hybrid.Hub: the hybrid model's attribute hub, when declared
    spoke_segments: dict[str, Any] = field(default_factory=dict)  # core.project.hybrid.SpokeSegment by name
    #: what a failed segment gate (size, change) holds: ``hold_segment`` (that segment's membership changes;
    #: every other sync goes on) or ``block_all`` (every sync of the run)
    on_gate_failure: str = "hold_segment"
    #: what drift found by the count gate before a sync does: ``fail`` (the gate fails, the destination's sync
    #: waits for a person) or ``repair`` (the sync reads the destination and restores members removed by hand,
    #: where the destination can list its members; elsewhere the gate fails as with ``fail``)
    on_count_drift: str = "fail"

    def evaluation_order(self) -> list[str]:
        """Segment names so that each comes after every segment it depends on."""
        order: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            for dependency in sorted(self.dependencies(name)):
                visit(dependency)
            order.append(name)

        for name in self.segments:
            visit(name)
        return order

    def dependencies(self, name: str) -> set[str]:
        """Segments whose final membership ``name`` needs: references and higher priorities."""
        segment = self.segments[name]
        return referenced_segments(segment.rule) | set(segment.higher_priority)


def reconciled_syncs(project: Project) -> list[Sync]:
    """Syncs of segments with a ``reconcile:`` policy: the distributed model (``segments_distributed``) owns them.

    Their lists are edited by hand in the tools; the reconcile pulls them, resolves disagreements and
    pushes the fixes. A centralized push of the warehouse membership would undo those edits on every run
    (and the next reconcile would undo the push), so the centralized model never runs them.
    """
    return [s for s in project.syncs if s.segment in project.reconcile]


def centralized_syncs(project: Project) -> list[Sync]:
    """Syncs the centralized model runs: every sync whose segment has no ``reconcile:`` policy."""
    return [s for s in project.syncs if s.segment not in project.reconcile]

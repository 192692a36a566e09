"""The ``model:`` section: the customer table, event and order tables, and consent, as a :class:`DataModel`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_segprovider.core.project.spec import (
    Attribute,
    ChannelPolicy,
    ConsentModel,
    CustomerEntity,
    DataModel,
    EventSource,
)

if TYPE_CHECKING:
    from airflow_segprovider.core.errors import Location
    from airflow_segprovider.core.project.items import IssueList, ProjectItem


def parse_model(item: ProjectItem, issues: IssueList) -> DataModel:
    """The data model of the ``model:`` section; an event name declared twice is reported (SEG022)."""
    raw = item.data
    customer_raw = raw["customer"]
    attributes = {
        name: Attribute(name, spec["type"], spec.get("column", name), spec.get("description", ""))
        for name, spec in customer_raw["attributes"].items()
    }
    customer = CustomerEntity(customer_raw["table"], customer_raw["key"], attributes)
    events: dict[str, EventSource] = {}
    origin: dict[str, Location] = {}

    def register(source: EventSource, location: Location) -> None:
        if source.name in events:
            issues.add("SEG022", f"event name {source.name!r} is declared twice", location,
                       f"it is already declared at {origin[source.name]}; event types and order "
                       "table names share one namespace, rename one")
            return
        events[source.name] = source
        origin[source.name] = location

    for table_name, table in raw.get("event_tables", {}).items():
        for index, event_type in enumerate(table["event_types"]):
            register(EventSource(event_type, table["table"], table["customer_key"], table["timestamp"],
                                 dict(table.get("properties", {})), table["type_column"], event_type, table_name),
                     item.loc("event_tables", table_name, "event_types", index))
    for table_name, table in raw.get("order_tables", {}).items():
        register(EventSource(table_name, table["table"], table["customer_key"], table["timestamp"],
                             dict(table.get("properties", {})), None, None, table_name),
                 item.loc("order_tables", table_name))
    consent = None
    if "consent" in raw:
        c = raw["consent"]
        channels = {name: ChannelPolicy(name, bool(policy.get("require_opt_in", True)))
                    for name, policy in c["channels"].items()}
        consent = ConsentModel(c["table"], c["customer_key"], c["channel_column"], c["opted_in_column"],
                               c["updated_at_column"], channels)
    return DataModel(customer, events, consent)

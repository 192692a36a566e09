"""The ``model:`` section: the customer table, event and order tables, and consent, as a :class:`DataModel`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_segprovider.core.project.spec import (
    Attribute,
    AttributeHistory,
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
    customer = CustomerEntity(customer_raw["table"], customer_raw["key"], attributes,
                              _history(item, customer_raw, issues))
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


#: A declared history table's validity columns when not named: those of a dbt snapshot.
DBT_VALID_FROM = "dbt_valid_from"
DBT_VALID_TO = "dbt_valid_to"


def _history(item: ProjectItem, customer_raw: dict, issues: IssueList) -> AttributeHistory | None:
    """``model.customer.history``: ``true`` (ingest keeps the history), a declared table, or none (SEG087)."""
    from airflow_segprovider.core.state.attributes import HISTORY_TABLE, VALID_FROM, VALID_TO

    raw = customer_raw.get("history", False)
    if raw is False:
        return None
    if raw is True:
        return AttributeHistory(HISTORY_TABLE, VALID_FROM, VALID_TO, managed=True)
    history = AttributeHistory(raw["table"], raw.get("valid_from", DBT_VALID_FROM), raw.get("valid_to", DBT_VALID_TO),
                               managed=False)
    location = item.loc("customer", "history")
    if history.table in (customer_raw["table"], HISTORY_TABLE):
        issues.add("SEG087", f"model.customer.history.table {history.table!r} is "
                   + ("the customer table itself" if history.table == customer_raw["table"]
                      else "the table ingest keeps for 'history: true'"),
                   item.loc("customer", "history", "table"),
                   "name the table that holds one row per customer and version (a dbt snapshot), "
                   "or write 'history: true' to let ingest keep it")
    elif history.valid_from == history.valid_to:
        issues.add("SEG087", f"model.customer.history: valid_from and valid_to are both {history.valid_from!r}",
                   location, "name the column where a version starts and the one where it ends")
    elif {history.valid_from, history.valid_to} & {customer_raw["key"], *(a.get("column", n) for n, a in
                                                                          customer_raw["attributes"].items())}:
        issues.add("SEG087", "model.customer.history: a validity column is also the key or an attribute column",
                   location, "the validity columns must be their own columns of the history table")
    return history

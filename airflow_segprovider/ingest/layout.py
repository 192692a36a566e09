"""What a source loads: the columns of its model table, their types, and which must be present.

The data model is the contract: a column the model declares (a customer attribute,
an event property, the event timestamp) is cast to the model's type; a column the
model does not type (the customer key, an order id used as an upsert key) keeps the
type the warehouse already gives it (see :func:`untyped_column_type`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import DataModel, Source

#: The warehouse type each model type is loaded as (DuckDB).
SQL_TYPES = {"string": "VARCHAR", "number": "DOUBLE", "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP"}


@dataclass(frozen=True)
class TableLayout:
    """The columns one source writes into its table.

    :param table: the warehouse table, as the model names it.
    :param role: ``customer``, ``event``, ``order`` or ``consent``.
    :param columns: column -> model type; ``None`` for a column the model does not type (keys).
    :param required: columns a row cannot be loaded without (keys, timestamps).
    :param customer_key: the column holding the customer key.
    :param identity: columns that identify a row in quarantine records (the upsert key, else the customer key).
    """

    table: str
    role: str
    columns: dict[str, str | None]
    required: tuple[str, ...]
    customer_key: str
    identity: tuple[str, ...]


def table_layout(model: DataModel, source: Source) -> TableLayout:
    """The layout of ``source.table`` as the data model declares it, plus the source's key columns."""
    columns: dict[str, str | None]
    customer = model.customer
    consent = model.consent
    if source.table == customer.table:
        role, customer_key = "customer", customer.key
        columns = {customer.key: None}
        columns.update({attribute.column: attribute.type for attribute in customer.attributes.values()})
        required = [customer.key]
    elif consent is not None and source.table == consent.table:
        role, customer_key = "consent", consent.customer_key
        columns = {consent.customer_key: None, consent.channel_column: "string", consent.opted_in_column: "boolean",
                   consent.updated_at_column: "timestamp"}
        required = [consent.customer_key, consent.channel_column, consent.updated_at_column]
    else:
        entries = [event for event in model.events.values() if event.table == source.table]
        if not entries:
            raise ValueError(f"table {source.table!r} is not a table of the data model")
        first = entries[0]
        role, customer_key = ("event" if first.type_column else "order"), first.customer_key
        columns = {first.customer_key: None, first.timestamp: "timestamp"}
        required = [first.customer_key, first.timestamp]
        if first.type_column:
            columns[first.type_column] = "string"
            required.append(first.type_column)
        for entry in entries:
            for name, value_type in entry.properties.items():
                columns.setdefault(name, value_type)
    for key in source.key:
        columns.setdefault(key, None)
        if key not in required:
            required.append(key)
    identity = source.key or (customer_key,)
    return TableLayout(source.table, role, columns, tuple(required), customer_key, tuple(identity))

"""Types: what the hub holds, what the model declares and what each spoke's field expects.

:func:`type_checks` compares what the hub holds (warehouse column types) with what the model
declares and with what each spoke's field expects (Mailchimp merge-field types, HubSpot property
types); :func:`to_wire` converts one value to the spoke's documented format, or refuses it.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.destination import FieldType
from airflow_segprovider.core.hybrid.errors import WireTypeError
from airflow_segprovider.core.hybrid.hub import quoted_name, require_hub

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.warehouses.base import Warehouse

__all__ = ["COMPATIBLE", "FieldType", "find_field", "to_wire", "type_checks", "warehouse_type_matches"]


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
            spoke = find_field(fields, kind, field_name)
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


def find_field(fields: Mapping[str, FieldType], kind: str, name: str) -> FieldType | None:
    """The spoke's field called ``name``, or None; Mailchimp merge tags match whatever their case."""
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


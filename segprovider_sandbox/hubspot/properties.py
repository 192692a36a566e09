"""The typed values HubSpot contact properties take, checked on every batch upsert.

``number`` takes numeric text or a number; ``date`` takes ``YYYY-MM-DD`` or epoch milliseconds at
midnight UTC; ``datetime`` epoch milliseconds or ISO 8601; ``bool`` ``true``/``false``. A bad value
refuses the whole batch call with a 400 ``VALIDATION_ERROR`` naming the property and the input.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from segprovider_sandbox.hubspot.responses import error_body
from segprovider_sandbox.wire import NUMBER_TEXT, VendorError

if TYPE_CHECKING:
    from segprovider_sandbox.store import SandboxState


def hubspot_property_problem(types: dict[str, str], properties: dict[str, Any]) -> tuple[str, str, str] | None:
    """``(property, error code, message)`` for the first value its property's type refuses, else None."""
    for name, value in properties.items():
        kind = types.get(name)
        if kind is None or value is None or value == "":
            continue
        text = str(value).strip()
        if kind == "number":
            if isinstance(value, bool) or not NUMBER_TEXT.match(text):
                return name, "INVALID_FLOAT", f"{text!r} was not a valid number."
        elif kind == "date":
            if parse_hubspot_date(text) is None:
                return name, "INVALID_DATE", (f"{text!r} is not a valid date: use YYYY-MM-DD or epoch milliseconds "
                                              "at midnight UTC.")
        elif kind == "datetime":
            if parse_hubspot_datetime(text) is None:
                return name, "INVALID_DATETIME", f"{text!r} is not a valid datetime (epoch milliseconds or ISO 8601)."
        elif kind == "bool" and text.lower() not in ("true", "false"):
            return name, "INVALID_BOOLEAN", f"{text!r} is not a valid boolean (true or false)."
    return None


def parse_hubspot_date(text: str) -> date | None:
    """A ``date`` property value (``YYYY-MM-DD`` or epoch milliseconds at midnight UTC), else None."""
    if text.isdigit():
        moment = datetime.fromtimestamp(int(text) / 1000, UTC)
        midnight = (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0)
        return moment.date() if midnight else None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_hubspot_datetime(text: str) -> datetime | None:
    """A ``datetime`` property value (epoch milliseconds or ISO 8601) as naive UTC, else None."""
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC).replace(tzinfo=None)
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None)  # Python 3.11 reads a trailing Z
    except ValueError:
        return None


def property_types(state: SandboxState) -> dict[str, str]:
    """The type of every contact property, by name."""
    return {prop["name"]: prop["type"] for prop in state.hubspot_contact_properties()}


def hubspot_check_inputs(state: SandboxState, inputs: Any) -> None:
    """Refuse a batch upsert whose inputs carry a value of the wrong type for its property (400, named)."""
    if not isinstance(inputs, list):
        return
    types = property_types(state)
    for item in inputs:
        if not isinstance(item, dict) or not isinstance(item.get("properties"), dict):
            continue
        problem = hubspot_property_problem(types, item["properties"])
        if problem:
            name, code, message = problem
            detail = json.dumps([{"isValid": False, "message": message, "error": code, "name": name}])
            raise VendorError(error_body(400, f"Property values were not valid: {detail}", "VALIDATION_ERROR",
                                         context={"id": [str(item.get("id", ""))], "propertyName": [name]}))

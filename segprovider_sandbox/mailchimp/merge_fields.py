"""An audience's merge fields and the typed values they take.

A ``number`` field takes a number (or numeric text); a ``date`` field takes a date in the field's
``options.date_format`` (``MM/DD/YYYY`` by default) or ``YYYY-MM-DD``. A refused member comes back
in the batch's ``errors`` with ``field`` set to the merge tag ("Your merge fields were invalid.").
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from segprovider_sandbox.mailchimp.responses import ok, paging
from segprovider_sandbox.mailchimp.rows import require_list
from segprovider_sandbox.wire import NUMBER_TEXT

if TYPE_CHECKING:
    import sqlite3

    from segprovider_sandbox.store import SandboxState
    from segprovider_sandbox.wire import SandboxRequest, SandboxResponse


DEFAULT_DATE_FORMAT = "MM/DD/YYYY"
_DATE_FORMATS = {"MM/DD/YYYY": "%m/%d/%Y", "DD/MM/YYYY": "%d/%m/%Y"}


def parse_mailchimp_date(value: Any, date_format: str | None) -> date | None:
    """A date merge value in the field's format or ISO ``YYYY-MM-DD``; None when it is neither."""
    if not isinstance(value, str) or not value.strip():
        return None
    for pattern in (_DATE_FORMATS.get(date_format or DEFAULT_DATE_FORMAT, "%m/%d/%Y"), "%Y-%m-%d"):
        try:
            return datetime.strptime(value.strip(), pattern).date()
        except ValueError:
            continue
    return None


def mailchimp_merge_problem(fields: dict[str, dict[str, Any]], merge_fields: dict[str, Any]) -> tuple[str, str] | None:
    """``(tag, message)`` for the first merge value its field's type refuses, else None.

    :param fields: the audience's merge fields by upper-cased tag (``type``, ``date_format``).
    """
    for tag, value in merge_fields.items():
        spec = fields.get(str(tag).upper())
        if spec is None or value in (None, ""):
            continue
        if spec["type"] == "number":
            if isinstance(value, bool) or not (isinstance(value, (int, float)) or
                                               (isinstance(value, str) and NUMBER_TEXT.match(value))):
                return str(tag), "Please enter a number"
        elif spec["type"] == "date":
            if parse_mailchimp_date(value, spec.get("date_format")) is None:
                return str(tag), f"Please enter the date in the format {spec.get('date_format') or DEFAULT_DATE_FORMAT}"
        elif spec["type"] == "text" and not isinstance(value, (str, int, float)):
            return str(tag), "Please enter a value as text"
    return None


def mailchimp_field_specs(state: SandboxState, list_id: str,
                          cursor: sqlite3.Cursor | None = None) -> dict[str, dict[str, Any]]:
    """The audience's merge fields by upper-cased tag; inside a transaction, pass its ``cursor``."""
    if cursor is None:
        fields = [(f["tag"], f["type"]) for f in state.mailchimp_merge_fields(list_id)]
    else:
        fields = cursor.execute("SELECT tag, type FROM mailchimp_merge_fields WHERE list_id = ?", (list_id,)).fetchall()
    return {tag.upper(): {"type": kind, "date_format": DEFAULT_DATE_FORMAT if kind == "date" else None}
            for tag, kind in fields}


def list_merge_fields(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    list_id = params["list_id"]
    count, offset = paging(request)
    with state.read() as cursor:
        require_list(cursor, list_id)
    fields = state.mailchimp_merge_fields(list_id)
    merge_fields = [
        {
            "merge_id": field["merge_id"],
            "tag": field["tag"],
            "name": field["name"],
            "type": field["type"],
            "required": False,
            "default_value": "",
            "public": False,
            "display_order": position,
            "options": {"size": 25} if field["type"] == "text" else
            {"date_format": DEFAULT_DATE_FORMAT} if field["type"] == "date" else {},
            "help_text": "",
            "list_id": list_id,
        }
        for position, field in enumerate(fields, start=1)
    ]
    return ok(
        request,
        {"merge_fields": merge_fields[offset : offset + count], "list_id": list_id, "total_items": len(fields)},
    )

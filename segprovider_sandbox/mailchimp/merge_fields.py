"""An audience's merge fields and the typed values they take.

A ``number`` field takes a number (or numeric text); a ``date`` field takes a date in the field's
``options.date_format`` (``MM/DD/YYYY`` by default) or ``YYYY-MM-DD``. A refused member comes back
in the batch's ``errors`` with ``field`` set to the merge tag ("Your merge fields were invalid.").
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from segprovider_sandbox.mailchimp.responses import invalid_resource, json_body, ok, paging, resource_not_found
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


MERGE_FIELD_TYPES = ("text", "number", "address", "phone", "date", "url", "imageurl", "radio", "dropdown",
                     "birthday", "zip")
MAX_TAG_LENGTH = 10


def _merge_field_json(list_id: str, field: dict[str, Any], position: int) -> dict[str, Any]:
    return {
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


def list_merge_fields(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    list_id = params["list_id"]
    count, offset = paging(request)
    with state.read() as cursor:
        require_list(cursor, list_id)
    fields = state.mailchimp_merge_fields(list_id)
    merge_fields = [_merge_field_json(list_id, field, position) for position, field in enumerate(fields, start=1)]
    return ok(
        request,
        {"merge_fields": merge_fields[offset : offset + count], "list_id": list_id, "total_items": len(fields)},
    )


def get_merge_field(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``GET /lists/{id}/merge-fields/{merge_id}``; a 404 when the audience has no such field."""
    list_id = params["list_id"]
    with state.read() as cursor:
        require_list(cursor, list_id)
    fields = state.mailchimp_merge_fields(list_id)
    for position, field in enumerate(fields, start=1):
        if str(field["merge_id"]) == params["merge_id"]:
            return ok(request, _merge_field_json(list_id, field, position))
    raise resource_not_found()


def create_merge_field(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``POST /lists/{id}/merge-fields``: ``name`` and ``type`` required; ``tag`` upper-cased, ``MMERGE{n}`` when
    left out; a tag the audience has is a 400."""
    list_id = params["list_id"]
    body = json_body(request)
    name, field_type, tag = body.get("name"), body.get("type"), body.get("tag")
    if not isinstance(name, str) or not name.strip():
        raise invalid_resource("This value should not be blank.", "name")
    if field_type not in MERGE_FIELD_TYPES:
        raise invalid_resource(f"Data did not match any of the schemas: type must be one of {list(MERGE_FIELD_TYPES)}.",
                               "type")
    if tag is not None and (not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG_LENGTH):
        raise invalid_resource(f"The tag must be 1 to {MAX_TAG_LENGTH} characters.", "tag")
    with state.write() as cursor:
        require_list(cursor, list_id)
        (merge_id,) = cursor.execute("SELECT COALESCE(MAX(merge_id), 0) + 1 FROM mailchimp_merge_fields"
                                     " WHERE list_id = ?", (list_id,)).fetchone()
        tag = (tag or f"MMERGE{merge_id}").strip().upper()
        if cursor.execute("SELECT 1 FROM mailchimp_merge_fields WHERE list_id = ? AND tag = ?",
                          (list_id, tag)).fetchone():
            raise invalid_resource(f'A Merge Field with the tag "{tag}" already exists for this list.', "tag")
        cursor.execute("INSERT INTO mailchimp_merge_fields (merge_id, list_id, tag, name, type) VALUES (?, ?, ?, ?, ?)",
                       (merge_id, list_id, tag, name.strip(), field_type))
        (position,) = cursor.execute("SELECT count(*) FROM mailchimp_merge_fields WHERE list_id = ?",
                                     (list_id,)).fetchone()
    field = {"merge_id": merge_id, "tag": tag, "name": name.strip(), "type": field_type}
    return ok(request, _merge_field_json(list_id, field, position))

"""Mailchimp saved (rule-based) segments, evaluated on the stored merge values whenever they are read.

``POST /lists/{id}/segments`` with ``options: {match: all|any, conditions: [...]}`` (``TextMerge``
for text and number merge fields: ``is``, ``not``, ``contains``, ``notcontain``, ``starts``,
``ends``, ``greater``, ``less``, ``blank``, ``blank_not``; ``DateMerge``: ``is``, ``not``,
``greater``, ``less``, ``blank``, ``blank_not``); ``PATCH /lists/{id}/segments/{segment_id}``
replaces the options; ``member_count`` and ``/members`` cover subscribed members matching the
conditions (counts are what the API reports).

Saved segments live in their own table (ids from 500000), so the static segments the rest of
the sandbox serves are untouched: requests for them are handed to :mod:`.segments`.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from segprovider_sandbox.mailchimp.merge_fields import mailchimp_field_specs, parse_mailchimp_date
from segprovider_sandbox.mailchimp.responses import (
    invalid_resource,
    json_body,
    ok,
    paging,
    resource_not_found,
    timestamp,
)
from segprovider_sandbox.mailchimp.rows import member_json, require_list
from segprovider_sandbox.mailchimp.segments import (
    create_static_segment,
    get_static_segment,
    list_static_segments,
    static_segment_members,
)
from segprovider_sandbox.wire import parse_number

if TYPE_CHECKING:
    import sqlite3

    from segprovider_sandbox.store import SandboxState
    from segprovider_sandbox.wire import SandboxRequest, SandboxResponse


FIRST_SAVED_SEGMENT_ID = 500_000
TEXT_OPS = ("is", "not", "contains", "notcontain", "starts", "ends", "greater", "less", "blank", "blank_not")
DATE_OPS = ("is", "not", "greater", "less", "blank", "blank_not")


def mailchimp_condition_problem(options: Any, fields: dict[str, dict[str, Any]]) -> str | None:
    if not isinstance(options, dict) or options.get("match", "all") not in ("all", "any"):
        return "options.match must be 'all' or 'any'."
    conditions = options.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        return "options.conditions must be a non-empty array."
    for condition in conditions:
        if not isinstance(condition, dict):
            return "Each condition must be an object."
        kind, field_name, op = condition.get("condition_type"), str(condition.get("field", "")).upper(), condition.get("op")
        if kind not in ("TextMerge", "DateMerge"):
            return f"The sandbox evaluates TextMerge and DateMerge conditions, not {kind!r}."
        if field_name not in fields:
            return f"Merge field {condition.get('field')!r} does not exist in this audience."
        if op not in (DATE_OPS if kind == "DateMerge" else TEXT_OPS):
            return f"Invalid op {op!r} for {kind}."
        if op not in ("blank", "blank_not") and "value" not in condition:
            return f"Condition on {field_name} needs a value."
    return None


def _mailchimp_matches(condition: dict[str, Any], merge_fields: dict[str, Any], fields: dict[str, dict[str, Any]]) -> bool:
    tag = str(condition["field"]).upper()
    spec = fields.get(tag, {"type": "text"})
    value = next((v for k, v in merge_fields.items() if str(k).upper() == tag), None)
    op = condition["op"]
    blank = value is None or value == ""
    if op == "blank":
        return blank
    if op == "blank_not":
        return not blank
    if blank:
        return False
    target = condition.get("value")
    if condition["condition_type"] == "DateMerge" or spec["type"] == "date":
        have, want = parse_mailchimp_date(value, spec.get("date_format")), parse_mailchimp_date(str(target), None)
        if have is None or want is None:
            return False
        return {"is": have == want, "not": have != want, "greater": have > want, "less": have < want}.get(op, False)
    if spec["type"] == "number":
        have_n, want_n = parse_number(value), parse_number(target)
        if have_n is None or want_n is None:
            return False
        return {"is": have_n == want_n, "not": have_n != want_n, "greater": have_n > want_n,
                "less": have_n < want_n}.get(op, False)
    have_t, want_t = str(value).lower(), str(target).lower()
    return {"is": have_t == want_t, "not": have_t != want_t, "contains": want_t in have_t,
            "notcontain": want_t not in have_t, "starts": have_t.startswith(want_t), "ends": have_t.endswith(want_t),
            "greater": have_t > want_t, "less": have_t < want_t}[op]


def mailchimp_saved_members(cursor: sqlite3.Cursor, state: SandboxState, list_id: str,
                            options: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Subscribed members matching the options, as member rows (hash, email, status, merge_fields, created, updated)."""
    fields = mailchimp_field_specs(state, list_id, cursor)
    rows = cursor.execute(
        "SELECT subscriber_hash, email_address, status, merge_fields, created_at, updated_at FROM mailchimp_members"
        " WHERE list_id = ? AND status = 'subscribed' ORDER BY rowid", (list_id,)).fetchall()
    test = all if options.get("match", "all") == "all" else any
    out = []
    for row in rows:
        merge_fields = json.loads(row[3])
        if test(_mailchimp_matches(c, merge_fields, fields) for c in options["conditions"]):
            out.append(row)
    return out


def _saved_segment(cursor: sqlite3.Cursor, list_id: str, segment_id: str) -> tuple[Any, ...] | None:
    if not segment_id.isdigit():
        return None
    return cursor.execute("SELECT segment_id, name, options, created_at, updated_at FROM mailchimp_saved_segments"
                          " WHERE list_id = ? AND segment_id = ?", (list_id, int(segment_id))).fetchone()


def _saved_json(cursor: sqlite3.Cursor, state: SandboxState, list_id: str, row: tuple[Any, ...]) -> dict[str, Any]:
    segment_id, name, options, created_at, updated_at = row
    options = json.loads(options)
    return {"id": segment_id, "name": name, "type": "saved",
            "member_count": len(mailchimp_saved_members(cursor, state, list_id, options)), "options": options,
            "created_at": timestamp(created_at), "updated_at": timestamp(updated_at), "list_id": list_id}


def mailchimp_create_segment(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``POST /lists/{id}/segments``: a saved segment when ``options`` is given, else the static handler."""
    body = json_body(request)
    if "options" not in body:
        return create_static_segment(state, request, params)
    list_id = params["list_id"]
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise invalid_resource("This value should not be blank.", "name")
    with state.read() as cursor:
        require_list(cursor, list_id)
    problem = mailchimp_condition_problem(body["options"], mailchimp_field_specs(state, list_id))
    if problem:
        raise invalid_resource(problem, "options.conditions")
    now = time.time()
    with state.write() as cursor:
        (next_id,) = cursor.execute("SELECT COALESCE(MAX(segment_id), ?) + 1 FROM mailchimp_saved_segments",
                                    (FIRST_SAVED_SEGMENT_ID - 1,)).fetchone()
        cursor.execute("INSERT INTO mailchimp_saved_segments VALUES (?, ?, ?, ?, ?, ?)",
                       (next_id, list_id, name, json.dumps(body["options"]), now, now))
        segment = _saved_json(cursor, state, list_id, (next_id, name, json.dumps(body["options"]), now, now))
    return ok(request, segment)


def mailchimp_update_segment(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``PATCH /lists/{id}/segments/{segment_id}``: new name and/or options of a saved segment."""
    list_id = params["list_id"]
    body = json_body(request)
    with state.write() as cursor:
        require_list(cursor, list_id)
        row = _saved_segment(cursor, list_id, params["segment_id"])
        if row is None:
            raise resource_not_found()
        options = body.get("options", json.loads(row[2]))
        problem = mailchimp_condition_problem(options, mailchimp_field_specs(state, list_id, cursor))
        if problem:
            raise invalid_resource(problem, "options.conditions")
        name = body.get("name") or row[1]
        now = time.time()
        cursor.execute("UPDATE mailchimp_saved_segments SET name = ?, options = ?, updated_at = ? WHERE segment_id = ?",
                       (name, json.dumps(options), now, row[0]))
        segment = _saved_json(cursor, state, list_id, (row[0], name, json.dumps(options), row[3], now))
    return ok(request, segment)


def mailchimp_get_segment(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    list_id = params["list_id"]
    with state.read() as cursor:
        row = _saved_segment(cursor, list_id, params["segment_id"])
        segment = None if row is None else _saved_json(cursor, state, list_id, row)
    if segment is None:
        return get_static_segment(state, request, params)
    return ok(request, segment)


def mailchimp_list_segments(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``GET /lists/{id}/segments``: ``type=saved`` lists saved segments; other types the static handler."""
    if request.query_value("type") != "saved":
        return list_static_segments(state, request, params)
    list_id = params["list_id"]
    count, offset = paging(request)
    with state.read() as cursor:
        require_list(cursor, list_id)
        rows = cursor.execute("SELECT segment_id, name, options, created_at, updated_at FROM mailchimp_saved_segments"
                              " WHERE list_id = ? ORDER BY segment_id", (list_id,)).fetchall()
        segments = [_saved_json(cursor, state, list_id, row) for row in rows[offset : offset + count]]
    return ok(request, {"segments": segments, "list_id": list_id, "total_items": len(rows)})


def mailchimp_segment_members(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    list_id = params["list_id"]
    with state.read() as cursor:
        row = _saved_segment(cursor, list_id, params["segment_id"])
        members = None if row is None else mailchimp_saved_members(cursor, state, list_id, json.loads(row[2]))
    if members is None:
        return static_segment_members(state, request, params)
    count, offset = paging(request)
    page = [member_json(list_id, member) for member in members[offset : offset + count]]
    return ok(request, {"members": page, "total_items": len(members)})

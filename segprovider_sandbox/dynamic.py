"""Typed attribute values and rule-based segments in the sandbox, as Mailchimp and HubSpot document them.

Values (what a write is refused for):

* Mailchimp merge fields: a ``number`` field takes a number (or numeric text); a ``date`` field
  takes a date in the field's ``options.date_format`` (``MM/DD/YYYY`` by default) or ``YYYY-MM-DD``.
  A refused member comes back in the batch's ``errors`` with ``field`` set to the merge tag
  ("Your merge fields were invalid.").
* HubSpot contact properties: ``number`` takes numeric text or a number; ``date`` takes
  ``YYYY-MM-DD`` or epoch milliseconds at midnight UTC; ``datetime`` epoch milliseconds or ISO 8601;
  ``bool`` ``true``/``false``. A bad value refuses the whole batch call with a 400
  ``VALIDATION_ERROR`` naming the property and the input.

Rule-based segments, evaluated on the stored values whenever they are read (counts are what the
API reports):

* Mailchimp saved segments: ``POST /lists/{id}/segments`` with ``options: {match: all|any,
  conditions: [...]}`` (``TextMerge`` for text and number merge fields: ``is``, ``not``,
  ``contains``, ``notcontain``, ``starts``, ``ends``, ``greater``, ``less``, ``blank``,
  ``blank_not``; ``DateMerge``: ``is``, ``not``, ``greater``, ``less``, ``blank``, ``blank_not``);
  ``PATCH /lists/{id}/segments/{segment_id}`` replaces the options; ``member_count`` and
  ``/members`` cover subscribed members matching the conditions.
* HubSpot DYNAMIC lists: ``POST /crm/v3/lists`` with ``processingType: DYNAMIC`` and a
  ``filterBranch`` (an ``OR`` root of ``AND`` branches of ``PROPERTY`` filters with ``NUMBER``,
  ``STRING``, ``BOOL``, ``TIME_POINT`` or ``ALL_PROPERTY`` operations);
  ``PUT /crm/v3/lists/{id}/update-list-filters`` replaces it;
  ``GET /crm/v3/lists/object-type-id/0-1/name/{name}`` finds a list by name. ``size`` and
  ``/memberships`` are the contacts matching the filters; manual membership changes are refused.

Saved segments and dynamic lists live in their own tables (ids from 500000 and 900000), so the
static segments and lists the rest of the sandbox serves are untouched.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from segprovider_sandbox.wire import SandboxResponse, VendorError

if TYPE_CHECKING:
    import sqlite3

    from segprovider_sandbox.hubspot import HubSpotApi
    from segprovider_sandbox.mailchimp import MailchimpApi
    from segprovider_sandbox.wire import SandboxRequest

SCHEMA = """
CREATE TABLE IF NOT EXISTS mailchimp_saved_segments (
    segment_id INTEGER PRIMARY KEY,
    list_id TEXT NOT NULL,
    name TEXT NOT NULL,
    options TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS hubspot_dynamic_lists (
    list_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    filter_branch TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""
FIRST_SAVED_SEGMENT_ID = 500_000
FIRST_DYNAMIC_LIST_ID = 900_000
DEFAULT_DATE_FORMAT = "MM/DD/YYYY"
_DATE_FORMATS = {"MM/DD/YYYY": "%m/%d/%Y", "DD/MM/YYYY": "%d/%m/%Y"}
_NUMBER = re.compile(r"^\s*-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")
TEXT_OPS = ("is", "not", "contains", "notcontain", "starts", "ends", "greater", "less", "blank", "blank_not")
DATE_OPS = ("is", "not", "greater", "less", "blank", "blank_not")


# --- values -----------------------------------------------------------------------------------


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
                                               (isinstance(value, str) and _NUMBER.match(value))):
                return str(tag), "Please enter a number"
        elif spec["type"] == "date":
            if parse_mailchimp_date(value, spec.get("date_format")) is None:
                return str(tag), f"Please enter the date in the format {spec.get('date_format') or DEFAULT_DATE_FORMAT}"
        elif spec["type"] == "text" and not isinstance(value, (str, int, float)):
            return str(tag), "Please enter a value as text"
    return None


def mailchimp_field_specs(api: MailchimpApi, list_id: str,
                          cursor: sqlite3.Cursor | None = None) -> dict[str, dict[str, Any]]:
    """The audience's merge fields by upper-cased tag; inside a transaction, pass its ``cursor``."""
    if cursor is None:
        fields = [(f["tag"], f["type"]) for f in api._state.mailchimp_merge_fields(list_id)]
    else:
        fields = cursor.execute("SELECT tag, type FROM mailchimp_merge_fields WHERE list_id = ?", (list_id,)).fetchall()
    return {tag.upper(): {"type": kind, "date_format": DEFAULT_DATE_FORMAT if kind == "date" else None}
            for tag, kind in fields}


def hubspot_property_problem(types: dict[str, str], properties: dict[str, Any]) -> tuple[str, str, str] | None:
    """``(property, error code, message)`` for the first value its property's type refuses, else None."""
    for name, value in properties.items():
        kind = types.get(name)
        if kind is None or value is None or value == "":
            continue
        text = str(value).strip()
        if kind == "number":
            if isinstance(value, bool) or not _NUMBER.match(text):
                return name, "INVALID_FLOAT", f"{text!r} was not a valid number."
        elif kind == "date":
            if _hubspot_date(text) is None:
                return name, "INVALID_DATE", (f"{text!r} is not a valid date: use YYYY-MM-DD or epoch milliseconds "
                                              "at midnight UTC.")
        elif kind == "datetime":
            if _hubspot_datetime(text) is None:
                return name, "INVALID_DATETIME", f"{text!r} is not a valid datetime (epoch milliseconds or ISO 8601)."
        elif kind == "bool" and text.lower() not in ("true", "false"):
            return name, "INVALID_BOOLEAN", f"{text!r} is not a valid boolean (true or false)."
    return None


def _hubspot_date(text: str) -> date | None:
    if text.isdigit():
        moment = datetime.fromtimestamp(int(text) / 1000, UTC)
        return moment.date() if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0) else None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _hubspot_datetime(text: str) -> datetime | None:
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC).replace(tzinfo=None)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return float(value) if isinstance(value, str) and _NUMBER.match(value) else None


# --- Mailchimp saved segments ---------------------------------------------------------------------


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
        have_n, want_n = _number(value), _number(target)
        if have_n is None or want_n is None:
            return False
        return {"is": have_n == want_n, "not": have_n != want_n, "greater": have_n > want_n,
                "less": have_n < want_n}.get(op, False)
    have_t, want_t = str(value).lower(), str(target).lower()
    return {"is": have_t == want_t, "not": have_t != want_t, "contains": want_t in have_t,
            "notcontain": want_t not in have_t, "starts": have_t.startswith(want_t), "ends": have_t.endswith(want_t),
            "greater": have_t > want_t, "less": have_t < want_t}[op]


def mailchimp_saved_members(cursor: sqlite3.Cursor, api: MailchimpApi, list_id: str,
                            options: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Subscribed members matching the options, as member rows (hash, email, status, merge_fields, created, updated)."""
    fields = mailchimp_field_specs(api, list_id, cursor)
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


def _saved_json(cursor: sqlite3.Cursor, api: MailchimpApi, list_id: str, row: tuple[Any, ...]) -> dict[str, Any]:
    from segprovider_sandbox.mailchimp import _timestamp

    segment_id, name, options, created_at, updated_at = row
    options = json.loads(options)
    return {"id": segment_id, "name": name, "type": "saved",
            "member_count": len(mailchimp_saved_members(cursor, api, list_id, options)), "options": options,
            "created_at": _timestamp(created_at), "updated_at": _timestamp(updated_at), "list_id": list_id}


def mailchimp_create_segment(api: MailchimpApi, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``POST /lists/{id}/segments``: a saved segment when ``options`` is given, else the static handler."""
    from segprovider_sandbox.mailchimp import _invalid, _ok

    body = api._json_body(request)
    if "options" not in body:
        return api._create_segment(request, params)
    list_id = params["list_id"]
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _invalid("This value should not be blank.", "name")
    with api._state.read() as cursor:
        api._require_list(cursor, list_id)
    problem = mailchimp_condition_problem(body["options"], mailchimp_field_specs(api, list_id))
    if problem:
        raise _invalid(problem, "options.conditions")
    now = time.time()
    with api._state.write() as cursor:
        (next_id,) = cursor.execute("SELECT COALESCE(MAX(segment_id), ?) + 1 FROM mailchimp_saved_segments",
                                    (FIRST_SAVED_SEGMENT_ID - 1,)).fetchone()
        cursor.execute("INSERT INTO mailchimp_saved_segments VALUES (?, ?, ?, ?, ?, ?)",
                       (next_id, list_id, name, json.dumps(body["options"]), now, now))
        segment = _saved_json(cursor, api, list_id, (next_id, name, json.dumps(body["options"]), now, now))
    return _ok(request, segment)


def mailchimp_update_segment(api: MailchimpApi, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``PATCH /lists/{id}/segments/{segment_id}``: new name and/or options of a saved segment."""
    from segprovider_sandbox.mailchimp import _invalid, _not_found, _ok

    list_id = params["list_id"]
    body = api._json_body(request)
    with api._state.write() as cursor:
        api._require_list(cursor, list_id)
        row = _saved_segment(cursor, list_id, params["segment_id"])
        if row is None:
            raise _not_found()
        options = body.get("options", json.loads(row[2]))
        problem = mailchimp_condition_problem(options, mailchimp_field_specs(api, list_id, cursor))
        if problem:
            raise _invalid(problem, "options.conditions")
        name = body.get("name") or row[1]
        now = time.time()
        cursor.execute("UPDATE mailchimp_saved_segments SET name = ?, options = ?, updated_at = ? WHERE segment_id = ?",
                       (name, json.dumps(options), now, row[0]))
        segment = _saved_json(cursor, api, list_id, (row[0], name, json.dumps(options), row[3], now))
    return _ok(request, segment)


def mailchimp_get_segment(api: MailchimpApi, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    from segprovider_sandbox.mailchimp import _ok

    list_id = params["list_id"]
    with api._state.read() as cursor:
        row = _saved_segment(cursor, list_id, params["segment_id"])
        segment = None if row is None else _saved_json(cursor, api, list_id, row)
    if segment is None:
        return api._get_segment(request, params)
    return _ok(request, segment)


def mailchimp_list_segments(api: MailchimpApi, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``GET /lists/{id}/segments``: ``type=saved`` lists saved segments; other types the static handler."""
    from segprovider_sandbox.mailchimp import _ok, _page

    if request.query_value("type") != "saved":
        return api._list_segments(request, params)
    list_id = params["list_id"]
    count, offset = _page(request)
    with api._state.read() as cursor:
        api._require_list(cursor, list_id)
        rows = cursor.execute("SELECT segment_id, name, options, created_at, updated_at FROM mailchimp_saved_segments"
                              " WHERE list_id = ? ORDER BY segment_id", (list_id,)).fetchall()
        segments = [_saved_json(cursor, api, list_id, row) for row in rows[offset : offset + count]]
    return _ok(request, {"segments": segments, "list_id": list_id, "total_items": len(rows)})


def mailchimp_segment_members(api: MailchimpApi, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    from segprovider_sandbox.mailchimp import _ok, _page

    list_id = params["list_id"]
    with api._state.read() as cursor:
        row = _saved_segment(cursor, list_id, params["segment_id"])
        members = None if row is None else mailchimp_saved_members(cursor, api, list_id, json.loads(row[2]))
    if members is None:
        return api._segment_members(request, params)
    count, offset = _page(request)
    page = [api._member_json(list_id, member) for member in members[offset : offset + count]]
    return _ok(request, {"members": page, "total_items": len(members)})


# --- HubSpot DYNAMIC lists --------------------------------------------------------------------------


def hubspot_filter_problem(branch: Any, types: dict[str, str]) -> str | None:
    if not isinstance(branch, dict) or branch.get("filterBranchType") != "OR":
        return "filterBranch must be an OR branch."
    for child in branch.get("filterBranches") or []:
        if not isinstance(child, dict) or child.get("filterBranchType") != "AND":
            return "The OR branch must hold AND branches."
        for flt in child.get("filters") or []:
            if not isinstance(flt, dict) or flt.get("filterType") != "PROPERTY":
                return "The sandbox evaluates PROPERTY filters only."
            if flt.get("property") not in types:
                return f"Property {flt.get('property')!r} does not exist."
            operation = flt.get("operation") or {}
            if operation.get("operationType") not in ("NUMBER", "STRING", "BOOL", "TIME_POINT", "ALL_PROPERTY"):
                return f"Unsupported operationType {operation.get('operationType')!r}."
    return None


def _hubspot_matches(flt: dict[str, Any], properties: dict[str, Any]) -> bool:
    operation = flt["operation"]
    raw = properties.get(flt["property"])
    known = raw not in (None, "")
    operator = operation.get("operator")
    kind = operation["operationType"]
    if kind == "ALL_PROPERTY":
        return known if operator == "IS_KNOWN" else not known
    if not known:
        return bool(operation.get("includeObjectsWithNoValueSet"))
    if kind == "NUMBER":
        have, want = _number(str(raw)), _number(operation.get("value"))
        if have is None or want is None:
            return False
        return {"IS_EQUAL_TO": have == want, "IS_NOT_EQUAL_TO": have != want, "IS_GREATER_THAN": have > want,
                "IS_GREATER_THAN_OR_EQUAL_TO": have >= want, "IS_LESS_THAN": have < want,
                "IS_LESS_THAN_OR_EQUAL_TO": have <= want}.get(operator, False)
    if kind == "BOOL":
        have_b = str(raw).lower() == "true"
        want_b = operation.get("value") in (True, "true")
        return have_b == want_b if operator == "IS_EQUAL_TO" else have_b != want_b
    if kind == "TIME_POINT":
        point = operation.get("timePoint") or {}
        moment = _hubspot_datetime(str(raw)) if not _hubspot_date(str(raw)) else None
        day = _hubspot_date(str(raw))
        have_dt = moment or (datetime(day.year, day.month, day.day) if day else None)
        if have_dt is None:
            return False
        want_dt = datetime(point["year"], point["month"], point["day"], point.get("hour", 0), point.get("minute", 0),
                           point.get("second", 0))
        if point.get("timeType") == "DATE":  # a date point compares days
            have_dt, want_dt = datetime(have_dt.year, have_dt.month, have_dt.day), want_dt
        return have_dt > want_dt if operator == "IS_AFTER" else have_dt < want_dt
    have_t, want_t = str(raw).lower(), str(operation.get("value", "")).lower()
    return {"IS_EQUAL_TO": have_t == want_t, "IS_NOT_EQUAL_TO": have_t != want_t, "CONTAINS": want_t in have_t,
            "STARTS_WITH": have_t.startswith(want_t)}.get(operator, False)


def hubspot_dynamic_members(cursor: sqlite3.Cursor, branch: dict[str, Any]) -> list[tuple[int, float]]:
    """``(contact id, updated_at)`` of the contacts matching ``branch``, by id."""
    out = []
    for contact_id, properties, updated_at in cursor.execute(
            "SELECT id, properties, updated_at FROM hubspot_contacts ORDER BY id"):
        props = json.loads(properties)
        if any(all(_hubspot_matches(f, props) for f in child.get("filters") or [])
               for child in branch.get("filterBranches") or []):
            out.append((contact_id, updated_at))
    return out


def _dynamic_list(cursor: sqlite3.Cursor, list_id: str) -> tuple[Any, ...] | None:
    if not list_id.isdigit():
        return None
    return cursor.execute("SELECT list_id, name, filter_branch, created_at, updated_at FROM hubspot_dynamic_lists"
                          " WHERE list_id = ?", (int(list_id),)).fetchone()


def _dynamic_json(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    from segprovider_sandbox.hubspot import _timestamp

    list_id, name, branch, created_at, updated_at = row
    branch = json.loads(branch)
    return {"listId": str(list_id), "listVersion": 1, "name": name, "objectTypeId": "0-1",
            "processingStatus": "COMPLETE", "processingType": "DYNAMIC", "filterBranch": branch,
            "createdAt": _timestamp(created_at), "updatedAt": _timestamp(updated_at),
            "size": len(hubspot_dynamic_members(cursor, branch))}


def _property_types(api: HubSpotApi) -> dict[str, str]:
    return {prop["name"]: prop["type"] for prop in api._state.hubspot_contact_properties()}


def hubspot_create_list(api: HubSpotApi, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``POST /crm/v3/lists``: a DYNAMIC list with its ``filterBranch``; other types the static handler."""
    from segprovider_sandbox.hubspot import _validation

    body = api._json_body(request)
    if body.get("processingType") != "DYNAMIC":
        return api._create_list(request, params)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _validation("name is required.")
    if body.get("objectTypeId") != "0-1":
        raise _validation("objectTypeId must be '0-1': the sandbox serves contact lists only.")
    problem = hubspot_filter_problem(body.get("filterBranch"), _property_types(api))
    if problem:
        raise _validation(problem)
    now = time.time()
    with api._state.write() as cursor:
        if cursor.execute("SELECT 1 FROM hubspot_dynamic_lists WHERE name = ?", (name,)).fetchone() or \
                cursor.execute("SELECT 1 FROM hubspot_lists WHERE name = ?", (name,)).fetchone():
            raise _validation(f"A list named {name!r} already exists.")
        (next_id,) = cursor.execute("SELECT COALESCE(MAX(list_id), ?) + 1 FROM hubspot_dynamic_lists",
                                    (FIRST_DYNAMIC_LIST_ID - 1,)).fetchone()
        row = (next_id, name, json.dumps(body["filterBranch"]), now, now)
        cursor.execute("INSERT INTO hubspot_dynamic_lists VALUES (?, ?, ?, ?, ?)", row)
        created = _dynamic_json(cursor, row)
    return SandboxResponse.json(200, {"list": created})


def hubspot_update_filters(api: HubSpotApi, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``PUT /crm/v3/lists/{id}/update-list-filters``: replace a DYNAMIC list's ``filterBranch``."""
    from segprovider_sandbox.hubspot import _validation, error_body

    body = api._json_body(request)
    problem = hubspot_filter_problem(body.get("filterBranch"), _property_types(api))
    if problem:
        raise _validation(problem)
    now = time.time()
    with api._state.write() as cursor:
        row = _dynamic_list(cursor, params["list_id"])
        if row is None:
            return error_body(400, f"List {params['list_id']} is not a DYNAMIC list; only their filters can be "
                              "updated.", "VALIDATION_ERROR")
        cursor.execute("UPDATE hubspot_dynamic_lists SET filter_branch = ?, updated_at = ? WHERE list_id = ?",
                       (json.dumps(body["filterBranch"]), now, row[0]))
        updated = _dynamic_json(cursor, (row[0], row[1], json.dumps(body["filterBranch"]), row[3], now))
    return SandboxResponse.json(200, {"list": updated})


def hubspot_get_list(api: HubSpotApi, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    with api._state.read() as cursor:
        row = _dynamic_list(cursor, params["list_id"])
        found = None if row is None else _dynamic_json(cursor, row)
    if found is None:
        return api._get_list(request, params)
    return SandboxResponse.json(200, {"list": found})


def hubspot_list_by_name(api: HubSpotApi, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``GET /crm/v3/lists/object-type-id/0-1/name/{name}``."""
    from segprovider_sandbox.hubspot import error_body

    name = params["name"]
    with api._state.read() as cursor:
        row = cursor.execute("SELECT list_id, name, filter_branch, created_at, updated_at FROM hubspot_dynamic_lists"
                             " WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return SandboxResponse.json(200, {"list": _dynamic_json(cursor, row)})
        static = cursor.execute("SELECT list_id, name, object_type_id, processing_type, created_at, updated_at"
                                " FROM hubspot_lists WHERE name = ?", (name,)).fetchone()
        if static is not None:
            return SandboxResponse.json(200, {"list": api._list_json(cursor, static)})
    return error_body(404, f"List with name {name} does not exist.", "OBJECT_NOT_FOUND")


def hubspot_memberships(api: HubSpotApi, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    from segprovider_sandbox.hubspot import _timestamp, _validation

    with api._state.read() as cursor:
        row = _dynamic_list(cursor, params["list_id"])
        members = None if row is None else hubspot_dynamic_members(cursor, json.loads(row[2]))
    if members is None:
        return api._memberships(request, params)
    after = request.query_value("after") or "0"
    limit = request.query_value("limit") or "100"
    if not after.isdigit() or not limit.isdigit() or not 1 <= int(limit) <= 250:
        raise _validation("after must be a paging cursor and limit between 1 and 250.")
    rest = [m for m in members if m[0] > int(after)]
    page = rest[: int(limit)]
    payload: dict[str, Any] = {"results": [{"recordId": str(cid), "membershipTimestamp": _timestamp(at)}
                                           for cid, at in page], "total": len(members)}
    if len(rest) > int(limit):
        payload["paging"] = {"next": {"after": str(page[-1][0])}}
    return SandboxResponse.json(200, payload)


def hubspot_add_and_remove(api: HubSpotApi, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    from segprovider_sandbox.hubspot import error_body

    with api._state.read() as cursor:
        dynamic = _dynamic_list(cursor, params["list_id"]) is not None
    if dynamic:
        return error_body(400, f"List {params['list_id']} is a DYNAMIC list: its memberships follow its filters "
                          "and cannot be changed manually.", "VALIDATION_ERROR")
    return api._add_and_remove(request, params)


def hubspot_check_inputs(api: HubSpotApi, inputs: Any) -> None:
    """Refuse a batch upsert whose inputs carry a value of the wrong type for its property (400, named)."""
    from segprovider_sandbox.hubspot import error_body

    if not isinstance(inputs, list):
        return
    types = _property_types(api)
    for item in inputs:
        if not isinstance(item, dict) or not isinstance(item.get("properties"), dict):
            continue
        problem = hubspot_property_problem(types, item["properties"])
        if problem:
            name, code, message = problem
            detail = json.dumps([{"isValid": False, "message": message, "error": code, "name": name}])
            raise VendorError(error_body(400, f"Property values were not valid: {detail}", "VALIDATION_ERROR",
                                         context={"id": [str(item.get("id", ""))], "propertyName": [name]}))

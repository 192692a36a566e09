"""HubSpot DYNAMIC lists, evaluated on the stored property values whenever they are read.

``POST /crm/v3/lists`` with ``processingType: DYNAMIC`` and a ``filterBranch`` (an ``OR`` root of
``AND`` branches of ``PROPERTY`` filters with ``NUMBER``, ``STRING``, ``BOOL``, ``TIME_POINT`` or
``ALL_PROPERTY`` operations); ``PUT /crm/v3/lists/{id}/update-list-filters`` replaces it;
``GET /crm/v3/lists/object-type-id/0-1/name/{name}`` finds a list by name. ``size`` and
``/memberships`` are the contacts matching the filters; manual membership changes are refused.

Dynamic lists live in their own table (ids from 900000), so the static lists the rest of the
sandbox serves are untouched: requests for them are handed to :mod:`.lists`.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from segprovider_sandbox.hubspot.lists import (
    add_and_remove_static,
    add_or_remove_static,
    create_static_list,
    get_static_list,
    list_json,
    static_memberships,
)
from segprovider_sandbox.hubspot.properties import parse_hubspot_date, parse_hubspot_datetime, property_types
from segprovider_sandbox.hubspot.responses import error_body, json_body, timestamp, validation_error
from segprovider_sandbox.wire import SandboxResponse, parse_number

if TYPE_CHECKING:
    import sqlite3

    from segprovider_sandbox.store import SandboxState
    from segprovider_sandbox.wire import SandboxRequest


FIRST_DYNAMIC_LIST_ID = 900_000


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
        have, want = parse_number(str(raw)), parse_number(operation.get("value"))
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
        moment = parse_hubspot_datetime(str(raw)) if not parse_hubspot_date(str(raw)) else None
        day = parse_hubspot_date(str(raw))
        have_dt = moment or (datetime(day.year, day.month, day.day) if day else None)
        if have_dt is None:
            return False
        want_dt = datetime(point["year"], point["month"], point["day"], point.get("hour", 0), point.get("minute", 0),
                           point.get("second", 0))
        if point.get("timeType") == "DATE":  # a date point compares days
            have_dt = datetime(have_dt.year, have_dt.month, have_dt.day)
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
    list_id, name, branch, created_at, updated_at = row
    branch = json.loads(branch)
    return {"listId": str(list_id), "listVersion": 1, "name": name, "objectTypeId": "0-1",
            "processingStatus": "COMPLETE", "processingType": "DYNAMIC", "filterBranch": branch,
            "createdAt": timestamp(created_at), "updatedAt": timestamp(updated_at),
            "size": len(hubspot_dynamic_members(cursor, branch))}


def hubspot_create_list(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``POST /crm/v3/lists``: a DYNAMIC list with its ``filterBranch``; other types the static handler."""
    body = json_body(request)
    if body.get("processingType") != "DYNAMIC":
        return create_static_list(state, request, params)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise validation_error("name is required.")
    if body.get("objectTypeId") != "0-1":
        raise validation_error("objectTypeId must be '0-1': the sandbox serves contact lists only.")
    problem = hubspot_filter_problem(body.get("filterBranch"), property_types(state))
    if problem:
        raise validation_error(problem)
    now = time.time()
    with state.write() as cursor:
        if cursor.execute("SELECT 1 FROM hubspot_dynamic_lists WHERE name = ?", (name,)).fetchone() or \
                cursor.execute("SELECT 1 FROM hubspot_lists WHERE name = ?", (name,)).fetchone():
            raise validation_error(f"A list named {name!r} already exists.")
        (next_id,) = cursor.execute("SELECT COALESCE(MAX(list_id), ?) + 1 FROM hubspot_dynamic_lists",
                                    (FIRST_DYNAMIC_LIST_ID - 1,)).fetchone()
        row = (next_id, name, json.dumps(body["filterBranch"]), now, now)
        cursor.execute("INSERT INTO hubspot_dynamic_lists VALUES (?, ?, ?, ?, ?)", row)
        created = _dynamic_json(cursor, row)
    return SandboxResponse.json(200, {"list": created})


def hubspot_update_filters(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``PUT /crm/v3/lists/{id}/update-list-filters``: replace a DYNAMIC list's ``filterBranch``."""
    body = json_body(request)
    problem = hubspot_filter_problem(body.get("filterBranch"), property_types(state))
    if problem:
        raise validation_error(problem)
    now = time.time()
    with state.write() as cursor:
        row = _dynamic_list(cursor, params["list_id"])
        if row is None:
            return error_body(400, f"List {params['list_id']} is not a DYNAMIC list; only their filters can be "
                              "updated.", "VALIDATION_ERROR")
        cursor.execute("UPDATE hubspot_dynamic_lists SET filter_branch = ?, updated_at = ? WHERE list_id = ?",
                       (json.dumps(body["filterBranch"]), now, row[0]))
        updated = _dynamic_json(cursor, (row[0], row[1], json.dumps(body["filterBranch"]), row[3], now))
    return SandboxResponse.json(200, {"list": updated})


def hubspot_get_list(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    with state.read() as cursor:
        row = _dynamic_list(cursor, params["list_id"])
        found = None if row is None else _dynamic_json(cursor, row)
    if found is None:
        return get_static_list(state, request, params)
    return SandboxResponse.json(200, {"list": found})


def hubspot_list_by_name(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``GET /crm/v3/lists/object-type-id/0-1/name/{name}``."""
    name = params["name"]
    with state.read() as cursor:
        row = cursor.execute("SELECT list_id, name, filter_branch, created_at, updated_at FROM hubspot_dynamic_lists"
                             " WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return SandboxResponse.json(200, {"list": _dynamic_json(cursor, row)})
        static = cursor.execute("SELECT list_id, name, object_type_id, processing_type, created_at, updated_at"
                                " FROM hubspot_lists WHERE name = ?", (name,)).fetchone()
        if static is not None:
            return SandboxResponse.json(200, {"list": list_json(cursor, static)})
    return error_body(404, f"List with name {name} does not exist.", "OBJECT_NOT_FOUND")


def hubspot_memberships(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    with state.read() as cursor:
        row = _dynamic_list(cursor, params["list_id"])
        members = None if row is None else hubspot_dynamic_members(cursor, json.loads(row[2]))
    if members is None:
        return static_memberships(state, request, params)
    after = request.query_value("after") or "0"
    limit = request.query_value("limit") or "100"
    if not after.isdigit() or not limit.isdigit() or not 1 <= int(limit) <= 250:
        raise validation_error("after must be a paging cursor and limit between 1 and 250.")
    rest = [m for m in members if m[0] > int(after)]
    page = rest[: int(limit)]
    payload: dict[str, Any] = {"results": [{"recordId": str(cid), "membershipTimestamp": timestamp(at)}
                                           for cid, at in page], "total": len(members)}
    if len(rest) > int(limit):
        payload["paging"] = {"next": {"after": str(page[-1][0])}}
    return SandboxResponse.json(200, payload)


def hubspot_add_and_remove(state: SandboxState, request: SandboxRequest, params: dict[str, str],
                           *, only: str | None = None) -> SandboxResponse:
    """``PUT .../memberships/add-and-remove`` (``only`` None), ``.../memberships/add`` (``"add"``) or
    ``.../memberships/remove`` (``"remove"``) of a static list; a DYNAMIC list refuses them."""
    with state.read() as cursor:
        dynamic = _dynamic_list(cursor, params["list_id"]) is not None
    if dynamic:
        return error_body(400, f"List {params['list_id']} is a DYNAMIC list: its memberships follow its filters "
                          "and cannot be changed manually.", "VALIDATION_ERROR")
    if only is None:
        return add_and_remove_static(state, request, params)
    return add_or_remove_static(state, request, params, add=only == "add")

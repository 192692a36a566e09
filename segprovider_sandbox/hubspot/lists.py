"""MANUAL and SNAPSHOT contact lists: create, read, change and page their memberships.

``PUT .../memberships/add-and-remove`` answers ``recordsIdsAdded``, ``recordIdsRemoved`` and
``recordIdsMissing`` (those spellings are HubSpot's own, typo included); ``GET .../memberships``
pages by record id ascending. DYNAMIC lists are served by :mod:`.dynamic_lists`, which hands
static lists to the functions here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from segprovider_sandbox.hubspot.contacts import existing_contact_ids
from segprovider_sandbox.hubspot.responses import error_body, json_body, timestamp, validation_error
from segprovider_sandbox.wire import SandboxResponse, VendorError

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from segprovider_sandbox.store import SandboxState
    from segprovider_sandbox.wire import SandboxRequest


MAX_MEMBERSHIP_CHANGES = 100_000
DEFAULT_MEMBERSHIP_LIMIT = 100
MAX_MEMBERSHIP_LIMIT = 250
CONTACT_OBJECT_TYPE = "0-1"


def require_list(cursor: sqlite3.Cursor, list_id: str) -> tuple[Any, ...]:
    """A static list's row; a 404 ``OBJECT_NOT_FOUND`` when it does not exist."""
    row: tuple[Any, ...] | None = None
    if list_id.isdigit():
        row = cursor.execute(
            "SELECT list_id, name, object_type_id, processing_type, created_at, updated_at"
            " FROM hubspot_lists WHERE list_id = ?",
            (int(list_id),),
        ).fetchone()
    if row is None:
        raise VendorError(error_body(404, f"List {list_id} does not exist.", "OBJECT_NOT_FOUND"))
    return row


def list_json(cursor: sqlite3.Cursor, row: Sequence[Any]) -> dict[str, Any]:
    """A static list as HubSpot answers it, with its ``size``."""
    list_id, name, object_type_id, processing_type, created_at, updated_at = row
    (size,) = cursor.execute("SELECT count(*) FROM hubspot_list_members WHERE list_id = ?", (list_id,)).fetchone()
    return {
        "listId": str(list_id),
        "listVersion": 1,
        "name": name,
        "objectTypeId": object_type_id,
        "processingStatus": "COMPLETE",
        "processingType": processing_type,
        "createdAt": timestamp(created_at),
        "updatedAt": timestamp(updated_at),
        "size": size,
    }


def create_static_list(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    body = json_body(request)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise validation_error("name is required.")
    if body.get("objectTypeId") != CONTACT_OBJECT_TYPE:
        raise validation_error(f"objectTypeId must be '{CONTACT_OBJECT_TYPE}': the sandbox serves contact lists only.")
    processing_type = body.get("processingType")
    if processing_type not in ("MANUAL", "SNAPSHOT"):
        raise validation_error("processingType must be MANUAL, SNAPSHOT or DYNAMIC.")
    now = time.time()
    with state.write() as cursor:
        cursor.execute(
            "INSERT INTO hubspot_lists (name, object_type_id, processing_type, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (name, CONTACT_OBJECT_TYPE, processing_type, now, now),
        )
        created = list_json(cursor, (cursor.lastrowid, name, CONTACT_OBJECT_TYPE, processing_type, now, now))
    return SandboxResponse.json(200, {"list": created})


def get_static_list(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    with state.read() as cursor:
        found = list_json(cursor, require_list(cursor, params["list_id"]))
    return SandboxResponse.json(200, {"list": found})


def add_and_remove_static(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``PUT .../memberships/add-and-remove`` with ``recordIdsToAdd`` and ``recordIdsToRemove``."""
    body = json_body(request)
    changes: dict[str, list[str]] = {}
    for key in ("recordIdsToAdd", "recordIdsToRemove"):
        value = body.get(key) or []
        if not isinstance(value, list):
            raise validation_error(f"{key} must be an array of record ids.")
        changes[key] = [str(record_id).strip() for record_id in value]
    return change_static_memberships(state, params["list_id"], changes)


def add_or_remove_static(state: SandboxState, request: SandboxRequest, params: dict[str, str], *,
                         add: bool) -> SandboxResponse:
    """``PUT .../memberships/add`` or ``.../memberships/remove``: the body is a JSON array of record ids."""
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise validation_error(f"Invalid input JSON: {exc}") from exc
    if not isinstance(body, list):
        raise validation_error("The body must be a JSON array of record ids.")
    ids = [str(record_id).strip() for record_id in body]
    changes = {"recordIdsToAdd": ids if add else [], "recordIdsToRemove": [] if add else ids}
    return change_static_memberships(state, params["list_id"], changes)


def change_static_memberships(state: SandboxState, list_ref: str, changes: dict[str, list[str]]) -> SandboxResponse:
    """Add and remove record ids; the answer names the ids added, removed and missing (not contacts)."""
    if sum(len(ids) for ids in changes.values()) > MAX_MEMBERSHIP_CHANGES:
        raise validation_error(f"At most {MAX_MEMBERSHIP_CHANGES} record ids can be changed per request.")
    now = time.time()
    with state.write() as cursor:
        list_id = require_list(cursor, list_ref)[0]
        requested = [i for ids in changes.values() for i in ids]
        numeric = [int(i) for i in requested if i.isdigit()]
        known = existing_contact_ids(cursor, numeric)
        missing = list(dict.fromkeys(i for i in requested if not i.isdigit() or int(i) not in known))
        added: list[str] = []
        for record_id in dict.fromkeys(changes["recordIdsToAdd"]):
            if record_id.isdigit() and int(record_id) in known:
                cursor.execute(
                    "INSERT OR IGNORE INTO hubspot_list_members (list_id, contact_id, added_at) VALUES (?, ?, ?)",
                    (list_id, int(record_id), now),
                )
                if cursor.rowcount:
                    added.append(record_id)
        removed: list[str] = []
        for record_id in dict.fromkeys(changes["recordIdsToRemove"]):
            if record_id.isdigit() and int(record_id) in known:
                cursor.execute(
                    "DELETE FROM hubspot_list_members WHERE list_id = ? AND contact_id = ?",
                    (list_id, int(record_id)),
                )
                if cursor.rowcount:
                    removed.append(record_id)
        if added or removed:
            cursor.execute("UPDATE hubspot_lists SET updated_at = ? WHERE list_id = ?", (now, list_id))
    return SandboxResponse.json(
        200, {"recordIdsMissing": missing, "recordIdsRemoved": removed, "recordsIdsAdded": added}
    )


def static_memberships(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    after = request.query_value("after") or "0"
    limit_param = request.query_value("limit") or str(DEFAULT_MEMBERSHIP_LIMIT)
    if not after.isdigit() or not limit_param.isdigit() or not 1 <= int(limit_param) <= MAX_MEMBERSHIP_LIMIT:
        raise validation_error(f"after must be a paging cursor and limit between 1 and {MAX_MEMBERSHIP_LIMIT}.")
    limit = int(limit_param)
    with state.read() as cursor:
        list_id = require_list(cursor, params["list_id"])[0]
        (total,) = cursor.execute(
            "SELECT count(*) FROM hubspot_list_members WHERE list_id = ?", (list_id,)
        ).fetchone()
        rows = cursor.execute(
            "SELECT contact_id, added_at FROM hubspot_list_members WHERE list_id = ? AND contact_id > ?"
            " ORDER BY contact_id LIMIT ?",
            (list_id, int(after), limit + 1),
        ).fetchall()
    page = rows[:limit]
    payload: dict[str, Any] = {
        "results": [
            {"recordId": str(contact_id), "membershipTimestamp": timestamp(added)} for contact_id, added in page
        ],
        "total": total,
    }
    if len(rows) > limit:
        cursor_value = str(page[-1][0])
        link = f"{request.path}?{urlencode({'after': cursor_value, 'limit': limit})}"
        payload["paging"] = {"next": {"after": cursor_value, "link": link}}
    return SandboxResponse.json(200, payload)

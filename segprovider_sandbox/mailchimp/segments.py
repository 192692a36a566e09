"""Static segments and tags (tags are static segments): the member's tags, tag search, and static segments.

``POST .../members/{hash}/tags`` creates a tag's static segment on first use;
``POST /lists/{list_id}/segments/{segment_id}`` adds and removes up to 500 addresses each.
Saved (rule-based) segments share the ``/segments`` routes: :mod:`.saved_segments` serves them
and hands static segments to the functions here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from segprovider_sandbox.mailchimp.compliance import segment_statuses
from segprovider_sandbox.mailchimp.responses import (
    invalid_resource,
    json_body,
    ok,
    paging,
    resource_not_found,
    timestamp,
)
from segprovider_sandbox.mailchimp.rows import (
    existing_members,
    find_segment_by_name,
    insert_segment,
    member_json,
    member_rows,
    path_member_hash,
    require_list,
    require_segment,
    segment_hashes,
    segment_json,
    tags_of,
)
from segprovider_sandbox.store import subscriber_hash
from segprovider_sandbox.wire import SandboxResponse, is_valid_email

if TYPE_CHECKING:
    from segprovider_sandbox.store import SandboxState
    from segprovider_sandbox.wire import SandboxRequest


MAX_SEGMENT_CHANGES = 500


def get_member_tags(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    list_id = params["list_id"]
    member_hash = path_member_hash(params["member"])
    count, offset = paging(request)
    with state.read() as cursor:
        require_list(cursor, list_id)
        if not existing_members(cursor, list_id, [member_hash]):
            raise resource_not_found()
        rows = cursor.execute(
            "SELECT s.segment_id, s.name, m.added_at FROM mailchimp_segment_members m"
            " JOIN mailchimp_segments s ON s.segment_id = m.segment_id"
            " WHERE s.list_id = ? AND m.subscriber_hash = ? ORDER BY s.segment_id",
            (list_id, member_hash),
        ).fetchall()
    tags = [{"id": tag_id, "name": name, "date_added": timestamp(added)} for tag_id, name, added in rows]
    return ok(request, {"tags": tags[offset : offset + count], "total_items": len(tags)})


def post_member_tags(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    list_id = params["list_id"]
    member_hash = path_member_hash(params["member"])
    tags = json_body(request).get("tags")
    if not isinstance(tags, list) or not all(
        isinstance(tag, dict) and isinstance(tag.get("name"), str) and tag.get("status") in ("active", "inactive")
        for tag in tags
    ):
        raise invalid_resource("tags must be a list of {name, status: active|inactive}.", "tags")
    now = time.time()
    with state.write() as cursor:
        require_list(cursor, list_id)
        if not existing_members(cursor, list_id, [member_hash]):
            raise resource_not_found()
        for tag in tags:
            segment_id = find_segment_by_name(cursor, list_id, tag["name"])
            if tag["status"] == "active":
                if segment_id is None:
                    segment_id = insert_segment(cursor, list_id, tag["name"], now)
                cursor.execute(
                    "INSERT OR IGNORE INTO mailchimp_segment_members (segment_id, subscriber_hash, added_at)"
                    " VALUES (?, ?, ?)",
                    (segment_id, member_hash, now),
                )
            elif segment_id is not None:
                cursor.execute(
                    "DELETE FROM mailchimp_segment_members WHERE segment_id = ? AND subscriber_hash = ?",
                    (segment_id, member_hash),
                )
    return SandboxResponse(204)


def tag_search(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    list_id = params["list_id"]
    prefix = request.query_value("name") or ""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    with state.read() as cursor:
        require_list(cursor, list_id)
        rows = cursor.execute(
            "SELECT segment_id, name FROM mailchimp_segments WHERE list_id = ? AND name LIKE ? ESCAPE '\\'"
            " ORDER BY segment_id",
            (list_id, escaped + "%"),
        ).fetchall()
    return ok(request, {"tags": [{"id": tag_id, "name": name} for tag_id, name in rows], "total_items": len(rows)})


def list_static_segments(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    list_id = params["list_id"]
    count, offset = paging(request)
    segment_type = request.query_value("type")
    with state.read() as cursor:
        require_list(cursor, list_id)
        rows = (
            []
            if segment_type not in (None, "", "static")
            else cursor.execute(
                "SELECT segment_id, name, created_at, updated_at FROM mailchimp_segments WHERE list_id = ?"
                " ORDER BY segment_id",
                (list_id,),
            ).fetchall()
        )
        statuses = segment_statuses(request)
        segments = [segment_json(cursor, list_id, row, statuses) for row in rows[offset : offset + count]]
    return ok(request, {"segments": segments, "list_id": list_id, "total_items": len(rows)})


def create_static_segment(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    list_id = params["list_id"]
    body = json_body(request)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise invalid_resource("This value should not be blank.", "name")
    emails = body.get("static_segment") or []
    if not isinstance(emails, list):
        raise invalid_resource("static_segment must be an array of email addresses.", "static_segment")
    now = time.time()
    with state.write() as cursor:
        require_list(cursor, list_id)
        segment_id = insert_segment(cursor, list_id, name, now)
        # Addresses not on the list are ignored, as documented.
        present = existing_members(cursor, list_id, [subscriber_hash(str(e)) for e in emails if is_valid_email(e)])
        cursor.executemany(
            "INSERT OR IGNORE INTO mailchimp_segment_members (segment_id, subscriber_hash, added_at)"
            " VALUES (?, ?, ?)",
            [(segment_id, member_hash, now) for member_hash in present],
        )
        segment = segment_json(cursor, list_id, (segment_id, name, now, now))
    return ok(request, segment)


def get_static_segment(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    list_id = params["list_id"]
    with state.read() as cursor:
        require_list(cursor, list_id)
        segment = segment_json(cursor, list_id, require_segment(cursor, list_id, params["segment_id"]),
                               segment_statuses(request))
    return ok(request, segment)


def change_segment(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    list_id = params["list_id"]
    body = json_body(request)
    changes: dict[str, list[str]] = {}
    for key in ("members_to_add", "members_to_remove"):
        value = body.get(key) or []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise invalid_resource(f"{key} must be an array of email addresses.", key)
        if len(value) > MAX_SEGMENT_CHANGES:
            raise invalid_resource(f"A maximum of {MAX_SEGMENT_CHANGES} members can be sent in {key}.", key)
        changes[key] = [item.strip() for item in value]
    now = time.time()
    invalid: list[str] = []
    not_on_list: list[str] = []
    added: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    with state.write() as cursor:
        require_list(cursor, list_id)
        segment_id = require_segment(cursor, list_id, params["segment_id"])[0]
        for key, outcome in (("members_to_add", added), ("members_to_remove", removed)):
            valid = [email for email in changes[key] if is_valid_email(email)]
            invalid.extend(email for email in changes[key] if not is_valid_email(email))
            hashes = {subscriber_hash(email): email for email in valid}
            rows = member_rows(cursor, list_id, list(hashes))
            not_on_list.extend(email for member_hash, email in hashes.items() if member_hash not in rows)
            in_segment = segment_hashes(cursor, segment_id, list(rows))
            for member_hash, row in rows.items():
                if key == "members_to_add" and member_hash not in in_segment:
                    cursor.execute(
                        "INSERT INTO mailchimp_segment_members (segment_id, subscriber_hash, added_at)"
                        " VALUES (?, ?, ?)",
                        (segment_id, member_hash, now),
                    )
                    outcome.append(member_json(list_id, row))
                elif key == "members_to_remove" and member_hash in in_segment:
                    cursor.execute(
                        "DELETE FROM mailchimp_segment_members WHERE segment_id = ? AND subscriber_hash = ?",
                        (segment_id, member_hash),
                    )
                    outcome.append(member_json(list_id, row))
        if added or removed:
            cursor.execute("UPDATE mailchimp_segments SET updated_at = ? WHERE segment_id = ?", (now, segment_id))
    errors = []
    if invalid:
        errors.append({"email_addresses": invalid, "error": "Invalid email addresses."})
    if not_on_list:
        errors.append({"email_addresses": not_on_list, "error": "Email addresses are not members of this list."})
    return ok(
        request,
        {
            "members_added": added,
            "members_removed": removed,
            "errors": errors,
            "total_added": len(added),
            "total_removed": len(removed),
            "error_count": sum(len(error["email_addresses"]) for error in errors),
        },
    )


def static_segment_members(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    list_id = params["list_id"]
    count, offset = paging(request)
    with state.read() as cursor:
        require_list(cursor, list_id)
        segment_id = require_segment(cursor, list_id, params["segment_id"])[0]
        statuses = segment_statuses(request)
        joined = (" FROM mailchimp_segment_members s JOIN mailchimp_members m"
                  " ON m.list_id = ? AND m.subscriber_hash = s.subscriber_hash"
                  f" WHERE s.segment_id = ? AND m.status IN ({','.join('?' * len(statuses))})")
        (total,) = cursor.execute("SELECT count(*)" + joined, (list_id, segment_id, *statuses)).fetchone()
        rows = cursor.execute(
            "SELECT m.subscriber_hash, m.email_address, m.status, m.merge_fields, m.created_at, m.updated_at"
            + joined + " ORDER BY s.rowid LIMIT ? OFFSET ?",
            (list_id, segment_id, *statuses, count, offset),
        ).fetchall()
        tags = tags_of(cursor, list_id, [row[0] for row in rows])
    members = [member_json(list_id, row, tags[row[0]]) for row in rows]
    return ok(request, {"members": members, "total_items": total})

"""Audiences and their members: ping, the audience, batch subscribe, list, read, upsert, update, archive and
permanently delete members.

``POST /lists/{list_id}`` batch subscribes or unsubscribes up to 500 ``members`` and answers 200
even when members fail: they come back in ``errors``. Merge values are checked against their
field's type (:mod:`.merge_fields`); contacts in a compliance state are not subscribed again
(:mod:`.compliance`). ``DELETE .../members/{hash}`` archives a member (status ``archived``, re-addable);
``POST .../members/{hash}/actions/delete-permanent`` deletes it for good, and the API may never add it again.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from segprovider_sandbox.mailchimp.compliance import compliance_refusal, set_compliance_mark
from segprovider_sandbox.mailchimp.merge_fields import mailchimp_field_specs, mailchimp_merge_problem
from segprovider_sandbox.mailchimp.responses import (
    invalid_resource,
    json_body,
    ok,
    paging,
    problem,
    resource_not_found,
    timestamp,
)
from segprovider_sandbox.mailchimp.rows import (
    MAX_BATCH_MEMBERS,
    existing_members,
    member_json,
    path_member_hash,
    read_member,
    require_list,
    tags_of,
)
from segprovider_sandbox.store import subscriber_hash
from segprovider_sandbox.wire import SandboxResponse, VendorError, is_valid_email

if TYPE_CHECKING:
    from segprovider_sandbox.store import SandboxState
    from segprovider_sandbox.wire import SandboxRequest


STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")


def ping(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    return ok(request, {"health_status": "Everything's Chimpy!"})


def get_list(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    list_id = params["list_id"]
    with state.read() as cursor:
        name, created_at = require_list(cursor, list_id)
        counts = dict(
            cursor.execute(
                "SELECT status, count(*) FROM mailchimp_members WHERE list_id = ? GROUP BY status", (list_id,)
            ).fetchall()
        )
    return ok(
        request,
        {
            "id": list_id,
            "name": name,
            "date_created": timestamp(created_at),
            "stats": {
                "member_count": counts.get("subscribed", 0),
                "unsubscribe_count": counts.get("unsubscribed", 0),
                "cleaned_count": counts.get("cleaned", 0),
                "total_contacts": sum(n for status, n in counts.items() if status != "archived"),
            },
        },
    )


def batch_subscribe(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    list_id = params["list_id"]
    body = json_body(request)
    members = body.get("members")
    if not isinstance(members, list):
        raise invalid_resource("Required field 'members' is missing or not an array.", "members")
    if len(members) > MAX_BATCH_MEMBERS:
        raise invalid_resource(f"A maximum of {MAX_BATCH_MEMBERS} members can be sent per call.", "members")
    update_existing = bool(body.get("update_existing", False))
    skip_duplicates = (request.query_value("skip_duplicate_check") or "").lower() == "true"

    errors: list[dict[str, Any]] = []
    accepted: dict[str, tuple[str, str, dict[str, Any]]] = {}
    field_specs = mailchimp_field_specs(state, list_id)  # merge values are checked against their type
    for member in members:
        if not isinstance(member, dict):
            errors.append(_member_error("", "Each member must be an object.", "members", "not an object"))
            continue
        email = str(member.get("email_address") or "").strip()
        status = member.get("status") or member.get("status_if_new")
        merge_fields = member.get("merge_fields") or {}
        member_hash = subscriber_hash(email)
        if not is_valid_email(email):
            errors.append(
                _member_error(
                    email,
                    f"{email} looks fake or invalid, please enter a real email address.",
                    "email_address",
                    "Please provide a valid email address.",
                )
            )
        elif status not in STATUSES:
            errors.append(
                _member_error(email, f"Invalid status '{status}'.", "status", f"Must be one of {list(STATUSES)}.")
            )
        elif not isinstance(merge_fields, dict):
            errors.append(_member_error(email, "merge_fields must be an object.", "merge_fields", "Not an object."))
        elif merge_problem := mailchimp_merge_problem(field_specs, merge_fields):
            errors.append(_member_error(email, "Your merge fields were invalid.", merge_problem[0], merge_problem[1]))
        elif member_hash in accepted:
            if not skip_duplicates:
                errors.append(
                    _member_error(email, f"{email} was already sent in this batch.", "email_address", "Duplicate.")
                )
        else:
            accepted[member_hash] = (email, status, merge_fields)

    now = time.time()
    new_members: list[dict[str, Any]] = []
    updated_members: list[dict[str, Any]] = []
    with state.write() as cursor:
        require_list(cursor, list_id)
        existing = existing_members(cursor, list_id, list(accepted))
        rows: list[tuple[Any, ...]] = []
        for member_hash, (email, status, merge_fields) in accepted.items():
            before = existing.get(member_hash)
            if before is not None and before[0] == "archived":
                before = None  # an archived contact is added back as a new one
            refusal = compliance_refusal(cursor, list_id, member_hash, email, None if before is None else before[0],
                                         status if before is None or update_existing else None)
            if refusal is not None:
                errors.append({"email_address": email, "error": refusal[1], "error_code": "ERROR_GENERIC",
                               "field": "", "field_message": ""})
                continue
            if before is None:
                merged, created_at, outcome = merge_fields, now, new_members
            elif update_existing:
                merged, created_at, outcome = {**json.loads(before[1]), **merge_fields}, before[2], updated_members
            else:
                errors.append(
                    {
                        "email_address": email,
                        "error": f"{email} is already a list member. Use PUT to insert or update list members.",
                        "error_code": "ERROR_CONTACT_EXISTS",
                    }
                )
                continue
            outcome.append(member_json(list_id, (member_hash, email, status, merged, created_at, now)))
            rows.append((list_id, member_hash, email, status, json.dumps(merged), created_at, now))
        cursor.executemany(
            "INSERT INTO mailchimp_members"
            " (list_id, subscriber_hash, email_address, status, merge_fields, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (list_id, subscriber_hash) DO UPDATE SET email_address = excluded.email_address,"
            " status = excluded.status, merge_fields = excluded.merge_fields, updated_at = excluded.updated_at",
            rows,
        )
    return ok(
        request,
        {
            "new_members": new_members,
            "updated_members": updated_members,
            "errors": errors,
            "total_created": len(new_members),
            "total_updated": len(updated_members),
            "error_count": len(errors),
        },
    )


def list_members(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    list_id = params["list_id"]
    count, offset = paging(request)
    status = request.query_value("status")
    where = "list_id = ?" + (" AND status = ?" if status else " AND status != 'archived'")
    args: tuple[Any, ...] = (list_id, status) if status else (list_id,)
    with state.read() as cursor:
        require_list(cursor, list_id)
        (total,) = cursor.execute(f"SELECT count(*) FROM mailchimp_members WHERE {where}", args).fetchone()
        rows = cursor.execute(
            "SELECT subscriber_hash, email_address, status, merge_fields, created_at, updated_at"
            f" FROM mailchimp_members WHERE {where} ORDER BY rowid LIMIT ? OFFSET ?",
            (*args, count, offset),
        ).fetchall()
        tags = tags_of(cursor, list_id, [row[0] for row in rows])
    members = [member_json(list_id, row, tags[row[0]]) for row in rows]
    return ok(request, {"members": members, "list_id": list_id, "total_items": total})


def get_member(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    list_id = params["list_id"]
    with state.read() as cursor:
        require_list(cursor, list_id)
        member = read_member(cursor, list_id, path_member_hash(params["member"]))
    if member is None:
        raise resource_not_found()
    return ok(request, member)


def put_member(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``PUT .../members/{hash}``: add or update a member (``status_if_new`` for a new one)."""
    return _write_member(state, request, params, patch=False)


def patch_member(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``PATCH .../members/{hash}``: update an existing member; a 404 when there is none."""
    return _write_member(state, request, params, patch=True)


def _write_member(state: SandboxState, request: SandboxRequest, params: dict[str, str], *,
                  patch: bool) -> SandboxResponse:
    list_id = params["list_id"]
    member_hash = path_member_hash(params["member"])
    body = json_body(request)
    email = str(body.get("email_address") or "").strip()
    if email or not patch:
        if not is_valid_email(email):
            raise invalid_resource("Please provide a valid email address.", "email_address")
        if subscriber_hash(email) != member_hash:
            raise invalid_resource("The subscriber hash in the path does not match email_address.", "email_address")
    merge_fields = body.get("merge_fields") or {}
    if not isinstance(merge_fields, dict):
        raise invalid_resource("merge_fields must be an object.", "merge_fields")
    for key in ("status", "status_if_new"):
        if body.get(key) is not None and body[key] not in STATUSES:
            raise invalid_resource(f"{key} must be one of {list(STATUSES)}.", key)
    if problem_field := mailchimp_merge_problem(mailchimp_field_specs(state, list_id), merge_fields):
        raise invalid_resource(problem_field[1], problem_field[0])
    now = time.time()
    with state.write() as cursor:
        require_list(cursor, list_id)
        before = existing_members(cursor, list_id, [member_hash]).get(member_hash)
        if before is None and patch:
            raise resource_not_found()
        if before is not None and before[0] == "archived" and not patch:
            before = None  # PUT adds an archived contact back
        email = email or str(cursor.execute("SELECT email_address FROM mailchimp_members WHERE list_id = ? AND"
                                            " subscriber_hash = ?", (list_id, member_hash)).fetchone()[0])
        if before is None:
            status = body.get("status_if_new") or body.get("status")
            if status is None:
                raise invalid_resource("status_if_new is required to add a new member.", "status_if_new")
            merged, created_at, requested = merge_fields, now, status
        else:
            status = body.get("status") or before[0]
            merged, created_at, requested = {**json.loads(before[1]), **merge_fields}, before[2], body.get("status")
        refusal = compliance_refusal(cursor, list_id, member_hash, email, None if before is None else before[0],
                                     requested)
        if refusal is not None:
            raise VendorError(problem(400, *refusal))
        cursor.execute(
            "INSERT INTO mailchimp_members"
            " (list_id, subscriber_hash, email_address, status, merge_fields, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (list_id, subscriber_hash) DO UPDATE SET email_address = excluded.email_address,"
            " status = excluded.status, merge_fields = excluded.merge_fields, updated_at = excluded.updated_at",
            (list_id, member_hash, email, status, json.dumps(merged), created_at, now),
        )
        member = read_member(cursor, list_id, member_hash)
    return ok(request, member or {})


def archive_member(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``DELETE .../members/{hash}``: archive the member (204); it keeps its data and may be added back."""
    list_id, member_hash = params["list_id"], path_member_hash(params["member"])
    with state.write() as cursor:
        require_list(cursor, list_id)
        cursor.execute("UPDATE mailchimp_members SET status = 'archived', updated_at = ?"
                       " WHERE list_id = ? AND subscriber_hash = ? AND status != 'archived'",
                       (time.time(), list_id, member_hash))
        if not cursor.rowcount:
            raise resource_not_found()
    return SandboxResponse(204)


def delete_member_permanently(state: SandboxState, request: SandboxRequest,
                              params: dict[str, str]) -> SandboxResponse:
    """``POST .../members/{hash}/actions/delete-permanent``: erase the member and its tags (204), for good."""
    list_id, member_hash = params["list_id"], path_member_hash(params["member"])
    with state.write() as cursor:
        require_list(cursor, list_id)
        cursor.execute("DELETE FROM mailchimp_members WHERE list_id = ? AND subscriber_hash = ?", (list_id, member_hash))
        if not cursor.rowcount:
            raise resource_not_found()
        cursor.execute("DELETE FROM mailchimp_segment_members WHERE subscriber_hash = ? AND segment_id IN"
                       " (SELECT segment_id FROM mailchimp_segments WHERE list_id = ?)", (member_hash, list_id))
        set_compliance_mark(cursor, list_id, member_hash, "deleted")
    return SandboxResponse(204)


def _member_error(email: str, error: str, field: str, field_message: str) -> dict[str, Any]:
    return {
        "email_address": email,
        "error": error,
        "error_code": "ERROR_GENERIC",
        "field": field,
        "field_message": field_message,
    }

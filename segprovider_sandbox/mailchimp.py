"""Mailchimp Marketing API v3 (``/3.0/...``), as Mailchimp documents it.

Contract (https://mailchimp.com/developer/marketing/api/ and
https://mailchimp.com/developer/marketing/docs/errors/):

* HTTP Basic auth, any user name, the API key as password. A missing key is a 401
  "API Key Missing", an unknown one a 401 "API Key Invalid".
* Errors are ``application/problem+json`` documents with ``type``, ``title``,
  ``status``, ``detail`` and ``instance``.
* ``POST /lists/{list_id}`` batch subscribes or unsubscribes up to 500 ``members``.
  It answers 200 even when members fail: they come back in ``errors``
  (``email_address``, ``error``, ``error_code`` of ``ERROR_CONTACT_EXISTS`` or
  ``ERROR_GENERIC``, ``field``, ``field_message``). Without ``update_existing`` an
  existing member is an ``ERROR_CONTACT_EXISTS``.
* A member's id (``subscriber_hash``) is the MD5 of its lower-cased address; paths
  also accept the address itself.
* Tags are static segments: ``POST .../members/{hash}/tags`` with
  ``{"tags": [{"name", "status": "active"|"inactive"}]}`` answers 204 and creates the
  tag's static segment on first use.
* ``POST /lists/{list_id}/segments/{segment_id}`` adds and removes up to 500 addresses
  each (``members_to_add``, ``members_to_remove``); addresses not on the list change
  nothing and are reported in ``errors[].email_addresses``.
* ``GET /lists/{list_id}/merge-fields`` lists the audience's merge fields (``merge_fields``
  of ``merge_id``, ``tag``, ``name``, ``type``…; ``total_items``). Every audience has
  FNAME, LNAME, ADDRESS, PHONE and BIRTHDAY; the sandbox's store seeds more.
* Collections page with ``count`` (default 10, at most 1000) and ``offset`` and report
  ``total_items``; ``fields`` and ``exclude_fields`` (dot notation) trim responses.
* At most 10 simultaneous connections per API key; the 11th gets a 429.

Sandbox choices where the docs are silent: 429s carry ``Retry-After``; an invalid
address is one without a single ``@`` and a dotted domain (Mailchimp's own "looks
fake" heuristics are not imitated). Saved segments (``options.conditions``) are served by
:mod:`.dynamic`, which hands static segments back to this module.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from segprovider_sandbox import dynamic
from segprovider_sandbox.store import subscriber_hash
from segprovider_sandbox.wire import Routes, SandboxResponse, VendorError, is_valid_email

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable, Sequence

    from segprovider_sandbox.config import Credentials
    from segprovider_sandbox.store import SandboxState
    from segprovider_sandbox.wire import SandboxRequest

PREFIX = "/3.0"
MAX_BATCH_MEMBERS = 500
MAX_SEGMENT_CHANGES = 500
DEFAULT_COUNT = 10
MAX_COUNT = 1000
STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
ERRORS_URL = "https://mailchimp.com/developer/marketing/docs/errors/"

_LIST = r"/3\.0/lists/(?P<list_id>[^/]+)"
_MEMBER = _LIST + r"/members/(?P<member>[^/]+)"
_SEGMENT = _LIST + r"/segments/(?P<segment_id>[^/]+)"


def problem(status: int, title: str, detail: str, **extra: Any) -> SandboxResponse:
    """A Mailchimp error document.

    :param status: the HTTP status.
    :param title: the error type's title, e.g. ``Resource Not Found``.
    :param detail: what happened this time.
    :param extra: more members, e.g. ``errors`` for an Invalid Resource.
    """
    return SandboxResponse.json(
        status,
        {
            "type": ERRORS_URL,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": str(uuid.uuid4()),
            **extra,
        },
        content_type="application/problem+json; charset=utf-8",
    )


def _not_found() -> VendorError:
    return VendorError(problem(404, "Resource Not Found", "The requested resource could not be found."))


def _invalid(detail: str, field: str) -> VendorError:
    return VendorError(
        problem(
            400,
            "Invalid Resource",
            "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
            errors=[{"field": field, "message": detail}],
        )
    )


@lru_cache(maxsize=4096)
def _timestamp(epoch: float) -> str:
    # Cached: a batch stamps hundreds of members with the same instant.
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _page(request: SandboxRequest) -> tuple[int, int]:
    """``count`` and ``offset``, validated like Mailchimp's collections."""
    try:
        count = int(request.query_value("count") or DEFAULT_COUNT)
        offset = int(request.query_value("offset") or 0)
    except ValueError as exc:
        raise _invalid("count and offset must be integers", "count") from exc
    if not 1 <= count <= MAX_COUNT or offset < 0:
        raise _invalid(f"count must be between 1 and {MAX_COUNT} and offset not negative", "count")
    return count, offset


def _field_tree(paths: Iterable[str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path.strip().split("."):
            if part:
                node = node.setdefault(part, {})
    return tree


def _keep(value: Any, tree: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_keep(item, tree) for item in value]
    if not isinstance(value, dict) or not tree:
        return value
    return {key: _keep(value[key], sub) for key, sub in tree.items() if key in value}


def _drop(value: Any, tree: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_drop(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for key, item in value.items():
        sub = tree.get(key)
        if sub is None:
            kept[key] = item
        elif sub:
            kept[key] = _drop(item, sub)
        # an empty subtree names the key itself, which is dropped
    return kept


def _trim(request: SandboxRequest, payload: dict[str, Any]) -> dict[str, Any]:
    """Apply the ``fields`` / ``exclude_fields`` query parameters (comma separated, dot notation)."""
    fields = request.query_value("fields")
    if fields:
        payload = _keep(payload, _field_tree(fields.split(",")))
    exclude = request.query_value("exclude_fields")
    if exclude:
        payload = _drop(payload, _field_tree(exclude.split(",")))
    return payload


def _ok(request: SandboxRequest, payload: dict[str, Any]) -> SandboxResponse:
    return SandboxResponse.json(200, _trim(request, payload))


class MailchimpApi:
    """The Mailchimp Marketing API v3 over a :class:`SandboxState`.

    :param state: the store.
    :param credentials: the accepted API keys.
    :param max_connections: simultaneous requests per API key before 429.
    """

    vendor = "mailchimp"

    def __init__(self, state: SandboxState, credentials: Credentials, max_connections: int) -> None:
        self._state = state
        self._api_keys = frozenset(credentials.mailchimp_api_keys)
        self.max_concurrent_requests: int | None = max_connections
        routes = Routes()
        routes.add("GET", r"/3\.0/ping", self._ping)
        routes.add("GET", _LIST, self._get_list)
        routes.add("POST", _LIST, self._batch_subscribe)
        routes.add("GET", _LIST + "/members", self._list_members)
        routes.add("GET", _MEMBER, self._get_member)
        routes.add("PUT", _MEMBER, self._put_member)
        routes.add("GET", _MEMBER + "/tags", self._get_member_tags)
        routes.add("POST", _MEMBER + "/tags", self._post_member_tags)
        routes.add("GET", _LIST + "/merge-fields", self._list_merge_fields)
        routes.add("GET", _LIST + "/tag-search", self._tag_search)
        # saved (rule-based) segments are served by sandbox.dynamic, which hands static ones back here
        routes.add("GET", _LIST + "/segments", lambda r, p: dynamic.mailchimp_list_segments(self, r, p))
        routes.add("POST", _LIST + "/segments", lambda r, p: dynamic.mailchimp_create_segment(self, r, p))
        routes.add("GET", _SEGMENT, lambda r, p: dynamic.mailchimp_get_segment(self, r, p))
        routes.add("PATCH", _SEGMENT, lambda r, p: dynamic.mailchimp_update_segment(self, r, p))
        routes.add("POST", _SEGMENT, self._change_segment)
        routes.add("GET", _SEGMENT + "/members", lambda r, p: dynamic.mailchimp_segment_members(self, r, p))
        self._routes = routes

    # --- VendorApi ------------------------------------------------------------------------

    def owns(self, path: str) -> bool:
        """Whether the path is under ``/3.0``.

        :param path: the request path.
        """
        return path == PREFIX or path.startswith(PREFIX + "/")

    def authenticate(self, request: SandboxRequest) -> str:
        """The API key from HTTP Basic auth; a 401 problem when missing or unknown.

        :param request: the request.
        """
        header = request.header("authorization") or ""
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "basic" or not credentials:
            raise VendorError(problem(401, "API Key Missing", "Your request did not include an API key."))
        try:
            _, _, api_key = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            api_key = ""
        if api_key not in self._api_keys:
            raise VendorError(
                problem(
                    401,
                    "API Key Invalid",
                    "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
                )
            )
        return api_key

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Route and serve the request.

        :param request: an authenticated request.
        """
        resolved = self._routes.resolve(request.method, request.path)
        if resolved.handler is None:
            if resolved.allowed:
                return problem(
                    405,
                    "Method Not Allowed",
                    "The requested method and resource are not compatible. See the Allow header for this "
                    "resource's available methods.",
                ).with_headers({"Allow": ", ".join(resolved.allowed)})
            return _not_found().response
        return resolved.handler(request, resolved.params)

    def rate_limited(self, retry_after: int, *, concurrency: bool) -> SandboxResponse:
        """Mailchimp's 429 ``Too Many Requests``.

        :param retry_after: seconds to advertise in ``Retry-After``.
        :param concurrency: whether the cause is too many simultaneous connections.
        """
        detail = (
            f"You have exceeded the limit of {self.max_concurrent_requests} simultaneous connections."
            if concurrency
            else "You have exceeded the sandbox's request-rate limit for this API key."
        )
        return problem(429, "Too Many Requests", detail).with_headers({"Retry-After": str(retry_after)})

    def server_error(self, status: int) -> SandboxResponse:
        """A Mailchimp 5xx problem document.

        :param status: the 5xx status.
        """
        return problem(
            status,
            HTTPStatus(status).phrase,
            "An unexpected internal error has occurred. Please contact Support for more information.",
        )

    def finish(self, response: SandboxResponse) -> SandboxResponse:
        """Mailchimp adds nothing to every response.

        :param response: the response.
        """
        return response

    # --- helpers --------------------------------------------------------------------------

    @staticmethod
    def _json_body(request: SandboxRequest) -> dict[str, Any]:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise VendorError(
                problem(400, "JSON Parse Exception", "We encountered an unspecified JSON parsing error.")
            ) from exc
        if not isinstance(body, dict):
            raise VendorError(problem(400, "JSON Parse Exception", "The request body must be a JSON object."))
        return body

    @staticmethod
    def _require_list(cursor: sqlite3.Cursor, list_id: str) -> tuple[str, float]:
        row: tuple[str, float] | None = cursor.execute(
            "SELECT name, created_at FROM mailchimp_lists WHERE list_id = ?", (list_id,)
        ).fetchone()
        if row is None:
            raise _not_found()
        return row

    @staticmethod
    def _require_segment(cursor: sqlite3.Cursor, list_id: str, segment_id: str) -> tuple[int, str, float, float]:
        if not segment_id.isdigit():
            raise _not_found()
        row: tuple[int, str, float, float] | None = cursor.execute(
            "SELECT segment_id, name, created_at, updated_at FROM mailchimp_segments"
            " WHERE segment_id = ? AND list_id = ?",
            (int(segment_id), list_id),
        ).fetchone()
        if row is None:
            raise _not_found()
        return row

    @staticmethod
    def _member_hash(member: str) -> str:
        return subscriber_hash(member) if "@" in member else member.lower()

    @staticmethod
    def _member_json(list_id: str, row: Sequence[Any], tags: list[tuple[int, str]] | None = None) -> dict[str, Any]:
        """A list member; ``row`` is hash, email, status, merge_fields (JSON or dict), created_at, updated_at."""
        member_hash, email, status, merge_fields, created_at, updated_at = row
        member = {
            "id": member_hash,
            "email_address": email,
            "unique_email_id": member_hash[:10],
            "contact_id": member_hash,
            "email_type": "html",
            "status": status,
            "merge_fields": json.loads(merge_fields) if isinstance(merge_fields, str) else merge_fields,
            "timestamp_signup": _timestamp(created_at),
            "last_changed": _timestamp(updated_at),
            "list_id": list_id,
        }
        if tags is not None:
            member["tags_count"] = len(tags)
            member["tags"] = [{"id": tag_id, "name": name} for tag_id, name in tags]
        return member

    @staticmethod
    def _tags_of(cursor: sqlite3.Cursor, list_id: str, hashes: Sequence[str]) -> dict[str, list[tuple[int, str]]]:
        tags: dict[str, list[tuple[int, str]]] = {member_hash: [] for member_hash in hashes}
        if not hashes:
            return tags
        placeholders = ",".join("?" * len(hashes))
        rows = cursor.execute(
            "SELECT m.subscriber_hash, s.segment_id, s.name FROM mailchimp_segment_members m"
            " JOIN mailchimp_segments s ON s.segment_id = m.segment_id"
            f" WHERE s.list_id = ? AND m.subscriber_hash IN ({placeholders}) ORDER BY s.segment_id",
            (list_id, *hashes),
        )
        for member_hash, segment_id, name in rows:
            tags[member_hash].append((segment_id, name))
        return tags

    @staticmethod
    def _segment_json(cursor: sqlite3.Cursor, list_id: str, row: Sequence[Any]) -> dict[str, Any]:
        segment_id, name, created_at, updated_at = row
        (member_count,) = cursor.execute(
            "SELECT count(*) FROM mailchimp_segment_members WHERE segment_id = ?", (segment_id,)
        ).fetchone()
        return {
            "id": segment_id,
            "name": name,
            "member_count": member_count,
            "type": "static",
            "created_at": _timestamp(created_at),
            "updated_at": _timestamp(updated_at),
            "list_id": list_id,
        }

    # --- endpoints ------------------------------------------------------------------------

    def _ping(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        return _ok(request, {"health_status": "Everything's Chimpy!"})

    def _get_list(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        list_id = params["list_id"]
        with self._state.read() as cursor:
            name, created_at = self._require_list(cursor, list_id)
            counts = dict(
                cursor.execute(
                    "SELECT status, count(*) FROM mailchimp_members WHERE list_id = ? GROUP BY status", (list_id,)
                ).fetchall()
            )
        return _ok(
            request,
            {
                "id": list_id,
                "name": name,
                "date_created": _timestamp(created_at),
                "stats": {
                    "member_count": counts.get("subscribed", 0),
                    "unsubscribe_count": counts.get("unsubscribed", 0),
                    "cleaned_count": counts.get("cleaned", 0),
                    "total_contacts": sum(counts.values()),
                },
            },
        )

    def _batch_subscribe(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        list_id = params["list_id"]
        body = self._json_body(request)
        members = body.get("members")
        if not isinstance(members, list):
            raise _invalid("Required field 'members' is missing or not an array.", "members")
        if len(members) > MAX_BATCH_MEMBERS:
            raise _invalid(f"A maximum of {MAX_BATCH_MEMBERS} members can be sent per call.", "members")
        update_existing = bool(body.get("update_existing", False))
        skip_duplicates = (request.query_value("skip_duplicate_check") or "").lower() == "true"

        errors: list[dict[str, Any]] = []
        accepted: dict[str, tuple[str, str, dict[str, Any]]] = {}
        field_specs = dynamic.mailchimp_field_specs(self, list_id)  # merge values are checked against their type
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
            elif problem := dynamic.mailchimp_merge_problem(field_specs, merge_fields):
                errors.append(_member_error(email, "Your merge fields were invalid.", problem[0], problem[1]))
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
        with self._state.write() as cursor:
            self._require_list(cursor, list_id)
            existing = _existing_members(cursor, list_id, list(accepted))
            rows: list[tuple[Any, ...]] = []
            for member_hash, (email, status, merge_fields) in accepted.items():
                before = existing.get(member_hash)
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
                outcome.append(self._member_json(list_id, (member_hash, email, status, merged, created_at, now)))
                rows.append((list_id, member_hash, email, status, json.dumps(merged), created_at, now))
            cursor.executemany(
                "INSERT INTO mailchimp_members"
                " (list_id, subscriber_hash, email_address, status, merge_fields, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (list_id, subscriber_hash) DO UPDATE SET email_address = excluded.email_address,"
                " status = excluded.status, merge_fields = excluded.merge_fields, updated_at = excluded.updated_at",
                rows,
            )
        return _ok(
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

    def _list_members(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        list_id = params["list_id"]
        count, offset = _page(request)
        status = request.query_value("status")
        where = "list_id = ?" + (" AND status = ?" if status else "")
        args: tuple[Any, ...] = (list_id, status) if status else (list_id,)
        with self._state.read() as cursor:
            self._require_list(cursor, list_id)
            (total,) = cursor.execute(f"SELECT count(*) FROM mailchimp_members WHERE {where}", args).fetchone()
            rows = cursor.execute(
                "SELECT subscriber_hash, email_address, status, merge_fields, created_at, updated_at"
                f" FROM mailchimp_members WHERE {where} ORDER BY rowid LIMIT ? OFFSET ?",
                (*args, count, offset),
            ).fetchall()
            tags = self._tags_of(cursor, list_id, [row[0] for row in rows])
        members = [self._member_json(list_id, row, tags[row[0]]) for row in rows]
        return _ok(request, {"members": members, "list_id": list_id, "total_items": total})

    def _read_member(self, cursor: sqlite3.Cursor, list_id: str, member_hash: str) -> dict[str, Any] | None:
        row = cursor.execute(
            "SELECT subscriber_hash, email_address, status, merge_fields, created_at, updated_at"
            " FROM mailchimp_members WHERE list_id = ? AND subscriber_hash = ?",
            (list_id, member_hash),
        ).fetchone()
        if row is None:
            return None
        return self._member_json(list_id, row, self._tags_of(cursor, list_id, [member_hash])[member_hash])

    def _get_member(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        list_id = params["list_id"]
        with self._state.read() as cursor:
            self._require_list(cursor, list_id)
            member = self._read_member(cursor, list_id, self._member_hash(params["member"]))
        if member is None:
            raise _not_found()
        return _ok(request, member)

    def _put_member(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        list_id = params["list_id"]
        member_hash = self._member_hash(params["member"])
        body = self._json_body(request)
        email = str(body.get("email_address") or "").strip()
        if not is_valid_email(email):
            raise _invalid("Please provide a valid email address.", "email_address")
        if subscriber_hash(email) != member_hash:
            raise _invalid("The subscriber hash in the path does not match email_address.", "email_address")
        merge_fields = body.get("merge_fields") or {}
        if not isinstance(merge_fields, dict):
            raise _invalid("merge_fields must be an object.", "merge_fields")
        for key in ("status", "status_if_new"):
            if body.get(key) is not None and body[key] not in STATUSES:
                raise _invalid(f"{key} must be one of {list(STATUSES)}.", key)
        now = time.time()
        with self._state.write() as cursor:
            self._require_list(cursor, list_id)
            before = _existing_members(cursor, list_id, [member_hash]).get(member_hash)
            if before is None:
                status = body.get("status_if_new") or body.get("status")
                if status is None:
                    raise _invalid("status_if_new is required to add a new member.", "status_if_new")
                merged, created_at = merge_fields, now
            else:
                status = body.get("status") or before[0]
                merged, created_at = {**json.loads(before[1]), **merge_fields}, before[2]
            cursor.execute(
                "INSERT INTO mailchimp_members"
                " (list_id, subscriber_hash, email_address, status, merge_fields, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (list_id, subscriber_hash) DO UPDATE SET email_address = excluded.email_address,"
                " status = excluded.status, merge_fields = excluded.merge_fields, updated_at = excluded.updated_at",
                (list_id, member_hash, email, status, json.dumps(merged), created_at, now),
            )
            member = self._read_member(cursor, list_id, member_hash)
        return _ok(request, member or {})

    def _get_member_tags(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        list_id = params["list_id"]
        member_hash = self._member_hash(params["member"])
        count, offset = _page(request)
        with self._state.read() as cursor:
            self._require_list(cursor, list_id)
            if not _existing_members(cursor, list_id, [member_hash]):
                raise _not_found()
            rows = cursor.execute(
                "SELECT s.segment_id, s.name, m.added_at FROM mailchimp_segment_members m"
                " JOIN mailchimp_segments s ON s.segment_id = m.segment_id"
                " WHERE s.list_id = ? AND m.subscriber_hash = ? ORDER BY s.segment_id",
                (list_id, member_hash),
            ).fetchall()
        tags = [{"id": tag_id, "name": name, "date_added": _timestamp(added)} for tag_id, name, added in rows]
        return _ok(request, {"tags": tags[offset : offset + count], "total_items": len(tags)})

    def _post_member_tags(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        list_id = params["list_id"]
        member_hash = self._member_hash(params["member"])
        tags = self._json_body(request).get("tags")
        if not isinstance(tags, list) or not all(
            isinstance(tag, dict) and isinstance(tag.get("name"), str) and tag.get("status") in ("active", "inactive")
            for tag in tags
        ):
            raise _invalid("tags must be a list of {name, status: active|inactive}.", "tags")
        now = time.time()
        with self._state.write() as cursor:
            self._require_list(cursor, list_id)
            if not _existing_members(cursor, list_id, [member_hash]):
                raise _not_found()
            for tag in tags:
                segment_id = _find_segment_by_name(cursor, list_id, tag["name"])
                if tag["status"] == "active":
                    if segment_id is None:
                        segment_id = _insert_segment(cursor, list_id, tag["name"], now)
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

    def _tag_search(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        list_id = params["list_id"]
        prefix = request.query_value("name") or ""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self._state.read() as cursor:
            self._require_list(cursor, list_id)
            rows = cursor.execute(
                "SELECT segment_id, name FROM mailchimp_segments WHERE list_id = ? AND name LIKE ? ESCAPE '\\'"
                " ORDER BY segment_id",
                (list_id, escaped + "%"),
            ).fetchall()
        return _ok(request, {"tags": [{"id": tag_id, "name": name} for tag_id, name in rows], "total_items": len(rows)})

    def _list_merge_fields(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        list_id = params["list_id"]
        count, offset = _page(request)
        with self._state.read() as cursor:
            self._require_list(cursor, list_id)
        fields = self._state.mailchimp_merge_fields(list_id)
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
                {"date_format": dynamic.DEFAULT_DATE_FORMAT} if field["type"] == "date" else {},
                "help_text": "",
                "list_id": list_id,
            }
            for position, field in enumerate(fields, start=1)
        ]
        return _ok(
            request,
            {"merge_fields": merge_fields[offset : offset + count], "list_id": list_id, "total_items": len(fields)},
        )

    def _list_segments(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        list_id = params["list_id"]
        count, offset = _page(request)
        segment_type = request.query_value("type")
        with self._state.read() as cursor:
            self._require_list(cursor, list_id)
            rows = (
                []
                if segment_type not in (None, "", "static")
                else cursor.execute(
                    "SELECT segment_id, name, created_at, updated_at FROM mailchimp_segments WHERE list_id = ?"
                    " ORDER BY segment_id",
                    (list_id,),
                ).fetchall()
            )
            segments = [self._segment_json(cursor, list_id, row) for row in rows[offset : offset + count]]
        return _ok(request, {"segments": segments, "list_id": list_id, "total_items": len(rows)})

    def _create_segment(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        list_id = params["list_id"]
        body = self._json_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _invalid("This value should not be blank.", "name")
        emails = body.get("static_segment") or []
        if not isinstance(emails, list):
            raise _invalid("static_segment must be an array of email addresses.", "static_segment")
        now = time.time()
        with self._state.write() as cursor:
            self._require_list(cursor, list_id)
            segment_id = _insert_segment(cursor, list_id, name, now)
            # Addresses not on the list are ignored, as documented.
            present = _existing_members(cursor, list_id, [subscriber_hash(str(e)) for e in emails if is_valid_email(e)])
            cursor.executemany(
                "INSERT OR IGNORE INTO mailchimp_segment_members (segment_id, subscriber_hash, added_at)"
                " VALUES (?, ?, ?)",
                [(segment_id, member_hash, now) for member_hash in present],
            )
            segment = self._segment_json(cursor, list_id, (segment_id, name, now, now))
        return _ok(request, segment)

    def _get_segment(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        list_id = params["list_id"]
        with self._state.read() as cursor:
            self._require_list(cursor, list_id)
            segment = self._segment_json(cursor, list_id, self._require_segment(cursor, list_id, params["segment_id"]))
        return _ok(request, segment)

    def _change_segment(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        list_id = params["list_id"]
        body = self._json_body(request)
        changes: dict[str, list[str]] = {}
        for key in ("members_to_add", "members_to_remove"):
            value = body.get(key) or []
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise _invalid(f"{key} must be an array of email addresses.", key)
            if len(value) > MAX_SEGMENT_CHANGES:
                raise _invalid(f"A maximum of {MAX_SEGMENT_CHANGES} members can be sent in {key}.", key)
            changes[key] = [item.strip() for item in value]
        now = time.time()
        invalid: list[str] = []
        not_on_list: list[str] = []
        added: list[dict[str, Any]] = []
        removed: list[dict[str, Any]] = []
        with self._state.write() as cursor:
            self._require_list(cursor, list_id)
            segment_id = self._require_segment(cursor, list_id, params["segment_id"])[0]
            for key, outcome in (("members_to_add", added), ("members_to_remove", removed)):
                valid = [email for email in changes[key] if is_valid_email(email)]
                invalid.extend(email for email in changes[key] if not is_valid_email(email))
                hashes = {subscriber_hash(email): email for email in valid}
                rows = _member_rows(cursor, list_id, list(hashes))
                not_on_list.extend(email for member_hash, email in hashes.items() if member_hash not in rows)
                in_segment = _segment_hashes(cursor, segment_id, list(rows))
                for member_hash, row in rows.items():
                    if key == "members_to_add" and member_hash not in in_segment:
                        cursor.execute(
                            "INSERT INTO mailchimp_segment_members (segment_id, subscriber_hash, added_at)"
                            " VALUES (?, ?, ?)",
                            (segment_id, member_hash, now),
                        )
                        outcome.append(self._member_json(list_id, row))
                    elif key == "members_to_remove" and member_hash in in_segment:
                        cursor.execute(
                            "DELETE FROM mailchimp_segment_members WHERE segment_id = ? AND subscriber_hash = ?",
                            (segment_id, member_hash),
                        )
                        outcome.append(self._member_json(list_id, row))
            if added or removed:
                cursor.execute("UPDATE mailchimp_segments SET updated_at = ? WHERE segment_id = ?", (now, segment_id))
        errors = []
        if invalid:
            errors.append({"email_addresses": invalid, "error": "Invalid email addresses."})
        if not_on_list:
            errors.append({"email_addresses": not_on_list, "error": "Email addresses are not members of this list."})
        return _ok(
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

    def _segment_members(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        list_id = params["list_id"]
        count, offset = _page(request)
        with self._state.read() as cursor:
            self._require_list(cursor, list_id)
            segment_id = self._require_segment(cursor, list_id, params["segment_id"])[0]
            (total,) = cursor.execute(
                "SELECT count(*) FROM mailchimp_segment_members WHERE segment_id = ?", (segment_id,)
            ).fetchone()
            rows = cursor.execute(
                "SELECT m.subscriber_hash, m.email_address, m.status, m.merge_fields, m.created_at, m.updated_at"
                " FROM mailchimp_segment_members s JOIN mailchimp_members m"
                " ON m.list_id = ? AND m.subscriber_hash = s.subscriber_hash"
                " WHERE s.segment_id = ? ORDER BY s.rowid LIMIT ? OFFSET ?",
                (list_id, segment_id, count, offset),
            ).fetchall()
            tags = self._tags_of(cursor, list_id, [row[0] for row in rows])
        members = [self._member_json(list_id, row, tags[row[0]]) for row in rows]
        return _ok(request, {"members": members, "total_items": total})


def _member_error(email: str, error: str, field: str, field_message: str) -> dict[str, Any]:
    return {
        "email_address": email,
        "error": error,
        "error_code": "ERROR_GENERIC",
        "field": field,
        "field_message": field_message,
    }


def _existing_members(cursor: sqlite3.Cursor, list_id: str, hashes: Sequence[str]) -> dict[str, tuple[str, str, float]]:
    """Status, merge_fields JSON and created_at of the members among ``hashes``."""
    found: dict[str, tuple[str, str, float]] = {}
    for start in range(0, len(hashes), MAX_BATCH_MEMBERS):
        chunk = hashes[start : start + MAX_BATCH_MEMBERS]
        rows = cursor.execute(
            "SELECT subscriber_hash, status, merge_fields, created_at FROM mailchimp_members"
            f" WHERE list_id = ? AND subscriber_hash IN ({','.join('?' * len(chunk))})",
            (list_id, *chunk),
        )
        found.update((row[0], row[1:]) for row in rows)
    return found


def _member_rows(cursor: sqlite3.Cursor, list_id: str, hashes: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """Full member rows (for :meth:`MailchimpApi._member_json`) of the members among ``hashes``."""
    if not hashes:
        return {}
    rows = cursor.execute(
        "SELECT subscriber_hash, email_address, status, merge_fields, created_at, updated_at FROM mailchimp_members"
        f" WHERE list_id = ? AND subscriber_hash IN ({','.join('?' * len(hashes))})",
        (list_id, *hashes),
    )
    return {row[0]: row for row in rows}


def _segment_hashes(cursor: sqlite3.Cursor, segment_id: int, hashes: Sequence[str]) -> set[str]:
    if not hashes:
        return set()
    rows = cursor.execute(
        "SELECT subscriber_hash FROM mailchimp_segment_members"
        f" WHERE segment_id = ? AND subscriber_hash IN ({','.join('?' * len(hashes))})",
        (segment_id, *hashes),
    )
    return {row[0] for row in rows}


def _find_segment_by_name(cursor: sqlite3.Cursor, list_id: str, name: str) -> int | None:
    row = cursor.execute(
        "SELECT segment_id FROM mailchimp_segments WHERE list_id = ? AND name = ? ORDER BY segment_id LIMIT 1",
        (list_id, name),
    ).fetchone()
    return None if row is None else row[0]


def _insert_segment(cursor: sqlite3.Cursor, list_id: str, name: str, now: float) -> int:
    cursor.execute(
        "INSERT INTO mailchimp_segments (list_id, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
        (list_id, name, now, now),
    )
    return int(cursor.lastrowid or 0)

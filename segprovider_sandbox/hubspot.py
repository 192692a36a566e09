"""HubSpot CRM v3 contacts and Lists v3 memberships, as HubSpot documents them.

Contract (https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/upsert-contacts,
https://developers.hubspot.com/docs/api-reference/error-handling,
https://developers.hubspot.com/docs/guides/api/crm/lists/overview and the legacy ``/crm/v3/lists``
reference pages):

* ``Authorization: Bearer <token>`` (private-app or OAuth token); otherwise a 401
  ``{"status": "error", "message", "correlationId", "category": "INVALID_AUTHENTICATION"}``.
* ``POST /crm/v3/objects/contacts/batch/upsert`` takes at most 100 ``inputs``
  (``idProperty``, ``id``, ``properties``) and answers ``{"status": "COMPLETE",
  "results": [...], "startedAt", "completedAt"}``; each result has the contact
  ``id``, ``properties`` and ``new``. When some inputs fail the answer is
  **207 Multi-Status** with ``errors`` and ``numErrors`` beside the results.
* ``POST .../batch/read`` by ``idProperty: "email"`` (or by id); ids not found come back
  as an ``OBJECT_NOT_FOUND`` error in a 207.
* ``GET /crm/v3/properties/contacts`` answers ``{"results": [{"name", "label", "type",
  "fieldType", "groupName", ...}]}``, every contact property at once: HubSpot's defaults
  (the sandbox keeps email, firstname, lastname, phone, country, lifecyclestage) and the
  account's custom properties, which the sandbox's store seeds.
* Lists: ``POST /crm/v3/lists`` creates ``{"list": {...}}``; ``GET /crm/v3/lists/{listId}``
  answers ``{"list": {..., "size"}}`` or 404;
  ``PUT .../memberships/add-and-remove`` takes ``recordIdsToAdd`` / ``recordIdsToRemove``
  and answers ``recordsIdsAdded``, ``recordIdsRemoved`` and ``recordIdsMissing``
  (those spellings are HubSpot's own, typo included);
  ``GET .../memberships?after=&limit=`` pages by record id ascending (``limit``
  default 100, at most 250) with ``paging.next.after`` and ``total``.
* Every response carries ``X-HubSpot-RateLimit-Max``, ``-Remaining`` and
  ``-Interval-Milliseconds`` (plus ``-Secondly`` and ``-Secondly-Remaining``); past the
  window (190 requests / 10 s by default) a 429 ``{"status": "error", "errorType":
  "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING", ...}``.

Sandbox choices: only contact lists (``objectTypeId`` ``0-1``) with ``MANUAL`` or
``SNAPSHOT`` processing; 429s also carry ``Retry-After``; any input error turns the
upsert into a 207, even when every input failed.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from segprovider_sandbox import dynamic
from segprovider_sandbox.wire import Routes, SandboxResponse, VendorError, is_valid_email

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Sequence

    from segprovider_sandbox.config import Credentials
    from segprovider_sandbox.faults import WindowUsage
    from segprovider_sandbox.store import SandboxState
    from segprovider_sandbox.wire import SandboxRequest

PREFIX = "/crm/v3"
MAX_BATCH_INPUTS = 100
MAX_MEMBERSHIP_CHANGES = 100_000
DEFAULT_MEMBERSHIP_LIMIT = 100
MAX_MEMBERSHIP_LIMIT = 250
CONTACT_OBJECT_TYPE = "0-1"
DEFAULT_PROPERTIES = ("email", "firstname", "lastname")

_CONTACTS = r"/crm/v3/objects/contacts"
_LIST = r"/crm/v3/lists/(?P<list_id>[^/]+)"


def error_body(status: int, message: str, category: str, **extra: Any) -> SandboxResponse:
    """A HubSpot error response.

    :param status: the HTTP status.
    :param message: the human-readable message.
    :param category: e.g. ``VALIDATION_ERROR``, ``OBJECT_NOT_FOUND``.
    :param extra: more members, e.g. ``context``.
    """
    return SandboxResponse.json(
        status,
        {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra},
    )


def _validation(message: str) -> VendorError:
    return VendorError(error_body(400, message, "VALIDATION_ERROR"))


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _property_value(value: Any) -> str:
    """HubSpot stores every property value as a string; null clears it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class HubSpotApi:
    """HubSpot CRM v3 contacts and lists over a :class:`SandboxState`.

    :param state: the store.
    :param credentials: the accepted tokens.
    :param window_usage: reports the rate-limit window, for the ``X-HubSpot-RateLimit-*`` headers.
    """

    vendor = "hubspot"
    max_concurrent_requests: int | None = None

    def __init__(
        self, state: SandboxState, credentials: Credentials, window_usage: Callable[[], WindowUsage | None]
    ) -> None:
        self._state = state
        self._tokens = frozenset(credentials.hubspot_tokens)
        self._window_usage = window_usage
        routes = Routes()
        routes.add("POST", _CONTACTS + "/batch/upsert", self._batch_upsert)
        routes.add("POST", _CONTACTS + "/batch/read", self._batch_read)
        routes.add("GET", _CONTACTS + r"/(?P<contact_id>[^/]+)", self._get_contact)
        routes.add("GET", r"/crm/v3/properties/contacts/?", self._contact_properties)
        # DYNAMIC (filter-based) lists are served by sandbox.dynamic, which hands static ones back here
        routes.add("POST", r"/crm/v3/lists/?", lambda r, p: dynamic.hubspot_create_list(self, r, p))
        routes.add("GET", r"/crm/v3/lists/object-type-id/0-1/name/(?P<name>[^/]+)",
                   lambda r, p: dynamic.hubspot_list_by_name(self, r, p))
        routes.add("GET", _LIST, lambda r, p: dynamic.hubspot_get_list(self, r, p))
        routes.add("PUT", _LIST + "/update-list-filters", lambda r, p: dynamic.hubspot_update_filters(self, r, p))
        routes.add("PUT", _LIST + "/memberships/add-and-remove", lambda r, p: dynamic.hubspot_add_and_remove(self, r, p))
        routes.add("GET", _LIST + "/memberships", lambda r, p: dynamic.hubspot_memberships(self, r, p))
        self._routes = routes

    # --- VendorApi ------------------------------------------------------------------------

    def owns(self, path: str) -> bool:
        """Whether the path is under ``/crm/v3``.

        :param path: the request path.
        """
        return path.startswith(PREFIX + "/")

    def authenticate(self, request: SandboxRequest) -> str:
        """The bearer token; a 401 ``INVALID_AUTHENTICATION`` when missing or unknown.

        :param request: the request.
        """
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise VendorError(
                error_body(
                    401,
                    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION",
                )
            )
        if token not in self._tokens:
            raise VendorError(
                error_body(
                    401,
                    "The access token provided is invalid or has been revoked.",
                    "INVALID_AUTHENTICATION",
                )
            )
        return token

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Route and serve the request.

        :param request: an authenticated request.
        """
        resolved = self._routes.resolve(request.method, request.path)
        if resolved.handler is None:
            if resolved.allowed:
                return error_body(405, f"Method {request.method} is not supported on this path.", "VALIDATION_ERROR")
            return error_body(404, "Resource not found.", "OBJECT_NOT_FOUND")
        return resolved.handler(request, resolved.params)

    def rate_limited(self, retry_after: int, *, concurrency: bool) -> SandboxResponse:
        """HubSpot's 429 for the rolling window.

        :param retry_after: seconds to advertise in ``Retry-After``.
        :param concurrency: unused: HubSpot limits requests per window, not simultaneous requests.
        """
        return SandboxResponse.json(
            429,
            {
                "status": "error",
                "message": "You have reached your ten_secondly_rolling limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()),
                "policyName": "TEN_SECONDLY_ROLLING",
                "requestId": str(uuid.uuid4()),
            },
            headers={"Retry-After": str(retry_after)},
        )

    def server_error(self, status: int) -> SandboxResponse:
        """HubSpot's answer for a 5xx (the docs advise pausing a few seconds, then retrying).

        :param status: the 5xx status.
        """
        return error_body(status, "The request could not be completed in time. Pause, then retry.", "INTERNAL_ERROR")

    def finish(self, response: SandboxResponse) -> SandboxResponse:
        """Add the ``X-HubSpot-RateLimit-*`` headers.

        :param response: the response.
        """
        usage = self._window_usage()
        if usage is None:
            return response
        per_second = max(1, round(usage.max_requests / usage.window_seconds))
        return response.with_headers(
            {
                "X-HubSpot-RateLimit-Max": str(usage.max_requests),
                "X-HubSpot-RateLimit-Remaining": str(usage.remaining),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(round(usage.window_seconds * 1000)),
                "X-HubSpot-RateLimit-Secondly": str(per_second),
                "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, per_second - usage.last_second)),
            }
        )

    # --- helpers --------------------------------------------------------------------------

    @staticmethod
    def _json_body(request: SandboxRequest) -> dict[str, Any]:
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise _validation(f"Invalid input JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise _validation("Invalid input JSON: expected an object.")
        return body

    @staticmethod
    def _contact_json(
        row: Sequence[Any], wanted: Sequence[str] | None = None, *, new: bool | None = None
    ) -> dict[str, Any]:
        """A contact; ``row`` is id, properties JSON, created_at, updated_at; ``wanted`` limits properties."""
        contact_id, properties, created_at, updated_at = row
        stored = json.loads(properties) if isinstance(properties, str) else dict(properties)
        names = stored.keys() if wanted is None else wanted
        shown: dict[str, Any] = {name: stored.get(name) for name in names}
        shown.update(
            {
                "createdate": _timestamp(created_at),
                "lastmodifieddate": _timestamp(updated_at),
                "hs_object_id": str(contact_id),
            }
        )
        contact: dict[str, Any] = {
            "id": str(contact_id),
            "properties": shown,
            "createdAt": _timestamp(created_at),
            "updatedAt": _timestamp(updated_at),
            "archived": False,
        }
        if new is not None:
            contact["new"] = new
        return contact

    @staticmethod
    def _require_list(cursor: sqlite3.Cursor, list_id: str) -> tuple[Any, ...]:
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

    @staticmethod
    def _list_json(cursor: sqlite3.Cursor, row: Sequence[Any]) -> dict[str, Any]:
        list_id, name, object_type_id, processing_type, created_at, updated_at = row
        (size,) = cursor.execute("SELECT count(*) FROM hubspot_list_members WHERE list_id = ?", (list_id,)).fetchone()
        return {
            "listId": str(list_id),
            "listVersion": 1,
            "name": name,
            "objectTypeId": object_type_id,
            "processingStatus": "COMPLETE",
            "processingType": processing_type,
            "createdAt": _timestamp(created_at),
            "updatedAt": _timestamp(updated_at),
            "size": size,
        }

    @staticmethod
    def _batch_answer(started: float, results: list[dict[str, Any]], errors: list[dict[str, Any]]) -> SandboxResponse:
        payload: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": _timestamp(started),
            "completedAt": _timestamp(time.time()),
        }
        if errors:
            payload["errors"] = errors
            payload["numErrors"] = len(errors)
        return SandboxResponse.json(207 if errors else 200, payload)

    # --- endpoints ------------------------------------------------------------------------

    def _batch_upsert(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        started = time.time()
        inputs = self._json_body(request).get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise _validation("inputs must be a non-empty array.")
        if len(inputs) > MAX_BATCH_INPUTS:
            raise _validation(f"Batch input limit exceeded: at most {MAX_BATCH_INPUTS} inputs are allowed.")
        dynamic.hubspot_check_inputs(self, inputs)  # a value of the wrong type refuses the call, as HubSpot does
        errors: list[dict[str, Any]] = []
        valid: dict[str, dict[str, str]] = {}
        for item in inputs:
            if not isinstance(item, dict) or item.get("idProperty") != "email":
                raise _validation(
                    'Each input needs "idProperty": "email" (the only unique property the sandbox serves).'
                )
            raw_id = str(item.get("id") or "").strip()
            properties = item.get("properties") or {}
            if not isinstance(properties, dict):
                raise _validation(f"properties of input {raw_id!r} must be an object.")
            email = raw_id.lower()
            if email in valid:
                raise _validation(f"Duplicate IDs found in batch input: [{raw_id}]. IDs must be unique")
            if not is_valid_email(raw_id):
                error: dict[str, Any] = {
                    "status": "error",
                    "category": "VALIDATION_ERROR",
                    "message": f'Property values were not valid: [{{"isValid":false,"message":"Email address '
                    f'{raw_id} is invalid","error":"INVALID_EMAIL","name":"email"}}]',
                    "context": {"ids": [raw_id]},
                    "errors": [
                        {"message": f"Email address {raw_id} is invalid", "code": "INVALID_EMAIL", "in": "email"}
                    ],
                }
                if item.get("objectWriteTraceId"):
                    error["context"]["objectWriteTraceId"] = [str(item["objectWriteTraceId"])]
                errors.append(error)
                continue
            valid[email] = {name: _property_value(value) for name, value in properties.items()} | {"email": email}

        now = time.time()
        results: list[dict[str, Any]] = []
        with self._state.write() as cursor:
            existing = _contacts_by_email(cursor, list(valid))
            updates: list[tuple[Any, ...]] = []
            for email, properties in valid.items():
                before = existing.get(email)
                if before is None:
                    cursor.execute(
                        "INSERT INTO hubspot_contacts (email, properties, created_at, updated_at) VALUES (?, ?, ?, ?)",
                        (email, json.dumps(properties), now, now),
                    )
                    results.append(self._contact_json((cursor.lastrowid, properties, now, now), new=True))
                else:
                    contact_id, stored, created_at = before
                    merged = {**json.loads(stored), **properties}
                    updates.append((json.dumps(merged), now, contact_id))
                    results.append(self._contact_json((contact_id, merged, created_at, now), new=False))
            cursor.executemany("UPDATE hubspot_contacts SET properties = ?, updated_at = ? WHERE id = ?", updates)
        return self._batch_answer(started, results, errors)

    def _batch_read(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        started = time.time()
        body = self._json_body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or len(inputs) > MAX_BATCH_INPUTS:
            raise _validation(f"inputs must be an array of at most {MAX_BATCH_INPUTS} {{id}} objects.")
        wanted = body.get("properties") or list(DEFAULT_PROPERTIES)
        by_email = body.get("idProperty") == "email"
        ids = list(dict.fromkeys(str(item.get("id", "")).strip() for item in inputs if isinstance(item, dict)))
        with self._state.read() as cursor:
            found = {
                contact_id: row
                for contact_id in ids
                if (row := _find_contact(cursor, contact_id, by_email=by_email)) is not None
            }
        errors = []
        missing = [contact_id for contact_id in ids if contact_id not in found]
        if missing:
            errors.append(
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
                    "Check that ids are valid.",
                    "context": {"ids": missing},
                }
            )
        return self._batch_answer(started, [self._contact_json(row, wanted) for row in found.values()], errors)

    def _get_contact(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        contact_id = params["contact_id"]
        wanted_param = request.query_value("properties")
        wanted = wanted_param.split(",") if wanted_param else list(DEFAULT_PROPERTIES)
        with self._state.read() as cursor:
            row = _find_contact(cursor, contact_id, by_email=request.query_value("idProperty") == "email")
        if row is None:
            return error_body(
                404,
                "Object not found.  objectId are usually numeric.",
                "OBJECT_NOT_FOUND",
                context={"id": [contact_id]},
            )
        return SandboxResponse.json(200, self._contact_json(row, wanted))

    def _contact_properties(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        # HubSpot answers every property of the object type in one response, without paging.
        results = [
            {
                "name": prop["name"],
                "label": prop["label"],
                "type": prop["type"],
                "fieldType": prop["field_type"],
                "groupName": prop["group_name"],
                "description": "",
                "options": [],
                "displayOrder": -1,
                "calculated": False,
                "externalOptions": False,
                "hasUniqueValue": False,
                "hidden": False,
                "hubspotDefined": prop["hubspot_defined"],
                "formField": True,
                "archived": False,
                "createdAt": _timestamp(prop["created_at"]),
                "updatedAt": _timestamp(prop["created_at"]),
            }
            for prop in self._state.hubspot_contact_properties()
        ]
        return SandboxResponse.json(200, {"results": results})

    def _create_list(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        body = self._json_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _validation("name is required.")
        if body.get("objectTypeId") != CONTACT_OBJECT_TYPE:
            raise _validation(f"objectTypeId must be '{CONTACT_OBJECT_TYPE}': the sandbox serves contact lists only.")
        processing_type = body.get("processingType")
        if processing_type not in ("MANUAL", "SNAPSHOT"):
            raise _validation("processingType must be MANUAL, SNAPSHOT or DYNAMIC.")
        now = time.time()
        with self._state.write() as cursor:
            cursor.execute(
                "INSERT INTO hubspot_lists (name, object_type_id, processing_type, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, CONTACT_OBJECT_TYPE, processing_type, now, now),
            )
            created = self._list_json(cursor, (cursor.lastrowid, name, CONTACT_OBJECT_TYPE, processing_type, now, now))
        return SandboxResponse.json(200, {"list": created})

    def _get_list(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        with self._state.read() as cursor:
            found = self._list_json(cursor, self._require_list(cursor, params["list_id"]))
        return SandboxResponse.json(200, {"list": found})

    def _add_and_remove(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        body = self._json_body(request)
        changes: dict[str, list[str]] = {}
        for key in ("recordIdsToAdd", "recordIdsToRemove"):
            value = body.get(key) or []
            if not isinstance(value, list):
                raise _validation(f"{key} must be an array of record ids.")
            changes[key] = [str(record_id).strip() for record_id in value]
        if sum(len(ids) for ids in changes.values()) > MAX_MEMBERSHIP_CHANGES:
            raise _validation(f"At most {MAX_MEMBERSHIP_CHANGES} record ids can be changed per request.")
        now = time.time()
        with self._state.write() as cursor:
            list_id = self._require_list(cursor, params["list_id"])[0]
            requested = [i for ids in changes.values() for i in ids]
            numeric = [int(i) for i in requested if i.isdigit()]
            known = _existing_contact_ids(cursor, numeric)
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

    def _memberships(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        after = request.query_value("after") or "0"
        limit_param = request.query_value("limit") or str(DEFAULT_MEMBERSHIP_LIMIT)
        if not after.isdigit() or not limit_param.isdigit() or not 1 <= int(limit_param) <= MAX_MEMBERSHIP_LIMIT:
            raise _validation(f"after must be a paging cursor and limit between 1 and {MAX_MEMBERSHIP_LIMIT}.")
        limit = int(limit_param)
        with self._state.read() as cursor:
            list_id = self._require_list(cursor, params["list_id"])[0]
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
                {"recordId": str(contact_id), "membershipTimestamp": _timestamp(added)} for contact_id, added in page
            ],
            "total": total,
        }
        if len(rows) > limit:
            cursor_value = str(page[-1][0])
            link = f"{request.path}?{urlencode({'after': cursor_value, 'limit': limit})}"
            payload["paging"] = {"next": {"after": cursor_value, "link": link}}
        return SandboxResponse.json(200, payload)


def _contacts_by_email(cursor: sqlite3.Cursor, emails: Sequence[str]) -> dict[str, tuple[int, str, float]]:
    """Id, properties JSON and created_at of the contacts among ``emails``."""
    if not emails:
        return {}
    placeholders = ",".join("?" * len(emails))
    rows = cursor.execute(
        f"SELECT email, id, properties, created_at FROM hubspot_contacts WHERE email IN ({placeholders})", list(emails)
    )
    return {row[0]: row[1:] for row in rows}


def _find_contact(cursor: sqlite3.Cursor, contact_id: str, *, by_email: bool) -> tuple[Any, ...] | None:
    """Id, properties JSON, created_at and updated_at of a contact by id or (``by_email``) email."""
    key: str | int
    if by_email:
        where, key = "email = ?", contact_id.lower()
    elif contact_id.isdigit():
        where, key = "id = ?", int(contact_id)
    else:
        return None
    row: tuple[Any, ...] | None = cursor.execute(
        f"SELECT id, properties, created_at, updated_at FROM hubspot_contacts WHERE {where}", (key,)
    ).fetchone()
    return row


def _existing_contact_ids(cursor: sqlite3.Cursor, ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    chunk_size = 900
    for start in range(0, len(ids), chunk_size):
        chunk = ids[start : start + chunk_size]
        rows = cursor.execute(f"SELECT id FROM hubspot_contacts WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        found.update(row[0] for row in rows)
    return found

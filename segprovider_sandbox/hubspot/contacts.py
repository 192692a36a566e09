"""Contacts: batch upsert and read by email, read one contact, and the contact properties.

``POST /crm/v3/objects/contacts/batch/upsert`` takes at most 100 ``inputs``; a value of the wrong
type for its property refuses the whole call (:mod:`.properties`); an invalid address turns the
answer into a 207 with ``errors``.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from segprovider_sandbox.hubspot.properties import hubspot_check_inputs
from segprovider_sandbox.hubspot.responses import batch_answer, error_body, json_body, timestamp, validation_error
from segprovider_sandbox.wire import SandboxResponse, is_valid_email

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from segprovider_sandbox.store import SandboxState
    from segprovider_sandbox.wire import SandboxRequest


MAX_BATCH_INPUTS = 100
DEFAULT_PROPERTIES = ("email", "firstname", "lastname")


def property_value(value: Any) -> str:
    """HubSpot stores every property value as a string; null clears it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def contact_json(
    row: Sequence[Any], wanted: Sequence[str] | None = None, *, new: bool | None = None
) -> dict[str, Any]:
    """A contact; ``row`` is id, properties JSON, created_at, updated_at; ``wanted`` limits properties."""
    contact_id, properties, created_at, updated_at = row
    stored = json.loads(properties) if isinstance(properties, str) else dict(properties)
    names = stored.keys() if wanted is None else wanted
    shown: dict[str, Any] = {name: stored.get(name) for name in names}
    shown.update(
        {
            "createdate": timestamp(created_at),
            "lastmodifieddate": timestamp(updated_at),
            "hs_object_id": str(contact_id),
        }
    )
    contact: dict[str, Any] = {
        "id": str(contact_id),
        "properties": shown,
        "createdAt": timestamp(created_at),
        "updatedAt": timestamp(updated_at),
        "archived": False,
    }
    if new is not None:
        contact["new"] = new
    return contact


def batch_upsert(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    started = time.time()
    inputs = json_body(request).get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise validation_error("inputs must be a non-empty array.")
    if len(inputs) > MAX_BATCH_INPUTS:
        raise validation_error(f"Batch input limit exceeded: at most {MAX_BATCH_INPUTS} inputs are allowed.")
    hubspot_check_inputs(state, inputs)  # a value of the wrong type refuses the call, as HubSpot does
    errors: list[dict[str, Any]] = []
    valid: dict[str, dict[str, str]] = {}
    for item in inputs:
        if not isinstance(item, dict) or item.get("idProperty") != "email":
            raise validation_error(
                'Each input needs "idProperty": "email" (the only unique property the sandbox serves).'
            )
        raw_id = str(item.get("id") or "").strip()
        properties = item.get("properties") or {}
        if not isinstance(properties, dict):
            raise validation_error(f"properties of input {raw_id!r} must be an object.")
        email = raw_id.lower()
        if email in valid:
            raise validation_error(f"Duplicate IDs found in batch input: [{raw_id}]. IDs must be unique")
        if not is_valid_email(raw_id):
            error: dict[str, Any] = {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": f'Property values were not valid: [{{"isValid":false,"message":"Email address '
                f'{raw_id} is invalid","error":"INVALID_EMAIL","name":"email"}}]',
                "context": {"ids": [raw_id]},
                "links": {},
                "errors": [
                    {"message": f"Email address {raw_id} is invalid", "code": "INVALID_EMAIL", "in": "email"}
                ],
            }
            if item.get("objectWriteTraceId"):
                error["context"]["objectWriteTraceId"] = [str(item["objectWriteTraceId"])]
            errors.append(error)
            continue
        valid[email] = {name: property_value(value) for name, value in properties.items()} | {"email": email}

    now = time.time()
    results: list[dict[str, Any]] = []
    with state.write() as cursor:
        existing = contacts_by_email(cursor, list(valid))
        updates: list[tuple[Any, ...]] = []
        for email, properties in valid.items():
            before = existing.get(email)
            if before is None:
                cursor.execute(
                    "INSERT INTO hubspot_contacts (email, properties, created_at, updated_at) VALUES (?, ?, ?, ?)",
                    (email, json.dumps(properties), now, now),
                )
                results.append(contact_json((cursor.lastrowid, properties, now, now), new=True))
            else:
                contact_id, stored, created_at = before
                merged = {**json.loads(stored), **properties}
                updates.append((json.dumps(merged), now, contact_id))
                results.append(contact_json((contact_id, merged, created_at, now), new=False))
        cursor.executemany("UPDATE hubspot_contacts SET properties = ?, updated_at = ? WHERE id = ?", updates)
    return batch_answer(started, results, errors)


def batch_read(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    started = time.time()
    body = json_body(request)
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) > MAX_BATCH_INPUTS:
        raise validation_error(f"inputs must be an array of at most {MAX_BATCH_INPUTS} {{id}} objects.")
    wanted = body.get("properties") or list(DEFAULT_PROPERTIES)
    by_email = body.get("idProperty") == "email"
    ids = list(dict.fromkeys(str(item.get("id", "")).strip() for item in inputs if isinstance(item, dict)))
    with state.read() as cursor:
        found = {
            contact_id: row
            for contact_id in ids
            if (row := find_contact(cursor, contact_id, by_email=by_email)) is not None
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
                "errors": [],
                "links": {},
            }
        )
    return batch_answer(started, [contact_json(row, wanted) for row in found.values()], errors)


def get_contact(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    contact_id = params["contact_id"]
    wanted_param = request.query_value("properties")
    wanted = wanted_param.split(",") if wanted_param else list(DEFAULT_PROPERTIES)
    with state.read() as cursor:
        row = find_contact(cursor, contact_id, by_email=request.query_value("idProperty") == "email")
    if row is None:
        return error_body(
            404,
            "Object not found.  objectId are usually numeric.",
            "OBJECT_NOT_FOUND",
            context={"id": [contact_id]},
        )
    return SandboxResponse.json(200, contact_json(row, wanted))


def property_json(prop: dict[str, Any]) -> dict[str, Any]:
    """A contact property as HubSpot answers it; ``prop`` as :meth:`SandboxState.hubspot_contact_properties` has it."""
    return {
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
        "createdAt": timestamp(prop["created_at"]),
        "updatedAt": timestamp(prop["created_at"]),
    }


def contact_properties(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    # HubSpot answers every property of the object type in one response, without paging.
    return SandboxResponse.json(200, {"results": [property_json(prop) for prop in state.hubspot_contact_properties()]})


def get_contact_property(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``GET /crm/v3/properties/contacts/{name}``; a 404 when there is no such property."""
    for prop in state.hubspot_contact_properties():
        if prop["name"] == params["name"]:
            return SandboxResponse.json(200, property_json(prop))
    return error_body(404, f"Unable to find property named '{params['name']}' for object type 0-1", "OBJECT_NOT_FOUND")


PROPERTY_TYPES = {"string": ("text", "textarea", "select", "radio", "phonenumber", "file", "html"),
                  "number": ("number", "select", "radio", "calculation_equation"),
                  "date": ("date",), "datetime": ("date",), "bool": ("booleancheckbox", "select", "radio"),
                  "enumeration": ("select", "radio", "checkbox", "booleancheckbox"),
                  "phone_number": ("phonenumber", "text")}


def create_contact_property(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """``POST /crm/v3/properties/contacts``: ``name``, ``label``, ``type``, ``fieldType``, ``groupName`` required;
    201 with the property, 409 ``OBJECT_ALREADY_EXISTS`` when the name is taken."""
    body = json_body(request)
    missing = [key for key in ("name", "label", "type", "fieldType", "groupName")
               if not isinstance(body.get(key), str) or not body[key].strip()]
    if missing:
        raise validation_error(f"Some required fields were not set: {missing}")
    if body["type"] not in PROPERTY_TYPES or body["fieldType"] not in PROPERTY_TYPES[body["type"]]:
        raise validation_error(f"Property type {body['type']!r} with fieldType {body['fieldType']!r} is not a valid "
                               "combination.")
    if any(prop["name"] == body["name"] for prop in state.hubspot_contact_properties()):
        return error_body(409, f"Property named '{body['name']}' already exists.", "OBJECT_ALREADY_EXISTS")
    now = time.time()
    with state.write() as cursor:
        cursor.execute("INSERT INTO hubspot_properties (name, label, type, field_type, group_name, created_at)"
                       " VALUES (?, ?, ?, ?, ?, ?)",
                       (body["name"], body["label"], body["type"], body["fieldType"], body["groupName"], now))
    created = next(prop for prop in state.hubspot_contact_properties() if prop["name"] == body["name"])
    return SandboxResponse.json(201, property_json(created))


def contacts_by_email(cursor: sqlite3.Cursor, emails: Sequence[str]) -> dict[str, tuple[int, str, float]]:
    """Id, properties JSON and created_at of the contacts among ``emails``."""
    if not emails:
        return {}
    placeholders = ",".join("?" * len(emails))
    rows = cursor.execute(
        f"SELECT email, id, properties, created_at FROM hubspot_contacts WHERE email IN ({placeholders})", list(emails)
    )
    return {row[0]: row[1:] for row in rows}


def find_contact(cursor: sqlite3.Cursor, contact_id: str, *, by_email: bool) -> tuple[Any, ...] | None:
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


def existing_contact_ids(cursor: sqlite3.Cursor, ids: Sequence[int]) -> set[int]:
    """The ids among ``ids`` that are contacts."""
    found: set[int] = set()
    chunk_size = 900
    for start in range(0, len(ids), chunk_size):
        chunk = ids[start : start + chunk_size]
        rows = cursor.execute(f"SELECT id FROM hubspot_contacts WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        found.update(row[0] for row in rows)
    return found

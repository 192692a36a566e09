"""Contacts: batch create and batch update, the neighbours of batch upsert the official SDK offers.

``POST /crm/v3/objects/contacts/batch/create`` takes at most 100 ``inputs`` of ``properties`` (the sandbox needs
``email``, its only unique property); an address HubSpot already holds refuses the whole call with a 409
``CONFLICT`` ("Contact already exists. Existing ID: {id}"), and the answer is a 201.
``POST .../batch/update`` takes ``inputs`` of ``id`` (a record id, or an address with ``idProperty: "email"``) and
``properties``; ids HubSpot does not hold come back as an ``OBJECT_NOT_FOUND`` error in a 207.
A value of the wrong type for its property refuses either call (:mod:`.properties`).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from segprovider_sandbox.hubspot.contacts import (
    MAX_BATCH_INPUTS,
    contact_json,
    contacts_by_email,
    find_contact,
    property_value,
)
from segprovider_sandbox.hubspot.properties import hubspot_check_inputs
from segprovider_sandbox.hubspot.responses import batch_answer, error_body, json_body, validation_error
from segprovider_sandbox.wire import VendorError, is_valid_email

if TYPE_CHECKING:
    from segprovider_sandbox.store import SandboxState
    from segprovider_sandbox.wire import SandboxRequest, SandboxResponse


def _inputs(request: SandboxRequest) -> list[dict[str, Any]]:
    inputs = json_body(request).get("inputs")
    if not isinstance(inputs, list) or not inputs or not all(isinstance(item, dict) for item in inputs):
        raise validation_error("inputs must be a non-empty array of objects.")
    if len(inputs) > MAX_BATCH_INPUTS:
        raise validation_error(f"Batch input limit exceeded: at most {MAX_BATCH_INPUTS} inputs are allowed.")
    for item in inputs:
        if not isinstance(item.get("properties"), dict):
            raise validation_error("Each input needs a properties object.")
    return inputs


def batch_create(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    started = time.time()
    inputs = _inputs(request)
    hubspot_check_inputs(state, inputs)
    rows: dict[str, dict[str, str]] = {}
    for item in inputs:
        email = str(item["properties"].get("email") or "").strip().lower()
        if not is_valid_email(email):
            raise validation_error(f'Property values were not valid: [{{"isValid":false,"message":"Email address '
                                   f'{email} is invalid","error":"INVALID_EMAIL","name":"email"}}]')
        if email in rows:
            raise validation_error(f"Duplicate IDs found in batch input: [{email}]. IDs must be unique")
        rows[email] = {name: property_value(value) for name, value in item["properties"].items()} | {"email": email}
    now = time.time()
    results: list[dict[str, Any]] = []
    with state.write() as cursor:
        existing = contacts_by_email(cursor, list(rows))
        if existing:
            contact_id = next(iter(existing.values()))[0]
            raise VendorError(error_body(409, f"Contact already exists. Existing ID: {contact_id}", "CONFLICT"))
        for properties in rows.values():
            cursor.execute(
                "INSERT INTO hubspot_contacts (email, properties, created_at, updated_at) VALUES (?, ?, ?, ?)",
                (properties["email"], json.dumps(properties), now, now),
            )
            results.append(contact_json((cursor.lastrowid, properties, now, now)))
    answer = batch_answer(started, results, [])
    return type(answer)(201, answer.body, answer.headers)


def batch_update(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    started = time.time()
    body = json_body(request)
    inputs = _inputs(request)
    hubspot_check_inputs(state, inputs)
    now = time.time()
    results: list[dict[str, Any]] = []
    missing: list[str] = []
    with state.write() as cursor:
        for item in inputs:
            raw_id = str(item.get("id") or "").strip()
            by_email = (item.get("idProperty") or body.get("idProperty")) == "email"
            row = find_contact(cursor, raw_id, by_email=by_email)
            if row is None:
                missing.append(raw_id)
                continue
            contact_id, stored, created_at, _ = row
            changes = {name: property_value(value) for name, value in item["properties"].items() if name != "email"}
            merged = {**json.loads(stored), **changes}
            cursor.execute("UPDATE hubspot_contacts SET properties = ?, updated_at = ? WHERE id = ?",
                           (json.dumps(merged), now, contact_id))
            results.append(contact_json((contact_id, merged, created_at, now)))
    errors = [{"status": "error", "category": "OBJECT_NOT_FOUND", "message": "Could not get some CONTACT objects, "
               "they may be deleted or not exist. Check that ids are valid.", "context": {"ids": missing},
               "errors": [], "links": {}}] if missing else []
    return batch_answer(started, results, errors)

"""HubSpot's subscription preferences (communication preferences API v3): who may receive marketing e-mail.

Contract (https://developers.hubspot.com/docs/api-reference/legacy/communication-preferences/v3/guide, the version
the official ``hubspot-api-client`` SDK's ``communication_preferences`` client speaks):

* ``GET /communication-preferences/v3/definitions``: ``{"subscriptionDefinitions": [...]}``, the account's
  subscription types (``id``, ``name``, ``description``, ``purpose``, ``communicationMethod``, ``isActive``,
  ``isDefault``, ``isInternal``, ``createdAt``, ``updatedAt``). The sandbox's account has HubSpot's two defaults,
  "Marketing Information" and "One to One".
* ``GET /communication-preferences/v3/status/email/{emailAddress}``: ``{"recipient", "subscriptionStatuses": [...]}``,
  one status per subscription type (``SUBSCRIBED`` or ``NOT_SUBSCRIBED``, ``sourceOfStatus``
  ``SUBSCRIPTION_STATUS``); a type the address never answered reads ``NOT_SUBSCRIBED``.
* ``POST /communication-preferences/v3/unsubscribe`` with ``emailAddress`` and ``subscriptionId`` (``legalBasis``
  and its explanation optional): the address opts out of that type; the answer is its new status. Unsubscribing an
  address already opted out of the type is a 400.
* ``POST /communication-preferences/v3/subscribe``: the same body; it "will not allow you to resubscribe contacts
  who have opted out" (a 400): only the person can opt in again (:meth:`SandboxState.set_hubspot_subscription`
  stands for a form or a preference centre).

An unknown subscription id is a 400 ``VALIDATION_ERROR`` naming it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from segprovider_sandbox.hubspot.responses import error_body, json_body, timestamp, validation_error
from segprovider_sandbox.wire import SandboxResponse

if TYPE_CHECKING:
    import sqlite3

    from segprovider_sandbox.store import SandboxState
    from segprovider_sandbox.wire import SandboxRequest

LEGAL_BASES = ("LEGITIMATE_INTEREST_PQL", "LEGITIMATE_INTEREST_CLIENT", "PERFORMANCE_OF_CONTRACT",
               "CONSENT_WITH_NOTICE", "NON_GDPR", "PROCESS_AND_STORE", "LEGITIMATE_INTEREST_OTHER")


def _types(cursor: sqlite3.Cursor) -> list[tuple[Any, ...]]:
    return cursor.execute("SELECT id, name, description, purpose, is_default, created_at FROM "
                          "hubspot_subscription_types ORDER BY CAST(id AS INTEGER)").fetchall()


def definitions(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """Every subscription type of the account."""
    with state.read() as cursor:
        rows = _types(cursor)
    return SandboxResponse.json(200, {"subscriptionDefinitions": [{
        "id": type_id, "name": name, "description": description, "purpose": purpose,
        "communicationMethod": "Email", "isActive": True, "isDefault": bool(is_default), "isInternal": False,
        "createdAt": timestamp(created), "updatedAt": timestamp(created)} for type_id, name, description, purpose,
        is_default, created in rows]})


def _status(cursor: sqlite3.Cursor, email: str, type_row: tuple[Any, ...]) -> dict[str, Any]:
    type_id, name, description = type_row[:3]
    row = cursor.execute("SELECT status, legal_basis, legal_basis_explanation FROM hubspot_subscription_statuses "
                         "WHERE email = ? AND subscription_id = ?", (email, type_id)).fetchone()
    status, basis, explanation = row if row else ("NOT_SUBSCRIBED", None, None)
    answer: dict[str, Any] = {"id": type_id, "name": name, "description": description, "status": status,
                              "sourceOfStatus": "SUBSCRIPTION_STATUS"}
    if basis:
        answer["legalBasis"] = basis
        answer["legalBasisExplanation"] = explanation or ""
    return answer


def email_status(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """The address's status for every subscription type."""
    email = unquote(params["email"]).strip().lower()
    with state.read() as cursor:
        statuses = [_status(cursor, email, row) for row in _types(cursor)]
    return SandboxResponse.json(200, {"recipient": email, "subscriptionStatuses": statuses})


def _change(state: SandboxState, request: SandboxRequest, status: str) -> SandboxResponse:
    body = json_body(request)
    email, type_id = body.get("emailAddress"), body.get("subscriptionId")
    if not isinstance(email, str) or "@" not in email:
        raise validation_error("emailAddress is required and must be an email address")
    if not isinstance(type_id, str) or not type_id:
        raise validation_error("subscriptionId is required and must be a string")
    basis = body.get("legalBasis")
    if basis is not None and basis not in LEGAL_BASES:
        raise validation_error(f"legalBasis must be one of {', '.join(LEGAL_BASES)}, got {basis!r}")
    email = email.strip().lower()
    with state.write() as cursor:
        type_row = next((row for row in _types(cursor) if row[0] == type_id), None)
        if type_row is None:
            return error_body(400, f"No subscription definition with id {type_id}", "VALIDATION_ERROR")
        current = cursor.execute("SELECT status FROM hubspot_subscription_statuses WHERE email = ? AND "
                                 "subscription_id = ?", (email, type_id)).fetchone()
        if status == "NOT_SUBSCRIBED" and current and current[0] == "NOT_SUBSCRIBED":
            return error_body(400, f"{email} is already unsubscribed from subscription {type_id}", "VALIDATION_ERROR")
        if status == "SUBSCRIBED" and current and current[0] == "NOT_SUBSCRIBED":
            return error_body(400, f"{email} has opted out of subscription {type_id} and cannot be resubscribed "
                                   "through the API", "VALIDATION_ERROR")
        cursor.execute("INSERT OR REPLACE INTO hubspot_subscription_statuses VALUES (?, ?, ?, ?, ?, ?)",
                       (email, type_id, status, basis, body.get("legalBasisExplanation"), time.time()))
        answer = _status(cursor, email, type_row)
    return SandboxResponse.json(200, answer)


def unsubscribe(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """Opt the address out of one subscription type."""
    return _change(state, request, "NOT_SUBSCRIBED")


def subscribe(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """Opt the address in to one subscription type, unless it opted out of it."""
    return _change(state, request, "SUBSCRIBED")

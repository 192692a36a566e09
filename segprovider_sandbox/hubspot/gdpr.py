"""GDPR delete: ``POST /crm/v3/objects/contacts/gdpr-delete`` erases a contact for good.

Contract (https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/gdpr/gdpr-delete-contact
and the changelog https://developers.hubspot.com/changelog/changes-to-the-gdpr-deletion-endpoints-for-the-crm-contact-object-api):
the body names the contact by id (``{"objectId": "123"}``) or by e-mail (``{"objectId": "a@b.c",
"idProperty": "email"}``); the contact and its associations (here: its list memberships) are deleted
and the answer is ``204`` with no body. An e-mail address HubSpot does not know is added to a
blocklist instead (also ``204``). An unknown numeric id is a ``404``.

The blocklist (https://knowledge.hubspot.com/privacy-and-consent/how-do-i-perform-a-gdpr-delete-in-hubspot,
"Perform a permanent delete in HubSpot", updated June 2025): a permanent delete blocklists the contact's
address too, and a blocklisted address cannot be added back "through HubSpot's UI or an import"; it *may* be
added back when the person submits a form, writes to a connected inbox, or "the contact is added through an
API request". HubSpot documents no API error for a blocklisted address, so the sandbox keeps every address a
GDPR delete named in ``hubspot_gdpr_blocklist``, refuses it in the hand edits that stand for HubSpot's UI
(:mod:`segprovider_sandbox.admin.edits`), and lets the API re-create it as HubSpot does: keeping a forgotten
person out of HubSpot is the caller's job (our erasure's suppression and tombstone), not the vendor's.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from segprovider_sandbox.hubspot.contacts import find_contact
from segprovider_sandbox.hubspot.responses import error_body, json_body, validation_error
from segprovider_sandbox.wire import SandboxResponse

if TYPE_CHECKING:
    from segprovider_sandbox.store import SandboxState
    from segprovider_sandbox.wire import SandboxRequest


def gdpr_delete(state: SandboxState, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
    """Erase one contact (and its list memberships) by id or e-mail; blocklist an unknown address."""
    body = json_body(request)
    object_id, id_property = body.get("objectId"), body.get("idProperty")
    if not isinstance(object_id, str) or not object_id.strip():
        raise validation_error("objectId is required and must be a string")
    if id_property not in (None, "email"):
        raise validation_error(f"idProperty must be 'email' or absent, got {id_property!r}")
    by_email = id_property == "email"
    blocklist = "INSERT OR IGNORE INTO hubspot_gdpr_blocklist (email, added_at) VALUES (?, ?)"
    with state.write() as cursor:
        row = find_contact(cursor, object_id.strip(), by_email=by_email)
        if row is None:
            if not by_email:
                return error_body(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND",
                                  context={"id": [object_id]})
            cursor.execute(blocklist, (object_id.strip().lower(), time.time()))
            return SandboxResponse(204)
        contact_id = row[0]
        (email,) = cursor.execute("SELECT email FROM hubspot_contacts WHERE id = ?", (contact_id,)).fetchone()
        cursor.execute("DELETE FROM hubspot_list_members WHERE contact_id = ?", (contact_id,))
        cursor.execute("DELETE FROM hubspot_contacts WHERE id = ?", (contact_id,))
        if email:  # deleted by id or by address: the contact's address is blocklisted all the same
            cursor.execute(blocklist, (str(email).lower(), time.time()))
    return SandboxResponse(204)

"""Mailchimp Marketing API v3 connector: an audience (list) plus a static segment or a tag.

Contract followed (Mailchimp Marketing API reference and guides):

* Auth is HTTP basic with any user name and the API key as password; the
  data center is the key's suffix (``…-us6`` → ``https://us6.api.mailchimp.com/3.0``).
* Contacts joining the segment are created/updated with *batch subscribe or unsubscribe*,
  ``POST /lists/{list_id}`` with at most 500 ``members`` per call and
  ``update_existing: true``. The call answers 200 even when some members
  failed; those come back in ``errors`` (``email_address``, ``error``,
  ``error_code``) and become rejected records. Mailchimp refuses to subscribe
  again a contact who unsubscribed, bounced or is under compliance review
  ("in a compliance state"): such a contact is rejected for good
  (:mod:`.refusals`, code ``compliance_state``, ``retryable`` false), never resubscribed.
* An attribute update (``upsert``, the hybrid model's push) never changes a status: batch
  subscribe *without* ``update_existing`` creates new contacts with ``member_status``; the
  contacts it reports as ``ERROR_CONTACT_EXISTS`` are updated with
  ``PUT /lists/{list_id}/members/{hash}`` carrying merge fields and ``status_if_new`` only.
* Membership uses a static segment: ``POST /lists/{list_id}/segments/{segment_id}``
  with ``members_to_add`` / ``members_to_remove`` (at most 500 each; addresses
  not on the list are ignored; failures come back in ``errors[].email_addresses``).
  Removing from a segment never unsubscribes anyone from the audience.
  Tags are static segments in the API, so ``membership: tags`` finds the tag
  with ``GET /lists/{list_id}/tag-search`` and, on first add, creates it with
  ``POST /lists/{list_id}/segments`` and an empty ``static_segment``.
* Members are read back with ``count``/``offset`` paging (``count`` at most
  1000) from ``GET /lists/{list_id}/segments/{segment_id}/members``. Reads and
  ``member_count`` pass ``include_unsubscribed``/``include_cleaned``/``include_transactional``:
  without them Mailchimp counts subscribed and pending members only.
* A member's id is the MD5 hash of its lowercased email address.
* Mailchimp allows 10 simultaneous connections per account; that is the cap here.
"""

from __future__ import annotations

from airflow_segprovider.destinations.mailchimp.client import MailchimpClient
from airflow_segprovider.destinations.mailchimp.config import (
    CONNECTION_FIELDS,
    KIND,
    MAX_CONNECTIONS,
    MAX_MEMBERS_PER_CALL,
    MAX_PAGE_SIZE,
    MEMBER_STATUSES,
    MEMBERSHIP_MODES,
    MailchimpConfig,
)
from airflow_segprovider.destinations.mailchimp.policy import MailchimpResponsePolicy
from airflow_segprovider.destinations.mailchimp.refusals import COMPLIANCE_STATE, FORGOTTEN_CONTACT, FinalRejection
from airflow_segprovider.destinations.mailchimp.values import subscriber_hash

__all__ = [
    "COMPLIANCE_STATE",
    "CONNECTION_FIELDS",
    "FORGOTTEN_CONTACT",
    "KIND",
    "MAX_CONNECTIONS",
    "MAX_MEMBERS_PER_CALL",
    "MAX_PAGE_SIZE",
    "MEMBERSHIP_MODES",
    "MEMBER_STATUSES",
    "FinalRejection",
    "MailchimpClient",
    "MailchimpConfig",
    "MailchimpResponsePolicy",
    "subscriber_hash",
]

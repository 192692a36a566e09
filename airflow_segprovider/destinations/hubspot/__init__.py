"""HubSpot connector: contacts upserted by email, membership in a static (MANUAL/SNAPSHOT) list.

Contract followed (HubSpot CRM v3 and Lists v3 reference):

* Auth: ``Authorization: Bearer <private app access token>``.
* ``POST /crm/v3/objects/contacts/batch/upsert`` with ``inputs`` of
  ``{"idProperty": "email", "id": <email>, "properties": {...}}``, at most 100
  per call. A 207 Multi-Status answer carries ``results`` (``id`` and
  ``properties``) for the contacts written and ``errors`` (``category``,
  ``message``, ``context``) for the others; those become rejected records.
* ``PUT /crm/v3/lists/{listId}/memberships/add-and-remove`` with
  ``recordIdsToAdd`` / ``recordIdsToRemove`` takes HubSpot record ids, so adds
  use the ids the upsert returned and removes use the ids the caller kept from
  earlier runs, falling back to ``POST /crm/v3/objects/contacts/batch/read``
  with ``idProperty=email``. Ids that do not exist come back in ``recordIdsMissing``.
  It only works on lists whose ``processingType`` is ``MANUAL`` or ``SNAPSHOT``.
* Members are read with ``GET /crm/v3/lists/{listId}/memberships`` and the
  ``after`` cursor of ``paging.next`` (``limit`` at most 250), then their emails
  with ``batch/read``.
* Rate limits: about 190 requests per 10 s for private apps (burst limit per
  app), a daily limit, 429 with ``policyName`` naming which one was hit, and
  ``X-HubSpot-RateLimit-Remaining`` / ``-Interval-Milliseconds`` headers that
  let us slow down before the wall.
"""

from __future__ import annotations

from airflow_segprovider.destinations.hubspot.client import HubSpotClient
from airflow_segprovider.destinations.hubspot.config import (
    CONNECTION_FIELDS,
    CONTACT_OBJECT_TYPE,
    KIND,
    MAX_INPUTS_PER_CALL,
    MAX_MEMBERSHIP_PAGE,
    WRITABLE_PROCESSING_TYPES,
    HubSpotConfig,
)
from airflow_segprovider.destinations.hubspot.policy import HubSpotResponsePolicy

__all__ = [
    "CONNECTION_FIELDS",
    "CONTACT_OBJECT_TYPE",
    "KIND",
    "MAX_INPUTS_PER_CALL",
    "MAX_MEMBERSHIP_PAGE",
    "WRITABLE_PROCESSING_TYPES",
    "HubSpotClient",
    "HubSpotConfig",
    "HubSpotResponsePolicy",
]

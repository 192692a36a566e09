"""HubSpot CRM v3 contacts and Lists v3 memberships, as HubSpot documents them.

Contract (https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/upsert-contacts,
https://developers.hubspot.com/docs/api-reference/error-handling,
https://developers.hubspot.com/docs/guides/api/crm/lists/overview and the legacy ``/crm/v3/lists``
reference pages):

* ``Authorization: Bearer <token>`` (private-app or OAuth token); otherwise a 401
  ``{"status": "error", "message", "correlationId", "category": "INVALID_AUTHENTICATION"}``.
* ``POST /crm/v3/objects/contacts/gdpr-delete`` erases one contact by id or e-mail (204) and
  blocklists its address, or an unknown one; the blocklist holds in the hand edits (HubSpot's UI), not
  against the API, which HubSpot lets re-create the contact (:mod:`.gdpr`).
* ``POST /crm/v3/objects/contacts/batch/upsert`` takes at most 100 ``inputs``
  (``idProperty``, ``id``, ``properties``) and answers ``{"status": "COMPLETE",
  "results": [...], "startedAt", "completedAt"}``; each result has the contact
  ``id``, ``properties`` and ``new``. When some inputs fail the answer is
  **207 Multi-Status** with ``errors`` and ``numErrors`` beside the results.
* ``POST .../batch/create`` (201; an existing address is a 409 ``CONFLICT``) and ``.../batch/update``
  (unknown ids in a 207): :mod:`.batch_writes`.
* ``GET``/``POST /crm/v3/properties/contacts/{name}`` read one property (404 when unknown) and create one
  (201; 409 ``OBJECT_ALREADY_EXISTS``).
* ``POST .../batch/read`` by ``idProperty: "email"`` (or by id); ids not found come back
  as an ``OBJECT_NOT_FOUND`` error in a 207.
* ``GET /crm/v3/properties/contacts`` answers ``{"results": [{"name", "label", "type",
  "fieldType", "groupName", ...}]}``, every contact property at once: HubSpot's defaults
  (the sandbox keeps email, firstname, lastname, phone, country, lifecyclestage) and the
  account's custom properties, which the sandbox's store seeds.
* Lists: ``POST /crm/v3/lists`` creates ``{"list": {...}}``; ``GET /crm/v3/lists/{listId}``
  answers ``{"list": {..., "size"}}`` or 404;
  ``PUT .../memberships/add`` and ``.../memberships/remove`` take a JSON array of record ids;
  ``PUT .../memberships/add-and-remove`` takes ``recordIdsToAdd`` / ``recordIdsToRemove``
  and answers ``recordsIdsAdded``, ``recordIdsRemoved`` and ``recordIdsMissing``
  (those spellings are HubSpot's own, typo included);
  ``GET .../memberships?after=&limit=`` pages by record id ascending (``limit``
  default 100, at most 250) with ``paging.next.after`` and ``total``.
* Every response carries ``X-HubSpot-RateLimit-Max``, ``-Remaining`` and
  ``-Interval-Milliseconds`` (plus ``-Secondly`` and ``-Secondly-Remaining``), and
  ``X-HubSpot-RateLimit-Daily`` and ``-Daily-Remaining``
  (https://developers.hubspot.com/docs/api/usage-details); past the window (190 requests / 10 s
  by default, Professional's; the tiers: 100 Free/Starter, 190 Professional/Enterprise, 250 with
  the API limit increase, https://developers.hubspot.com/changelog/increasing-our-api-limits) a 429
  ``{"status": "error", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING", ...}``
  and past the day's requests (650,000 by default, Professional's) the same with ``policyName``
  ``DAILY`` until the next day. Like HubSpot, no 429 carries ``Retry-After``.

Sandbox choices: only contact lists (``objectTypeId`` ``0-1``) with ``MANUAL`` or
``SNAPSHOT`` processing; the day of the daily limit is the UTC day; any input error turns the
upsert into a 207, even when every input failed. DYNAMIC (filter-based) lists are served by
:mod:`.dynamic_lists`, which hands static lists to :mod:`.lists`.

Its modules: :mod:`.api` (the vendor: authentication, routes, rate-limit headers),
:mod:`.responses` (error bodies and batch answers), :mod:`.contacts`, :mod:`.properties` (the
typed values contact properties take), :mod:`.lists` (MANUAL and SNAPSHOT lists) and
:mod:`.dynamic_lists`.
"""

from __future__ import annotations

from segprovider_sandbox.hubspot.api import PREFIX, HubSpotApi
from segprovider_sandbox.hubspot.responses import error_body

__all__ = ["PREFIX", "HubSpotApi", "error_body"]

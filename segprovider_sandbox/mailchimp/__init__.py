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
* ``PATCH .../members/{hash}`` updates an existing member (404 otherwise); ``DELETE`` archives it (204,
  status ``archived``, re-addable); ``POST .../members/{hash}/actions/delete-permanent`` erases it (204)
  and the API may never add it again (400 ``Forgotten Email Not Subscribed``).
* Compliance states (:mod:`.compliance`): a cleaned or self-unsubscribed contact is not subscribed again
  (400 ``Member In Compliance State``; ``ERROR_GENERIC`` in a batch); segment and tag reads count and list
  subscribed and pending members unless ``include_unsubscribed``/``include_cleaned``/``include_transactional``.
* ``POST /lists/{list_id}/merge-fields`` creates a merge field (``name``, ``type``, optional ``tag``);
  ``GET .../merge-fields/{merge_id}`` reads one.
* At most 10 simultaneous connections per API key; the 11th gets a 429.

Sandbox choices where the docs are silent: 429s carry ``Retry-After``; an invalid
address is one without a single ``@`` and a dotted domain (Mailchimp's own "looks
fake" heuristics are not imitated). Saved segments (``options.conditions``) are served by
:mod:`.saved_segments`, which hands static segments back to :mod:`.segments`.

Its modules: :mod:`.api` (the vendor: authentication, routes, errors), :mod:`.responses` (error
documents, paging, ``fields`` trimming), :mod:`.rows` (reading members and segments), :mod:`.members`
(audiences and members), :mod:`.compliance` (compliance states, ``include_*``), :mod:`.segments` (static segments and tags), :mod:`.merge_fields` (merge
fields and their typed values) and :mod:`.saved_segments` (rule-based segments).
"""

from __future__ import annotations

from segprovider_sandbox.mailchimp.api import PREFIX, MailchimpApi
from segprovider_sandbox.mailchimp.responses import problem

__all__ = ["PREFIX", "MailchimpApi", "problem"]

"""The sandbox's state in one SQLite file: vendor data, webhook batches and the request log.

:class:`SandboxState` is both the server's store and the API tests use to seed
fixtures and to read what the vendors hold and what they were sent. Several
:class:`SandboxState` objects (the server's, a test's) may share one file: it is in
WAL mode, so readers never wait for the writer.

Its modules: :mod:`.connection` (the SQLite connection and its transactions), :mod:`.schema`
(the tables), :mod:`.request_log`, one module per vendor's data (:mod:`.mailchimp`,
:mod:`.hubspot`, :mod:`.meta`, :mod:`.webhook`), :mod:`.fixtures` (the demo's ids) and
:mod:`.state`, which puts them together.
"""

from __future__ import annotations

from segprovider_sandbox.store.fixtures import EXAMPLE_META_AUDIENCE_ID, EXAMPLE_META_AUDIENCE_NAME, DemoFixtures
from segprovider_sandbox.store.hubspot import DEFAULT_HUBSPOT_CONTACT_PROPERTIES
from segprovider_sandbox.store.mailchimp import DEFAULT_MAILCHIMP_MERGE_FIELDS, subscriber_hash
from segprovider_sandbox.store.request_log import LoggedRequest
from segprovider_sandbox.store.state import SandboxState

__all__ = [
    "DEFAULT_HUBSPOT_CONTACT_PROPERTIES",
    "DEFAULT_MAILCHIMP_MERGE_FIELDS",
    "EXAMPLE_META_AUDIENCE_ID",
    "EXAMPLE_META_AUDIENCE_NAME",
    "DemoFixtures",
    "LoggedRequest",
    "SandboxState",
    "subscriber_hash",
]

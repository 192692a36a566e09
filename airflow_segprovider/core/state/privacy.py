"""The privacy tables: who must never be sent (suppressions), who was forgotten (tombstones), and each erasure.

``segprovider_suppressions`` (:data:`SUPPRESSIONS`)
    the project-level suppression list: one row per suppressed ``customer_key`` *or* ``identity``
    (an e-mail address, stored as destinations match it: trimmed and lower-cased, see
    :func:`normalize_identity`), with its ``reason``, ``added_at`` (UTC) and ``added_by``. Every sync,
    attribute push and reconcile reads it through the sync's one "not allowed" predicate
    (:func:`airflow_segprovider.core.sync.consent.not_allowed_keys_sql`): a suppressed contact is never
    sent, and one a destination holds is removed as a consent removal, in every mode. An erasure that
    some destination has not confirmed yet keeps its person here (``reason`` ``erasure pending <request>``)
    until it completes, and a finished one keeps them here while a model table the project does not load still
    holds them (``reason`` ``forgotten; erase upstream in <tables>``).
``segprovider_tombstones`` (:data:`TOMBSTONES`)
    what is left of a forgotten person: ``key_hash`` (:func:`salted_hash` of the customer key),
    ``identity_hashes`` (the salted hashes of each identity they were sent under, comma-separated),
    ``erased_at`` and the ``request_id`` of the erasure. Nothing in it can be read back without the
    project's privacy salt; ingest drops every row whose key hashes to a tombstone.
``segprovider_erasures`` (:data:`ERASURES`)
    the erasure request log: one row per (request, target) with the ``key_hash`` (never the key), the
    ``target`` (``<destination> (<sync id>)``, or ``project_tables``), its ``status`` (``erased``, ``failed``,
    ``not_declared``), a ``detail`` (how many records, or the error) and ``finished_at``.

Written once in DuckDB's dialect and rendered for the warehouse.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import render

if TYPE_CHECKING:
    from airflow_segprovider.core.warehouses.base import Warehouse

SUPPRESSIONS = "segprovider_suppressions"
TOMBSTONES = "segprovider_tombstones"
ERASURES = "segprovider_erasures"
#: Every table this module names.
TABLES = (SUPPRESSIONS, TOMBSTONES, ERASURES)

#: Columns that hold a customer key in the project's own tables: an erasure deletes the rows whose
#: column of this name holds the forgotten key, in every table of :mod:`airflow_segprovider.core.state`
#: (found by column, so a table added later is covered without a change here). ``customer_key`` is the
#: state tables' name for it; ``k`` and ``k_text`` the compiled evaluation's (tables built from its plan,
#: such as the incremental evaluation's base, one row per customer with their attributes and aggregates).
KEY_COLUMNS = ("customer_key", "k", "k_text")
#: ``reason`` of the suppression an erasure keeps while a destination has not confirmed it
PENDING_REASON_PREFIX = "erasure pending"
#: ``reason`` of the suppression a finished erasure keeps while a model table the project does not load
#: (another tool does) still holds the person
UPSTREAM_REASON_PREFIX = "forgotten; erase upstream in"
#: the name of the privacy salt's environment variable, where the CLI and the operators read it
SALT_ENV = "SEGPROVIDER_PRIVACY_SALT"
#: the shortest salt accepted: a salt short enough to guess makes every tombstone reversible
MIN_SALT_LENGTH = 16

DDL = (
    f"""CREATE TABLE IF NOT EXISTS {SUPPRESSIONS} (
        customer_key VARCHAR, identity VARCHAR, reason VARCHAR NOT NULL, added_at TIMESTAMP NOT NULL,
        added_by VARCHAR NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {TOMBSTONES} (
        key_hash VARCHAR NOT NULL, identity_hashes VARCHAR, erased_at TIMESTAMP NOT NULL,
        request_id VARCHAR NOT NULL, PRIMARY KEY (key_hash))""",
    f"""CREATE TABLE IF NOT EXISTS {ERASURES} (
        request_id VARCHAR NOT NULL, key_hash VARCHAR NOT NULL, target VARCHAR NOT NULL, status VARCHAR NOT NULL,
        detail VARCHAR, finished_at TIMESTAMP NOT NULL)""",
)


def ensure_tables(warehouse: Warehouse) -> None:
    """Create the privacy tables in ``warehouse`` when missing."""
    for statement in DDL:
        warehouse.execute(render(statement, warehouse.dialect))


def normalize_identity(identity: str) -> str:
    """An identity as every destination matches it: trimmed and lower-cased (Mailchimp, HubSpot and Meta
    all match e-mail addresses case-insensitively; the sync plan compares identities the same way)."""
    return identity.strip().lower()


def salted_hash(salt: str, value: str) -> str:
    """The hex SHA-256 of ``salt:value``: how a tombstone holds a key or an identity."""
    return hashlib.sha256(f"{salt}:{value}".encode()).hexdigest()


def salted_hash_duckdb(salt: str, text_sql: str) -> str:
    """:func:`salted_hash` as DuckDB SQL over the text expression ``text_sql`` (ingest's typing engine)."""
    quoted = (salt + ":").replace("'", "''")
    return f"sha256('{quoted}' || {text_sql})"


def suppressed_keys_sql() -> str:
    """``customer_key`` of every key-level suppression (never NULL: read with ``NOT IN``)."""
    return f"SELECT customer_key FROM {SUPPRESSIONS} WHERE customer_key IS NOT NULL"


def suppressed_identities_sql() -> str:
    """``identity`` of every identity-level suppression, normalized (never NULL)."""
    return f"SELECT identity FROM {SUPPRESSIONS} WHERE identity IS NOT NULL"

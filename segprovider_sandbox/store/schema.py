"""The sandbox's tables: the request log, each vendor's data and the webhook batches.

Saved (rule-based) Mailchimp segments and HubSpot DYNAMIC lists live in their own tables
(:data:`RULE_BASED_SCHEMA`), so the static segments and lists the rest of the sandbox serves
are untouched.

The ids SQLite hands out for a vendor (:data:`NEVER_REUSED_IDS`: HubSpot contacts and lists, Mailchimp static
segments) are ``AUTOINCREMENT``: a vendor never gives a deleted record's id to a new one, while a plain
``INTEGER PRIMARY KEY`` takes the highest rowid again once its row is deleted (https://www.sqlite.org/autoinc.html),
so an id a caller stored would name someone else. A file made before (the state is kept across runs) is upgraded
when it is opened (:func:`upgrade_never_reused_ids`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    vendor TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    query TEXT NOT NULL,
    status INTEGER,
    fault TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_by_vendor ON requests (vendor, id);

CREATE TABLE IF NOT EXISTS mailchimp_lists (
    list_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS mailchimp_merge_fields (
    merge_id INTEGER NOT NULL,
    list_id TEXT NOT NULL,
    tag TEXT NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    PRIMARY KEY (list_id, merge_id),
    UNIQUE (list_id, tag)
);
CREATE TABLE IF NOT EXISTS mailchimp_members (
    list_id TEXT NOT NULL,
    subscriber_hash TEXT NOT NULL,
    email_address TEXT NOT NULL,
    status TEXT NOT NULL,
    merge_fields TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (list_id, subscriber_hash)
);
CREATE TABLE IF NOT EXISTS mailchimp_segments (
    segment_id INTEGER PRIMARY KEY AUTOINCREMENT,
    list_id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS mailchimp_segments_by_list ON mailchimp_segments (list_id, name);
CREATE TABLE IF NOT EXISTS mailchimp_segment_members (
    segment_id INTEGER NOT NULL,
    subscriber_hash TEXT NOT NULL,
    added_at REAL NOT NULL,
    PRIMARY KEY (segment_id, subscriber_hash)
);

CREATE TABLE IF NOT EXISTS hubspot_contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE,
    properties TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS hubspot_gdpr_blocklist (
    email TEXT PRIMARY KEY,
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS hubspot_properties (
    name TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    type TEXT NOT NULL,
    field_type TEXT NOT NULL,
    group_name TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS hubspot_lists (
    list_id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    object_type_id TEXT NOT NULL,
    processing_type TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS hubspot_list_members (
    list_id INTEGER NOT NULL,
    contact_id INTEGER NOT NULL,
    added_at REAL NOT NULL,
    PRIMARY KEY (list_id, contact_id)
) WITHOUT ROWID;
-- HubSpot's subscription types (communication preferences), with every account's two defaults, and each
-- address's answer per type (no row: never answered, NOT_SUBSCRIBED)
CREATE TABLE IF NOT EXISTS hubspot_subscription_types (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    purpose TEXT NOT NULL,
    is_default INTEGER NOT NULL,
    created_at REAL NOT NULL
);
INSERT OR IGNORE INTO hubspot_subscription_types VALUES
    ('1', 'Marketing Information', 'Marketing offers and updates.', 'Marketing', 1, 1577836800.0),
    ('2', 'One to One', 'One to one emails.', 'Sales', 0, 1577836800.0);
CREATE TABLE IF NOT EXISTS hubspot_subscription_statuses (
    email TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    status TEXT NOT NULL,
    legal_basis TEXT,
    legal_basis_explanation TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (email, subscription_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS meta_audiences (
    audience_id INTEGER PRIMARY KEY,
    ad_account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    subtype TEXT NOT NULL,
    customer_file_source TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta_audience_members (
    audience_id INTEGER NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (audience_id, hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta_audience_sessions (
    audience_id INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    started_at REAL NOT NULL,
    applied_at REAL NOT NULL,
    num_received INTEGER NOT NULL,
    num_invalid INTEGER NOT NULL,
    num_matched INTEGER NOT NULL,
    matched_change INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS webhook_batches (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    received_at REAL NOT NULL,
    body TEXT NOT NULL
);
"""

RULE_BASED_SCHEMA = """
CREATE TABLE IF NOT EXISTS mailchimp_saved_segments (
    segment_id INTEGER PRIMARY KEY,
    list_id TEXT NOT NULL,
    name TEXT NOT NULL,
    options TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS hubspot_dynamic_lists (
    list_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    filter_branch TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

-- Mailchimp contacts the API may not subscribe again: self-unsubscribed ('unsubscribed') or permanently deleted
-- ('deleted'); a cleaned contact is known by its status.
CREATE TABLE IF NOT EXISTS mailchimp_compliance (
    list_id TEXT NOT NULL,
    subscriber_hash TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (list_id, subscriber_hash)
) WITHOUT ROWID;
"""

# Tables whose INTEGER PRIMARY KEY is an id SQLite allocates for a vendor that never reuses one.
NEVER_REUSED_IDS = ("hubspot_contacts", "hubspot_lists", "mailchimp_segments")


def _create_statement(table: str) -> str:
    """The ``CREATE TABLE`` of :data:`SCHEMA` for ``table``."""
    match = re.search(rf"^CREATE TABLE IF NOT EXISTS {table} \(.*?^\);", SCHEMA, re.MULTILINE | re.DOTALL)
    if match is None:
        raise LookupError(f"no table {table} in the schema")
    return match.group(0)


def _lacks_autoincrement(connection: sqlite3.Connection, table: str) -> bool:
    row = connection.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    return row is not None and "AUTOINCREMENT" not in row[0].upper()


def upgrade_never_reused_ids(connection: sqlite3.Connection) -> list[str]:
    """Rebuild the tables of :data:`NEVER_REUSED_IDS` that a file made before holds without ``AUTOINCREMENT``; run
    before :data:`SCHEMA`, which then creates the tables a file lacks and the indexes a rebuild dropped.

    Each table is copied, rows and ids as they are, into its ``AUTOINCREMENT`` form, whose counter starts at the
    highest id kept: from then on no id is handed out twice. An id an older sandbox already handed out again, or the
    id of a highest row deleted before the upgrade, cannot be told from the file. One transaction per table, the
    check made again under the write lock: a second process opening the same file meanwhile waits, then finds the
    table upgraded. A file already upgraded (or new) costs a read of its schema, no write lock.

    :param connection: a connection in autocommit mode (``isolation_level=None``), outside a transaction.
    :returns: the tables rebuilt.
    """
    rebuilt = []
    for table in NEVER_REUSED_IDS:
        if not _lacks_autoincrement(connection, table):
            continue
        connection.execute("BEGIN IMMEDIATE")
        try:
            if _lacks_autoincrement(connection, table):
                staging = f"{table}__autoincrement"
                connection.execute(_create_statement(table).replace(
                    f"CREATE TABLE IF NOT EXISTS {table} (", f"CREATE TABLE {staging} (", 1))
                kept = {column[1] for column in connection.execute(f"PRAGMA table_info({table})")}
                columns = ", ".join(column[1] for column in connection.execute(f"PRAGMA table_info({staging})")
                                    if column[1] in kept)
                connection.execute(f"INSERT INTO {staging} ({columns}) SELECT {columns} FROM {table}")
                connection.execute(f"DROP TABLE {table}")
                connection.execute(f"ALTER TABLE {staging} RENAME TO {table}")  # sqlite_sequence's row follows
                rebuilt.append(table)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    return rebuilt

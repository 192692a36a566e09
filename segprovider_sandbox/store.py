"""The sandbox's state in one SQLite file: vendor data, webhook batches and the request log.

:class:`SandboxState` is both the server's store and the API tests use to seed
fixtures and to read what the vendors hold and what they were sent. Several
:class:`SandboxState` objects (the server's, a test's) may share one file: it is in
WAL mode, so readers never wait for the writer.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

_SCHEMA = """
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
    segment_id INTEGER PRIMARY KEY,
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
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    properties TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
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
    list_id INTEGER PRIMARY KEY,
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

CREATE TABLE IF NOT EXISTS webhook_batches (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    received_at REAL NOT NULL,
    body TEXT NOT NULL
);
"""


# Every Mailchimp audience starts with these merge fields: (merge_id, tag, name, type).
DEFAULT_MAILCHIMP_MERGE_FIELDS = (
    (1, "FNAME", "First Name", "text"),
    (2, "LNAME", "Last Name", "text"),
    (3, "ADDRESS", "Address", "address"),
    (4, "PHONE", "Phone Number", "phone"),
    (5, "BIRTHDAY", "Birthday", "birthday"),
)
# A subset of HubSpot's default contact properties: (name, label, type, fieldType, groupName).
DEFAULT_HUBSPOT_CONTACT_PROPERTIES = (
    ("email", "Email", "string", "text", "contactinformation"),
    ("firstname", "First Name", "string", "text", "contactinformation"),
    ("lastname", "Last Name", "string", "text", "contactinformation"),
    ("phone", "Phone Number", "string", "phonenumber", "contactinformation"),
    ("country", "Country/Region", "string", "text", "contactinformation"),
    ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", "contactinformation"),
)


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 hex digest of the lower-cased email address.

    :param email: the address.
    """
    return hashlib.md5(email.lower().encode("utf-8"), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class LoggedRequest:
    """One entry of the request log.

    :param id: position in the log (increasing).
    :param at: Unix time the request was answered.
    :param vendor: ``mailchimp``, ``hubspot``, ``meta``, ``webhook``, ``sandbox`` or ``unknown``.
    :param method: the HTTP method.
    :param path: the path.
    :param query: the raw query string.
    :param status: the status answered; None when the connection was dropped.
    :param fault: the injected fault (``rate_limited``, ``concurrency_limited``, ``error``, ``slow``, ``drop``),
        or None.
    :param body: the request body as text.
    """

    id: int
    at: float
    vendor: str
    method: str
    path: str
    query: str
    status: int | None
    fault: str | None
    body: str


@dataclass(frozen=True)
class DemoFixtures:
    """Ids of the fixtures :meth:`SandboxState.seed_demo_fixtures` creates.

    They match ``airflow_segprovider/example/segments_project/destinations.yml``, including the custom merge fields
    (tag, name, type) and contact properties (name, label, type) its ``field_mapping`` names.
    """

    mailchimp_list_id: str = "a1b2c3d4e5"
    mailchimp_segment_id: int = 1001
    mailchimp_segment_name: str = "vip"
    hubspot_list_id: str = "101"
    hubspot_list_name: str = "vip"
    # the lists of ``sales_priority``, the segment the distributed model reconciles (hand-edited in both tools)
    reconciled_mailchimp_segment_id: int = 1002
    reconciled_mailchimp_segment_name: str = "sales_priority"
    reconciled_hubspot_list_id: str = "102"
    reconciled_hubspot_list_name: str = "sales_priority"
    meta_ad_account_id: str = "1234567890"
    meta_audience_id: str = "23850000000000001"
    meta_audience_name: str = "win_back"
    mailchimp_merge_fields: tuple[tuple[str, str, str], ...] = (
        ("COUNTRY", "Country", "text"), ("LTV", "Lifetime value", "number"), ("LASTBUY", "Last purchase", "date"))
    hubspot_contact_properties: tuple[tuple[str, str, str], ...] = (
        ("lifetime_value", "Lifetime value", "number"), ("last_purchase_date", "Last purchase date", "date"))


class SandboxState:
    """The sandbox's SQLite store.

    :param db_path: the database file; created (with its schema) when missing.
    """

    def __init__(self, db_path: str | Path) -> None:
        self.db_path = Path(db_path)
        self._lock = threading.RLock()
        # One connection, serialized by a lock: SQLite has a single writer anyway, and a
        # request's work is one short transaction.
        self._connection = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        self._connection.execute("PRAGMA page_size=2048")
        self._connection.execute("PRAGMA journal_mode=WAL")
        # Durable across process restarts (the WAL is in the OS cache), not across an OS crash: enough for a
        # sandbox, and it spares the fsyncs that would halve its throughput on a slow disk.
        self._connection.execute("PRAGMA synchronous=OFF")
        self._connection.execute("PRAGMA wal_autocheckpoint=4000")
        self._connection.execute("PRAGMA cache_size=-65536")
        self._connection.execute("PRAGMA busy_timeout=10000")
        self._connection.executescript(_SCHEMA)
        from segprovider_sandbox.dynamic import SCHEMA as DYNAMIC_SCHEMA  # rule-based segments

        self._connection.executescript(DYNAMIC_SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._connection.close()

    # --- transactions ---------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[sqlite3.Cursor]:
        """A write transaction: committed when the block ends, rolled back when it raises."""
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Cursor]:
        """A read transaction: one consistent snapshot for every query in the block."""
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN")
            try:
                yield cursor
            finally:
                cursor.execute("COMMIT")

    # --- request log ----------------------------------------------------------------------

    def log_request(
        self,
        *,
        vendor: str,
        method: str,
        path: str,
        query: str,
        status: int | None,
        fault: str | None,
        body: bytes,
    ) -> None:
        """Append a request to the log.

        :param vendor: the vendor it was for.
        :param method: the HTTP method.
        :param path: the path.
        :param query: the raw query string.
        :param status: the status answered, None when dropped.
        :param fault: the fault injected, or None.
        :param body: the request body.
        """
        with self.write() as cursor:
            cursor.execute(
                "INSERT INTO requests (at, vendor, method, path, query, status, fault, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), vendor, method, path, query, status, fault, body.decode("utf-8", "replace")),
            )

    def requests(self, vendor: str | None = None) -> list[LoggedRequest]:
        """The request log, oldest first.

        :param vendor: only this vendor's requests; all when None.
        """
        sql = "SELECT id, at, vendor, method, path, query, status, fault, body FROM requests"
        params: tuple[str, ...] = ()
        if vendor is not None:
            sql += " WHERE vendor = ?"
            params = (vendor,)
        with self.read() as cursor:
            rows = cursor.execute(sql + " ORDER BY id", params).fetchall()
        return [LoggedRequest(*row) for row in rows]

    # --- reading vendor state -------------------------------------------------------------

    def mailchimp_list_emails(self, list_id: str, status: str | None = None) -> set[str]:
        """Email addresses of an audience's members.

        :param list_id: the audience.
        :param status: only members with this status (``subscribed``, ``unsubscribed``…); all when None.
        """
        sql = "SELECT email_address FROM mailchimp_members WHERE list_id = ?"
        params: tuple[str, ...] = (list_id,)
        if status is not None:
            sql += " AND status = ?"
            params += (status,)
        with self.read() as cursor:
            return {row[0] for row in cursor.execute(sql, params)}

    def mailchimp_member(self, list_id: str, email: str) -> dict[str, Any] | None:
        """One member (``email_address``, ``status``, ``merge_fields``, ``tags``), or None.

        :param list_id: the audience.
        :param email: the member's address, any case.
        """
        member_hash = subscriber_hash(email)
        with self.read() as cursor:
            row = cursor.execute(
                "SELECT email_address, status, merge_fields FROM mailchimp_members"
                " WHERE list_id = ? AND subscriber_hash = ?",
                (list_id, member_hash),
            ).fetchone()
            if row is None:
                return None
            tags = [
                name
                for (name,) in cursor.execute(
                    "SELECT s.name FROM mailchimp_segment_members m JOIN mailchimp_segments s USING (segment_id)"
                    " WHERE s.list_id = ? AND m.subscriber_hash = ? ORDER BY s.name",
                    (list_id, member_hash),
                )
            ]
        return {"email_address": row[0], "status": row[1], "merge_fields": json.loads(row[2]), "tags": tags}

    def mailchimp_segment_emails(self, list_id: str, segment_id: int | str) -> set[str]:
        """Email addresses in a static segment (or tag: tags are static segments).

        :param list_id: the audience.
        :param segment_id: the segment.
        """
        with self.read() as cursor:
            rows = cursor.execute(
                "SELECT m.email_address FROM mailchimp_segment_members s"
                " JOIN mailchimp_segments g ON g.segment_id = s.segment_id"
                " JOIN mailchimp_members m ON m.list_id = g.list_id AND m.subscriber_hash = s.subscriber_hash"
                " WHERE g.list_id = ? AND s.segment_id = ?",
                (list_id, int(segment_id)),
            )
            return {row[0] for row in rows}

    def mailchimp_merge_fields(self, list_id: str) -> list[dict[str, Any]]:
        """An audience's merge fields (``merge_id``, ``tag``, ``name``, ``type``), by ``merge_id``.

        :param list_id: the audience.
        """
        with self.read() as cursor:
            rows = cursor.execute(
                "SELECT merge_id, tag, name, type FROM mailchimp_merge_fields WHERE list_id = ? ORDER BY merge_id",
                (list_id,),
            ).fetchall()
        return [{"merge_id": row[0], "tag": row[1], "name": row[2], "type": row[3]} for row in rows]

    def hubspot_contact_properties(self) -> list[dict[str, Any]]:
        """The contact properties (``name``, ``label``, ``type``, ``field_type``, ``group_name``,
        ``hubspot_defined``, ``created_at``): HubSpot's defaults first, then custom ones as created."""
        with self.read() as cursor:
            rows = cursor.execute(
                "SELECT name, label, type, field_type, group_name, created_at FROM hubspot_properties ORDER BY rowid"
            ).fetchall()
        defined = {row[0] for row in rows}
        defaults = [
            {"name": name, "label": label, "type": kind, "field_type": field_type, "group_name": group,
             "hubspot_defined": True, "created_at": 0.0}
            for name, label, kind, field_type, group in DEFAULT_HUBSPOT_CONTACT_PROPERTIES
            if name not in defined
        ]
        stored = [
            {"name": row[0], "label": row[1], "type": row[2], "field_type": row[3], "group_name": row[4],
             "hubspot_defined": False, "created_at": row[5]}
            for row in rows
        ]
        return defaults + stored

    def hubspot_contact(self, email: str) -> dict[str, Any] | None:
        """A contact (``id`` and ``properties``) by email, or None.

        :param email: the address, any case.
        """
        with self.read() as cursor:
            row = cursor.execute(
                "SELECT id, properties FROM hubspot_contacts WHERE email = ?", (email.strip().lower(),)
            ).fetchone()
        return None if row is None else {"id": str(row[0]), "properties": json.loads(row[1])}

    def hubspot_list_emails(self, list_id: int | str) -> set[str]:
        """Email addresses of a list's member contacts.

        :param list_id: the list.
        """
        with self.read() as cursor:
            rows = cursor.execute(
                "SELECT c.email FROM hubspot_list_members m JOIN hubspot_contacts c ON c.id = m.contact_id"
                " WHERE m.list_id = ?",
                (int(list_id),),
            )
            return {row[0] for row in rows}

    def meta_audience_hashes(self, audience_id: int | str) -> set[str]:
        """The SHA-256 hashes in a custom audience (Meta itself never shows them).

        :param audience_id: the audience.
        """
        with self.read() as cursor:
            rows = cursor.execute("SELECT hash FROM meta_audience_members WHERE audience_id = ?", (int(audience_id),))
            return {row[0] for row in rows}

    def webhook_batches(self, name: str) -> list[Any]:
        """The JSON batches a webhook received, oldest first.

        :param name: the webhook (the ``{name}`` of ``/webhook/{name}``).
        """
        with self.read() as cursor:
            rows = cursor.execute("SELECT body FROM webhook_batches WHERE name = ? ORDER BY id", (name,)).fetchall()
        return [json.loads(row[0]) for row in rows]

    # --- seeding --------------------------------------------------------------------------

    def seed_mailchimp_list(self, list_id: str, name: str) -> None:
        """Create an audience (list) with a known id; a no-op when it exists.

        :param list_id: the id, e.g. ``a1b2c3d4e5``.
        :param name: its name.
        """
        with self.write() as cursor:
            cursor.execute(
                "INSERT OR IGNORE INTO mailchimp_lists (list_id, name, created_at) VALUES (?, ?, ?)",
                (list_id, name, time.time()),
            )
            cursor.executemany(
                "INSERT OR IGNORE INTO mailchimp_merge_fields (merge_id, list_id, tag, name, type)"
                " VALUES (?, ?, ?, ?, ?)",
                [(merge_id, list_id, tag, label, kind)
                 for merge_id, tag, label, kind in DEFAULT_MAILCHIMP_MERGE_FIELDS],
            )

    def seed_mailchimp_merge_field(self, list_id: str, tag: str, name: str, field_type: str = "text") -> None:
        """Add a merge field to an existing audience; a no-op when the tag exists.

        :param list_id: the audience.
        :param tag: the merge tag, e.g. ``COUNTRY`` (upper-cased, as Mailchimp stores tags).
        :param name: its display name.
        :param field_type: ``text``, ``number``, ``date``… as Mailchimp names the types.
        """
        with self.write() as cursor:
            if cursor.execute("SELECT 1 FROM mailchimp_lists WHERE list_id = ?", (list_id,)).fetchone() is None:
                raise ValueError(f"no Mailchimp audience '{list_id}': seed it with seed_mailchimp_list first")
            (next_id,) = cursor.execute(
                "SELECT COALESCE(MAX(merge_id), 0) + 1 FROM mailchimp_merge_fields WHERE list_id = ?", (list_id,)
            ).fetchone()
            cursor.execute(
                "INSERT OR IGNORE INTO mailchimp_merge_fields (merge_id, list_id, tag, name, type)"
                " VALUES (?, ?, ?, ?, ?)",
                (next_id, list_id, tag.upper(), name, field_type),
            )

    def seed_hubspot_contact_property(self, name: str, label: str, property_type: str = "string") -> None:
        """Create a custom contact property; a no-op when one of that name exists.

        :param name: the internal name, e.g. ``lifetime_value``.
        :param label: its label.
        :param property_type: ``string``, ``number``, ``date``, ``datetime``, ``enumeration`` or ``bool``.
        """
        field_types = {"number": "number", "date": "date", "datetime": "date", "bool": "booleancheckbox"}
        if name in {default[0] for default in DEFAULT_HUBSPOT_CONTACT_PROPERTIES}:
            return
        with self.write() as cursor:
            cursor.execute(
                "INSERT OR IGNORE INTO hubspot_properties (name, label, type, field_type, group_name, created_at)"
                " VALUES (?, ?, ?, ?, 'contactinformation', ?)",
                (name, label, property_type, field_types.get(property_type, "text"), time.time()),
            )

    def seed_mailchimp_static_segment(self, list_id: str, segment_id: int, name: str) -> None:
        """Create an empty static segment with a known id in an existing audience; a no-op when it exists.

        :param list_id: the audience.
        :param segment_id: the segment's id.
        :param name: its name (also its tag name).
        """
        now = time.time()
        with self.write() as cursor:
            if cursor.execute("SELECT 1 FROM mailchimp_lists WHERE list_id = ?", (list_id,)).fetchone() is None:
                raise ValueError(f"no Mailchimp audience '{list_id}': seed it with seed_mailchimp_list first")
            cursor.execute(
                "INSERT OR IGNORE INTO mailchimp_segments (segment_id, list_id, name, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (segment_id, list_id, name, now, now),
            )

    def seed_hubspot_list(self, list_id: int | str, name: str) -> None:
        """Create an empty MANUAL contact list with a known id; a no-op when it exists.

        :param list_id: the list's numeric id.
        :param name: its name.
        """
        now = time.time()
        with self.write() as cursor:
            cursor.execute(
                "INSERT OR IGNORE INTO hubspot_lists"
                " (list_id, name, object_type_id, processing_type, created_at, updated_at)"
                " VALUES (?, ?, '0-1', 'MANUAL', ?, ?)",
                (int(list_id), name, now, now),
            )

    def seed_meta_audience(self, audience_id: int | str, ad_account_id: str, name: str) -> None:
        """Create an empty customer-file custom audience with a known id; a no-op when it exists.

        :param audience_id: the audience's numeric id.
        :param ad_account_id: the ad account, without the ``act_`` prefix.
        :param name: its name.
        """
        now = time.time()
        with self.write() as cursor:
            cursor.execute(
                "INSERT OR IGNORE INTO meta_audiences (audience_id, ad_account_id, name, description, subtype,"
                " customer_file_source, created_at, updated_at)"
                " VALUES (?, ?, ?, '', 'CUSTOM', 'USER_PROVIDED_ONLY', ?, ?)",
                (int(audience_id), ad_account_id.removeprefix("act_"), name, now, now),
            )

    def edit_mailchimp_segment(self, list_id: str, segment_id: int | str, email: str, present: bool, *,
                               at: float | None = None) -> None:
        """A person adds or removes a member of a static segment (or tag) in Mailchimp's UI: not logged as a request.

        The member is created (subscribed) when the audience lacks it. Mailchimp reports the member's
        ``last_changed`` on segment reads, so ``at`` sets that, as an edit of the member made then.

        :param at: epoch seconds of the edit; now when None (a past value gives a stale timestamp).
        """
        when = time.time() if at is None else at
        member_hash = subscriber_hash(email)
        with self.write() as cursor:
            cursor.execute(
                "INSERT INTO mailchimp_members (list_id, subscriber_hash, email_address, status, merge_fields,"
                " created_at, updated_at) VALUES (?, ?, ?, 'subscribed', '{}', ?, ?)"
                " ON CONFLICT (list_id, subscriber_hash) DO UPDATE SET updated_at = excluded.updated_at",
                (list_id, member_hash, email, when, when),
            )
            if present:
                cursor.execute(
                    "INSERT OR IGNORE INTO mailchimp_segment_members (segment_id, subscriber_hash, added_at)"
                    " VALUES (?, ?, ?)", (int(segment_id), member_hash, when))
            else:
                cursor.execute("DELETE FROM mailchimp_segment_members WHERE segment_id = ? AND subscriber_hash = ?",
                               (int(segment_id), member_hash))

    def edit_hubspot_list(self, list_id: int | str, email: str, present: bool, *, at: float | None = None) -> None:
        """A person adds or removes a contact of a MANUAL list in HubSpot's UI: not logged as a request.

        The contact is created when HubSpot lacks it.

        :param at: epoch seconds of the membership (its ``membershipTimestamp``); now when None.
        """
        when = time.time() if at is None else at
        with self.write() as cursor:
            row = cursor.execute("SELECT id FROM hubspot_contacts WHERE email = ?", (email.lower(),)).fetchone()
            if row is None:
                cursor.execute("INSERT INTO hubspot_contacts (email, properties, created_at, updated_at)"
                               " VALUES (?, ?, ?, ?)", (email.lower(), json.dumps({"email": email.lower()}), when, when))
                contact_id = cursor.lastrowid
            else:
                contact_id = row[0]
            if present:
                cursor.execute("INSERT INTO hubspot_list_members (list_id, contact_id, added_at) VALUES (?, ?, ?)"
                               " ON CONFLICT (list_id, contact_id) DO UPDATE SET added_at = excluded.added_at",
                               (int(list_id), contact_id, when))
            else:
                cursor.execute("DELETE FROM hubspot_list_members WHERE list_id = ? AND contact_id = ?",
                               (int(list_id), contact_id))

    def seed_demo_fixtures(self, fixtures: DemoFixtures | None = None) -> DemoFixtures:
        """Create the demo's audience (with its custom merge fields), static segments, HubSpot lists (and custom
        contact properties) and Meta audience.

        :param fixtures: the ids to use; :class:`DemoFixtures` defaults when None.
        :returns: the ids created.
        """
        fixtures = fixtures or DemoFixtures()
        self.seed_mailchimp_list(fixtures.mailchimp_list_id, "segprovider demo audience")
        self.seed_mailchimp_static_segment(
            fixtures.mailchimp_list_id, fixtures.mailchimp_segment_id, fixtures.mailchimp_segment_name
        )
        for tag, name, field_type in fixtures.mailchimp_merge_fields:
            self.seed_mailchimp_merge_field(fixtures.mailchimp_list_id, tag, name, field_type)
        self.seed_mailchimp_static_segment(fixtures.mailchimp_list_id, fixtures.reconciled_mailchimp_segment_id,
                                           fixtures.reconciled_mailchimp_segment_name)
        self.seed_hubspot_list(fixtures.hubspot_list_id, fixtures.hubspot_list_name)
        self.seed_hubspot_list(fixtures.reconciled_hubspot_list_id, fixtures.reconciled_hubspot_list_name)
        for name, label, property_type in fixtures.hubspot_contact_properties:
            self.seed_hubspot_contact_property(name, label, property_type)
        self.seed_meta_audience(fixtures.meta_audience_id, fixtures.meta_ad_account_id, fixtures.meta_audience_name)
        return fixtures

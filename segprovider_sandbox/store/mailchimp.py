"""Mailchimp's data in the store: audiences, merge fields, members and static segments (tags)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from segprovider_sandbox.store.connection import SqliteStore

# Every Mailchimp audience starts with these merge fields: (merge_id, tag, name, type).
DEFAULT_MAILCHIMP_MERGE_FIELDS = (
    (1, "FNAME", "First Name", "text"),
    (2, "LNAME", "Last Name", "text"),
    (3, "ADDRESS", "Address", "address"),
    (4, "PHONE", "Phone Number", "phone"),
    (5, "BIRTHDAY", "Birthday", "birthday"),
)


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 hex digest of the lower-cased email address.

    :param email: the address.
    """
    return hashlib.md5(email.lower().encode("utf-8"), usedforsecurity=False).hexdigest()


class MailchimpState(SqliteStore):
    """Reads, seeds and hand-edits Mailchimp's data."""

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

    def seed_mailchimp_tag(self, list_id: str, name: str) -> int:
        """Create an empty static segment (a tag) by name in an existing audience, unless it has one of that name.

        :param list_id: the audience.
        :param name: the segment's (and tag's) name.
        :returns: the segment's id, the existing one's when there was one.
        """
        now = time.time()
        with self.write() as cursor:
            if cursor.execute("SELECT 1 FROM mailchimp_lists WHERE list_id = ?", (list_id,)).fetchone() is None:
                raise ValueError(f"no Mailchimp audience '{list_id}': seed it with seed_mailchimp_list first")
            row = cursor.execute("SELECT min(segment_id) FROM mailchimp_segments WHERE list_id = ? AND name = ?",
                                 (list_id, name)).fetchone()
            if row[0] is not None:
                return int(row[0])
            cursor.execute("INSERT INTO mailchimp_segments (list_id, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
                           (list_id, name, now, now))
            return int(cursor.lastrowid or 0)

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

    def edit_mailchimp_audience(self, list_id: str, email: str, present: bool, *, at: float | None = None) -> bool:
        """A person adds a contact to an audience (subscribed) or deletes one from it, with its tags: not logged.

        Adding a contact the audience already has leaves it as it is (its status included).

        :param at: epoch seconds of the edit; now when None.
        :returns: whether the audience changed.
        """
        when = time.time() if at is None else at
        member_hash = subscriber_hash(email)
        with self.write() as cursor:
            if present:
                cursor.execute(
                    "INSERT OR IGNORE INTO mailchimp_members (list_id, subscriber_hash, email_address, status,"
                    " merge_fields, created_at, updated_at) VALUES (?, ?, ?, 'subscribed', '{}', ?, ?)",
                    (list_id, member_hash, email, when, when))
                return cursor.rowcount > 0
            cursor.execute("DELETE FROM mailchimp_segment_members WHERE subscriber_hash = ? AND segment_id IN"
                           " (SELECT segment_id FROM mailchimp_segments WHERE list_id = ?)", (member_hash, list_id))
            cursor.execute("DELETE FROM mailchimp_members WHERE list_id = ? AND subscriber_hash = ?",
                           (list_id, member_hash))
            return cursor.rowcount > 0

    def edit_mailchimp_member(self, list_id: str, email: str, *, status: str | None = None,
                              merge_fields: dict[str, Any] | None = None, at: float | None = None) -> None:
        """Change a member's status and/or merge values as Mailchimp itself or the person would (an unsubscribe link,
        a bounce that cleans the address, an edit in the UI): not logged as a request. An ``unsubscribed`` set here is
        the person's own, so the API may not subscribe them again (``Member In Compliance State``); a ``cleaned``
        contact never can be; ``subscribed`` lifts the former.

        :param status: the new status; unchanged when None.
        :param merge_fields: merge values to set (by tag), merged into the member's; unchanged when None.
        :param at: epoch seconds of the change (the member's ``last_changed``); now when None.
        :raises LookupError: when the audience has no such member.
        """
        when = time.time() if at is None else at
        member_hash = subscriber_hash(email)
        with self.write() as cursor:
            row = cursor.execute("SELECT status, merge_fields FROM mailchimp_members"
                                 " WHERE list_id = ? AND subscriber_hash = ?", (list_id, member_hash)).fetchone()
            if row is None:
                raise LookupError(f"{email} is not a member of audience {list_id}")
            merged = {**json.loads(row[1]), **(merge_fields or {})}
            cursor.execute("UPDATE mailchimp_members SET status = ?, merge_fields = ?, updated_at = ?"
                           " WHERE list_id = ? AND subscriber_hash = ?",
                           (status or row[0], json.dumps(merged), when, list_id, member_hash))
            # The person's own unsubscribe puts the contact in a compliance state the API cannot lift; their own
            # re-subscription (a signup form, a confirmation) lifts it.
            if status == "unsubscribed":
                cursor.execute("INSERT OR REPLACE INTO mailchimp_compliance VALUES (?, ?, 'unsubscribed', ?)",
                               (list_id, member_hash, when))
            elif status == "subscribed":
                cursor.execute("DELETE FROM mailchimp_compliance WHERE list_id = ? AND subscriber_hash = ?",
                               (list_id, member_hash))

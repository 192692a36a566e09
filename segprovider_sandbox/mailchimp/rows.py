"""Reading audiences, members and static segments inside a transaction, as the endpoints answer them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from segprovider_sandbox.mailchimp.compliance import DEFAULT_SEGMENT_STATUSES
from segprovider_sandbox.mailchimp.responses import resource_not_found, timestamp
from segprovider_sandbox.store import subscriber_hash

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence


MAX_BATCH_MEMBERS = 500


def require_list(cursor: sqlite3.Cursor, list_id: str) -> tuple[str, float]:
    """The audience's name and created_at; a 404 when it does not exist."""
    row: tuple[str, float] | None = cursor.execute(
        "SELECT name, created_at FROM mailchimp_lists WHERE list_id = ?", (list_id,)
    ).fetchone()
    if row is None:
        raise resource_not_found()
    return row


def require_segment(cursor: sqlite3.Cursor, list_id: str, segment_id: str) -> tuple[int, str, float, float]:
    """The static segment's row (id, name, created_at, updated_at); a 404 when it is not in the audience."""
    if not segment_id.isdigit():
        raise resource_not_found()
    row: tuple[int, str, float, float] | None = cursor.execute(
        "SELECT segment_id, name, created_at, updated_at FROM mailchimp_segments"
        " WHERE segment_id = ? AND list_id = ?",
        (int(segment_id), list_id),
    ).fetchone()
    if row is None:
        raise resource_not_found()
    return row


def path_member_hash(member: str) -> str:
    """The member id of a path's ``{member}``: an address (hashed) or a subscriber hash."""
    return subscriber_hash(member) if "@" in member else member.lower()


def member_json(list_id: str, row: Sequence[Any], tags: list[tuple[int, str]] | None = None) -> dict[str, Any]:
    """A list member; ``row`` is hash, email, status, merge_fields (JSON or dict), created_at, updated_at."""
    member_hash, email, status, merge_fields, created_at, updated_at = row
    member = {
        "id": member_hash,
        "email_address": email,
        "unique_email_id": member_hash[:10],
        "contact_id": member_hash,
        "email_type": "html",
        "status": status,
        "merge_fields": json.loads(merge_fields) if isinstance(merge_fields, str) else merge_fields,
        "timestamp_signup": timestamp(created_at),
        "last_changed": timestamp(updated_at),
        "list_id": list_id,
    }
    if tags is not None:
        member["tags_count"] = len(tags)
        member["tags"] = [{"id": tag_id, "name": name} for tag_id, name in tags]
    return member


def tags_of(cursor: sqlite3.Cursor, list_id: str, hashes: Sequence[str]) -> dict[str, list[tuple[int, str]]]:
    """The tags (segment id, name) of each member among ``hashes``."""
    tags: dict[str, list[tuple[int, str]]] = {member_hash: [] for member_hash in hashes}
    if not hashes:
        return tags
    placeholders = ",".join("?" * len(hashes))
    rows = cursor.execute(
        "SELECT m.subscriber_hash, s.segment_id, s.name FROM mailchimp_segment_members m"
        " JOIN mailchimp_segments s ON s.segment_id = m.segment_id"
        f" WHERE s.list_id = ? AND m.subscriber_hash IN ({placeholders}) ORDER BY s.segment_id",
        (list_id, *hashes),
    )
    for member_hash, segment_id, name in rows:
        tags[member_hash].append((segment_id, name))
    return tags


def segment_json(cursor: sqlite3.Cursor, list_id: str, row: Sequence[Any],
                 statuses: Sequence[str] = DEFAULT_SEGMENT_STATUSES) -> dict[str, Any]:
    """A static segment as Mailchimp answers it; ``row`` is id, name, created_at, updated_at; ``member_count``
    counts the members whose status is among ``statuses`` (:func:`.compliance.segment_statuses`)."""
    segment_id, name, created_at, updated_at = row
    (member_count,) = cursor.execute(
        "SELECT count(*) FROM mailchimp_segment_members s JOIN mailchimp_members m"
        " ON m.list_id = ? AND m.subscriber_hash = s.subscriber_hash"
        f" WHERE s.segment_id = ? AND m.status IN ({','.join('?' * len(statuses))})",
        (list_id, segment_id, *statuses),
    ).fetchone()
    return {
        "id": segment_id,
        "name": name,
        "member_count": member_count,
        "type": "static",
        "created_at": timestamp(created_at),
        "updated_at": timestamp(updated_at),
        "list_id": list_id,
    }


def read_member(cursor: sqlite3.Cursor, list_id: str, member_hash: str) -> dict[str, Any] | None:
    """A member with its tags, or None."""
    row = cursor.execute(
        "SELECT subscriber_hash, email_address, status, merge_fields, created_at, updated_at"
        " FROM mailchimp_members WHERE list_id = ? AND subscriber_hash = ?",
        (list_id, member_hash),
    ).fetchone()
    if row is None:
        return None
    return member_json(list_id, row, tags_of(cursor, list_id, [member_hash])[member_hash])


def existing_members(cursor: sqlite3.Cursor, list_id: str, hashes: Sequence[str]) -> dict[str, tuple[str, str, float]]:
    """Status, merge_fields JSON and created_at of the members among ``hashes``."""
    found: dict[str, tuple[str, str, float]] = {}
    for start in range(0, len(hashes), MAX_BATCH_MEMBERS):
        chunk = hashes[start : start + MAX_BATCH_MEMBERS]
        rows = cursor.execute(
            "SELECT subscriber_hash, status, merge_fields, created_at FROM mailchimp_members"
            f" WHERE list_id = ? AND subscriber_hash IN ({','.join('?' * len(chunk))})",
            (list_id, *chunk),
        )
        found.update((row[0], row[1:]) for row in rows)
    return found


def member_rows(cursor: sqlite3.Cursor, list_id: str, hashes: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """Full member rows (for :func:`member_json`) of the members among ``hashes``."""
    if not hashes:
        return {}
    rows = cursor.execute(
        "SELECT subscriber_hash, email_address, status, merge_fields, created_at, updated_at FROM mailchimp_members"
        f" WHERE list_id = ? AND subscriber_hash IN ({','.join('?' * len(hashes))})",
        (list_id, *hashes),
    )
    return {row[0]: row for row in rows}


def segment_hashes(cursor: sqlite3.Cursor, segment_id: int, hashes: Sequence[str]) -> set[str]:
    """The members among ``hashes`` that are in the segment."""
    if not hashes:
        return set()
    rows = cursor.execute(
        "SELECT subscriber_hash FROM mailchimp_segment_members"
        f" WHERE segment_id = ? AND subscriber_hash IN ({','.join('?' * len(hashes))})",
        (segment_id, *hashes),
    )
    return {row[0] for row in rows}


def find_segment_by_name(cursor: sqlite3.Cursor, list_id: str, name: str) -> int | None:
    """The id of the audience's first static segment (tag) of that name, or None."""
    row = cursor.execute(
        "SELECT segment_id FROM mailchimp_segments WHERE list_id = ? AND name = ? ORDER BY segment_id LIMIT 1",
        (list_id, name),
    ).fetchone()
    return None if row is None else row[0]


def insert_segment(cursor: sqlite3.Cursor, list_id: str, name: str, now: float) -> int:
    """Create a static segment; its new id."""
    cursor.execute(
        "INSERT INTO mailchimp_segments (list_id, name, created_at, updated_at) VALUES (?, ?, ?, ?)",
        (list_id, name, now, now),
    )
    return int(cursor.lastrowid or 0)

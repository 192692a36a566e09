"""Meta's data in the store: customer-file custom audiences, their hashed members and upload sessions.

Every valid hash uploaded is kept (Meta keeps what it received); whether it *matched* an account is
decided by :func:`hash_matches` from the hash alone, so it is the same in every run and audience.
An upload's effect on the reported size waits until its session's ``applied_at``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from segprovider_sandbox.store.connection import SqliteStore

if TYPE_CHECKING:
    import sqlite3

_MATCH_SPACE = 16**8


def hash_matches(value: str, match_rate: float) -> bool:
    """Whether Meta matches the person behind a SHA-256 hex hash: its first 32 bits, read as a fraction,
    fall below ``match_rate``. SHA-256 output is uniform, so the share matched is the rate.

    :param value: a lower-case hex SHA-256 hash.
    :param match_rate: the share of hashes that match, 0 to 1.
    """
    return int(value[:8], 16) < match_rate * _MATCH_SPACE


def applied_matched_count(cursor: sqlite3.Cursor, audience_id: int, match_rate: float, now: float) -> int:
    """The matched members of an audience as Meta reports them at ``now``: sessions not yet applied are
    taken back out.

    :param cursor: a cursor on the store.
    :param audience_id: the audience.
    :param match_rate: the sandbox's match rate.
    :param now: the time of the reading.
    """
    rows = cursor.execute("SELECT hash FROM meta_audience_members WHERE audience_id = ?", (audience_id,))
    matched = sum(1 for (value,) in rows if hash_matches(value, match_rate))
    (pending,) = cursor.execute(
        "SELECT COALESCE(SUM(matched_change), 0) FROM meta_audience_sessions WHERE audience_id = ? AND applied_at > ?",
        (audience_id, now),
    ).fetchone()
    return max(0, matched - int(pending))


class MetaState(SqliteStore):
    """Reads and seeds Meta's custom audiences."""

    def meta_audience_hashes(self, audience_id: int | str) -> set[str]:
        """The SHA-256 hashes uploaded to a custom audience and not removed, matched or not (Meta itself
        never shows them).

        :param audience_id: the audience.
        """
        with self.read() as cursor:
            rows = cursor.execute("SELECT hash FROM meta_audience_members WHERE audience_id = ?", (int(audience_id),))
            return {row[0] for row in rows}

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

    def edit_meta_audience(self, audience_id: int | str, hashes: list[str], present: bool) -> int:
        """Add or remove hashed members of a custom audience, as a customer-file upload would: not logged.

        :param hashes: lower-case hex SHA-256 hashes of normalized emails.
        :returns: how many hashes were added or removed.
        """
        rows = [(int(audience_id), value) for value in hashes]
        with self.write() as cursor:
            before = cursor.connection.total_changes
            if present:
                cursor.executemany("INSERT OR IGNORE INTO meta_audience_members (audience_id, hash) VALUES (?, ?)",
                                   rows)
            else:
                cursor.executemany("DELETE FROM meta_audience_members WHERE audience_id = ? AND hash = ?", rows)
            changed = cursor.connection.total_changes - before
            cursor.execute("UPDATE meta_audiences SET updated_at = ? WHERE audience_id = ?",
                           (time.time(), int(audience_id)))
        return changed

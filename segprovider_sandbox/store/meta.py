"""Meta's data in the store: customer-file custom audiences and their hashed members."""

from __future__ import annotations

import time

from segprovider_sandbox.store.connection import SqliteStore


class MetaState(SqliteStore):
    """Reads and seeds Meta's custom audiences."""

    def meta_audience_hashes(self, audience_id: int | str) -> set[str]:
        """The SHA-256 hashes in a custom audience (Meta itself never shows them).

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

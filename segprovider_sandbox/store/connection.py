"""The one SQLite connection of a store and its read and write transactions."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from segprovider_sandbox.store.schema import RULE_BASED_SCHEMA, SCHEMA, upgrade_never_reused_ids

if TYPE_CHECKING:
    from collections.abc import Iterator


class SqliteStore:
    """An SQLite file in WAL mode behind one lock-serialized connection, with the sandbox's schema.

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
        # a file made before AUTOINCREMENT: upgraded first, so that SCHEMA recreates the indexes the rebuild dropped
        upgrade_never_reused_ids(self._connection)
        self._connection.executescript(SCHEMA)
        self._connection.executescript(RULE_BASED_SCHEMA)  # rule-based segments

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._connection.close()

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

"""Forgotten customers stay out: ingest drops every row whose customer key hashes to a tombstone.

An erasure (``segprovider forget``) leaves a tombstone holding the salted SHA-256 of the customer key
(:mod:`airflow_segprovider.core.state.privacy`). The upstream system may still hold the person, so each
load hashes the key of every row it reads, in the typing engine (DuckDB, whatever the warehouse), and
drops the rows whose hash is a tombstone's before anything is written or quarantined. The load reports
how many rows it dropped (``rows_forgotten``), never which keys.

The salt is the project's privacy salt, read from :data:`~airflow_segprovider.core.state.privacy.SALT_ENV`;
once anyone was forgotten, a load without it fails rather than load that person again.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import in_list, render
from airflow_segprovider.core.state.privacy import SALT_ENV, TOMBSTONES, salted_hash_duckdb
from airflow_segprovider.ingest.errors import TerminalIngestError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_segprovider.core.warehouses.base import Warehouse


class ForgottenKeys:
    """The tombstones' key hashes and the salt that makes them, for one load.

    :param salt: the project's privacy salt.
    :param hashes: every tombstone's ``key_hash``.
    """

    def __init__(self, salt: str, hashes: frozenset[str]) -> None:
        self.salt = salt
        self.hashes = hashes

    def condition(self, key_sql: str) -> str:
        """DuckDB: true for a row whose key (the SQL expression ``key_sql``) belongs to a forgotten customer."""
        return f"{salted_hash_duckdb(self.salt, f'CAST({key_sql} AS VARCHAR)')} IN {in_list(sorted(self.hashes))}"


def forgotten_keys(warehouse: Warehouse, source: str,
                   environ: Mapping[str, str] | None = None) -> ForgottenKeys | None:
    """The tombstones of ``warehouse``, or None when nobody was forgotten.

    :raises TerminalIngestError: someone was forgotten and the privacy salt is not set.
    """
    if warehouse.columns(TOMBSTONES) is None:
        return None
    hashes = frozenset(row[0] for row in warehouse.query(render(f"SELECT key_hash FROM {TOMBSTONES}",
                                                                warehouse.dialect)))
    if not hashes:
        return None
    salt = (os.environ if environ is None else environ).get(SALT_ENV, "")
    if not salt:
        raise TerminalIngestError(
            f"{len(hashes)} customers were forgotten and {SALT_ENV} is not set: this load could bring them back",
            source=source, hint=f"set {SALT_ENV} to the project's privacy salt (the one 'segprovider forget' used)")
    return ForgottenKeys(salt, hashes)

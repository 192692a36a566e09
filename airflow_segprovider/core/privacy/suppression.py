"""The project-level suppression list: add, remove and list who must never be sent.

A suppression names a customer key, an identity (an e-mail address, normalized as destinations match
it), or both. Every sync, attribute push and reconcile reads the list through the sync's "not allowed"
predicate (:func:`~airflow_segprovider.core.sync.consent.not_allowed_keys_sql`), so a suppressed contact
is never sent, and one a destination holds is removed at the next run, in every mode, as a consent
removal (never held back by a guard or a failed gate). Removing a suppression only lets the segments
decide again: it sends nothing by itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_segprovider.core.errors import TerminalError
from airflow_segprovider.core.sql.dialects import render, text_literal, ts_literal
from airflow_segprovider.core.state.privacy import (
    PENDING_REASON_PREFIX,
    SUPPRESSIONS,
    UPSTREAM_REASON_PREFIX,
    ensure_tables,
    normalize_identity,
)

if TYPE_CHECKING:
    from airflow_segprovider.core.warehouses.base import Warehouse


class SuppressionError(TerminalError):
    """A suppression request that cannot be carried out as asked (says which value and why)."""


@dataclass(frozen=True)
class Suppression:
    """One entry of the suppression list."""

    customer_key: str | None
    identity: str | None
    reason: str
    added_at: dt.datetime
    added_by: str


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _where(customer_key: str | None, identity: str | None) -> str:
    key = f"customer_key = {text_literal(customer_key)}" if customer_key else "customer_key IS NULL"
    ident = f"identity = {text_literal(identity)}" if identity else "identity IS NULL"
    return f"{key} AND {ident}"


def _check(customer_key: str | None, identity: str | None) -> tuple[str | None, str | None]:
    key = customer_key.strip() if customer_key is not None else None
    ident = normalize_identity(identity) if identity is not None else None
    if customer_key is not None and not key:
        raise SuppressionError("the customer key is empty: give the key as the customer table holds it")
    if identity is not None and not ident:
        raise SuppressionError("the identity is empty: give the e-mail address (or other identity) to suppress")
    if not key and not ident:
        raise SuppressionError("a suppression needs a customer key, an identity, or both")
    return key or None, ident or None


def add_suppression(warehouse: Warehouse, *, customer_key: str | None = None, identity: str | None = None,
                    reason: str, added_by: str) -> bool:
    """Suppress a customer key and/or an identity; False when the same entry is already on the list.

    :raises SuppressionError: neither a key nor an identity, an empty one, or no reason.
    """
    key, ident = _check(customer_key, identity)
    if not reason or not reason.strip():
        raise SuppressionError("a suppression needs a reason (e.g. 'customer request 2026-12-02')")
    ensure_tables(warehouse)
    with warehouse.transaction():
        exists = warehouse.query(render(f"SELECT COUNT(*) FROM {SUPPRESSIONS} WHERE {_where(key, ident)}",
                                        warehouse.dialect))[0][0]
        if exists:
            return False
        warehouse.execute(render(
            f"INSERT INTO {SUPPRESSIONS} (customer_key, identity, reason, added_at, added_by) VALUES "
            f"({text_literal(key)}, {text_literal(ident)}, {text_literal(reason.strip())}, "
            f"{ts_literal(_utc_now())}, {text_literal(added_by)})", warehouse.dialect))
    return True


def remove_suppression(warehouse: Warehouse, *, customer_key: str | None = None, identity: str | None = None) -> int:
    """Take an entry off the list; how many rows were removed (0: it was not on the list).

    :raises SuppressionError: the entry holds a person whose erasure is not finished (``segprovider forget``
        must complete first, or that person would be sent while a destination still holds them), or a forgotten
        person a table the project reads (not loads) still holds.
    """
    key, ident = _check(customer_key, identity)
    ensure_tables(warehouse)
    where = _where(key, ident)
    with warehouse.transaction():
        rows = warehouse.query(render(f"SELECT reason FROM {SUPPRESSIONS} WHERE {where}", warehouse.dialect))
        if any(str(reason).startswith(PENDING_REASON_PREFIX) for (reason,) in rows):
            raise SuppressionError(f"customer {key!r} is suppressed by an unfinished erasure; run "
                                   "'segprovider forget' for them again until every destination confirmed it")
        if any(str(reason).startswith(UPSTREAM_REASON_PREFIX) for (reason,) in rows):
            raise SuppressionError(f"customer {key!r} was forgotten but a table the project reads still holds them; "
                                   "erase them there, then run 'segprovider forget' for them again")
        if rows:
            warehouse.execute(render(f"DELETE FROM {SUPPRESSIONS} WHERE {where}", warehouse.dialect))
    return len(rows)


def list_suppressions(warehouse: Warehouse) -> list[Suppression]:
    """The whole list, oldest first."""
    ensure_tables(warehouse)
    rows = warehouse.query(render(f"SELECT customer_key, identity, reason, added_at, added_by FROM {SUPPRESSIONS} "
                                  "ORDER BY added_at, customer_key, identity", warehouse.dialect))
    return [Suppression(*row) for row in rows]

"""Consent as the sync sees it: each customer's latest answer for a channel.

Consent is checked again at sync time, not only at evaluation: whoever withdrew
consent after the segment was evaluated is never sent. The hybrid hub reads the
same answers for its consent attributes.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import quote_identifier, quoted_table, text_literal, ts_literal

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import ConsentModel


def latest_consent_sql(consent: ConsentModel, channel: str, schema: str | None,
                       as_of: dt.datetime | None = None) -> str:
    """``(k, opted_in)``: each customer's latest answer for ``channel`` (at ``as_of`` when given).

    The key is text, as the membership and sync tables hold it; at equal times a withdrawal wins,
    the safe reading. Written in DuckDB's dialect, rendered with the statement around it.
    """
    key, opted_in, updated_at = (quote_identifier(c) for c in (
        consent.customer_key, consent.opted_in_column, consent.updated_at_column))
    bound = f" AND {updated_at} <= {ts_literal(as_of)}" if as_of is not None else ""
    return (f"SELECT k, opted_in FROM (SELECT CAST({key} AS VARCHAR) AS k, {opted_in} AS opted_in, "
            f"ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {updated_at} DESC, {opted_in} ASC) AS rn "
            f"FROM {quoted_table(consent.table, schema)} WHERE {quote_identifier(consent.channel_column)} = "
            f"{text_literal(channel)}{bound}) AS ranked WHERE rn = 1")


def not_allowed_keys_sql(consent: ConsentModel | None, channel: str, schema: str | None) -> str | None:
    """Keys of customers no longer allowed on ``channel``; None when nobody can be (no consent model for it).

    The one "not allowed" predicate of the sync: today a withdrawal (the latest answer for the channel
    is no); a suppression or an erasure list joins here as another ``UNION`` arm, and every sync mode,
    guard and hold follows (:func:`~airflow_segprovider.core.sync.plan.consent_removals_sql`). A customer
    who never answered on a channel requiring opt-in is *not* listed: they were never allowed, so a sync
    never added them, and a first run's baseline members without an answer are not a withdrawal.
    Keys are never NULL here: the plan reads them with ``NOT IN``.
    """
    if consent is None or channel not in consent.channels:
        return None
    return (f"SELECT k FROM ({latest_consent_sql(consent, channel, schema)}) AS withdrawn "
            "WHERE NOT opted_in AND k IS NOT NULL")

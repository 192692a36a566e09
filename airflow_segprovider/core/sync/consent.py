"""Consent as the sync sees it: each customer's latest answer for a channel.

Consent is checked again at sync time, not only at evaluation: whoever withdrew
consent after the segment was evaluated is never sent. The hybrid hub reads the
same answers for its consent attributes. The project's suppression list joins the
withdrawals here, in the one "not allowed" predicate every sync, push and reconcile plans with.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import quote_identifier, quoted_table, text_literal, ts_literal
from airflow_segprovider.core.state.privacy import suppressed_identities_sql, suppressed_keys_sql
from airflow_segprovider.core.state.sync import STATE

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


def not_allowed_keys_sql(consent: ConsentModel | None, channel: str, schema: str | None,
                         identities: str | None = None) -> str:
    """Keys of customers no longer allowed on ``channel``: the one "not allowed" predicate of the sync.

    Its arms, joined with ``UNION``:

    * a consent withdrawal: the latest answer for ``channel`` is no (only when the model declares
      consent for the channel);
    * a key on the project's suppression list (:data:`~airflow_segprovider.core.state.privacy.SUPPRESSIONS`);
    * a key whose identity is on the suppression list: the identity the sync state recorded as sent
      (so a contact is removed under the address it was sent with), or the one ``identities`` would send.

    Whatever the reason, every sync mode, guard and hold treats these keys alike
    (:func:`~airflow_segprovider.core.sync.plan.consent_removals_sql`): never sent, removed wherever a
    destination holds them (``add_only`` included), never held back by a guard or a failed gate, and
    counted apart from membership removals. A forgotten person needs no arm: an erasure deletes their
    rows from every table a sync reads, and keeps them suppressed until every destination confirmed it
    (:mod:`airflow_segprovider.core.privacy`).

    A customer who never answered on a channel requiring opt-in is *not* listed: they were never
    allowed, so a sync never added them, and a first run's baseline members without an answer are not a
    withdrawal. Keys are never NULL here: the plan reads them with ``NOT IN``.

    :param identities: a query of ``(customer_key, identity)`` the sync would send (its desired state),
        whose suppressed identities are listed too; None to check only the state's identities.
    """
    norm = "LOWER(TRIM({}))"
    suppressed = suppressed_identities_sql()
    arms = [f"SELECT customer_key AS k FROM ({suppressed_keys_sql()}) AS suppressed_keys",
            f"SELECT customer_key AS k FROM {STATE} WHERE identity IS NOT NULL "
            f"AND {norm.format('identity')} IN ({suppressed})"]
    if identities is not None:
        arms.append(f"SELECT i.customer_key AS k FROM ({identities}) AS i WHERE i.identity IS NOT NULL "
                    f"AND i.customer_key IS NOT NULL AND {norm.format('i.identity')} IN ({suppressed})")
    if consent is not None and channel in consent.channels:
        arms.insert(0, f"SELECT k FROM ({latest_consent_sql(consent, channel, schema)}) AS withdrawn "
                       "WHERE NOT opted_in AND k IS NOT NULL")
    return " UNION ".join(arms)

"""The ``consent`` gate's queries: each sync's planned payload, checked against the latest consent answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import quote_identifier as quote
from airflow_segprovider.core.sql.dialects import quoted_table as table_ref
from airflow_segprovider.core.sql.dialects import render, text_literal
from airflow_segprovider.gates.queries.common import no_rows

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project, Sync


def planned_payload_sql(project: Project, sync: Sync, as_of: dt.datetime, *, schema: str | None = None,
                        max_attempts: int = 3) -> str:
    """Keys the sync engine plans to send for ``sync`` at ``as_of`` (adds and changes), in DuckDB's dialect.

    Built from the sync engine's own plan queries so the gate checks exactly what the sync would send.
    """
    from airflow_segprovider.core.sync.plan import desired_sql, plan_queries

    destination = project.destinations[sync.destination]
    plan = plan_queries(sync, destination, desired_sql(project, sync, destination, as_of, schema), max_attempts,
                        "duckdb")
    return (f"SELECT customer_key FROM ({plan['add']}) AS planned_add "
            f"UNION SELECT customer_key FROM ({plan['change']}) AS planned_change")


def consent_sql(project: Project, as_of: dt.datetime, syncs: Sequence[Sync], *, dialect: str = "duckdb",
                schema: str | None = None, payloads: Mapping[str, str] | None = None, max_attempts: int = 3) -> str:
    """One row per sync: its planned payload checked against the latest consent answers.

    Columns: ``sync_id``, ``destination``, ``channel``, ``require_opt_in``, ``payload`` (contacts
    planned), ``withdrawn`` (whose latest answer for the channel is no; a tie counts as no),
    ``missing_opt_in`` (no answer at all, on a channel that requires opt-in), ``example_key``
    (the smallest offending key, NULL when none).

    The consent table is read here on its own terms, not through the sync engine's
    ``consent_ok`` flag: a bug there must not be able to hide a withdrawn contact.

    :param payloads: sync id -> a DuckDB query returning ``customer_key`` to check instead of the
        engine's plan (e.g. a payload built by hand, or by another tool).
    """
    consent = project.model.consent
    parts = []
    for sync in syncs:
        destination = project.destinations[sync.destination]
        payload = (payloads or {}).get(sync.id) or planned_payload_sql(project, sync, as_of, schema=schema,
                                                                      max_attempts=max_attempts)
        head = (f"SELECT {text_literal(sync.id)} AS sync_id, {text_literal(sync.destination)} AS destination, "
                f"{text_literal(destination.channel)} AS channel, ")
        policy = consent.channels.get(destination.channel) if consent is not None else None
        if policy is None:  # the model declares no consent for this channel: nothing to check against
            parts.append(head + "FALSE AS require_opt_in, COUNT(*) AS payload, 0 AS withdrawn, "
                         f"0 AS missing_opt_in, CAST(NULL AS VARCHAR) AS example_key FROM ({payload}) AS p")
            continue
        ref = table_ref(consent.table, schema)
        key, channel = quote(consent.customer_key), quote(consent.channel_column)
        opted_in, updated_at = quote(consent.opted_in_column), quote(consent.updated_at_column)
        where = f"{channel} = {text_literal(destination.channel)}"
        latest = (f"SELECT CAST({key} AS VARCHAR) AS customer_key, MAX({updated_at}) AS updated_at "
                  f"FROM {ref} WHERE {where} GROUP BY CAST({key} AS VARCHAR)")
        answers = (f"SELECT l.customer_key, BOOL_AND(COALESCE(c.{opted_in}, FALSE)) AS opted_in "
                   f"FROM ({latest}) AS l JOIN {ref} AS c ON CAST(c.{key} AS VARCHAR) = l.customer_key "
                   f"AND c.{updated_at} = l.updated_at WHERE c.{where} GROUP BY l.customer_key")
        require = "TRUE" if policy.require_opt_in else "FALSE"
        withdrawn = "a.opted_in = FALSE"
        missing = f"a.customer_key IS NULL AND {require}"
        parts.append(
            head + f"{require} AS require_opt_in, COUNT(*) AS payload, "
            f"COUNT(CASE WHEN {withdrawn} THEN 1 END) AS withdrawn, "
            f"COUNT(CASE WHEN {missing} THEN 1 END) AS missing_opt_in, "
            f"MIN(CASE WHEN ({withdrawn}) OR ({missing}) THEN p.customer_key END) AS example_key "
            f"FROM (SELECT DISTINCT CAST(customer_key AS VARCHAR) AS customer_key FROM ({payload}) AS q) AS p "
            f"LEFT JOIN ({answers}) AS a ON a.customer_key = p.customer_key")
    rows = " UNION ALL ".join(parts) if parts else no_rows(
        {"sync_id": "VARCHAR", "destination": "VARCHAR", "channel": "VARCHAR", "require_opt_in": "BOOLEAN",
         "payload": "BIGINT", "withdrawn": "BIGINT", "missing_opt_in": "BIGINT", "example_key": "VARCHAR"})
    return render(rows, dialect)

"""The ``cross_system_counts`` gate's query: what each destination reported it holds, against what we expect."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import quoted_table as table_ref
from airflow_segprovider.core.sql.dialects import render, text_literal, ts_literal
from airflow_segprovider.core.state.gates import DESTINATION_COUNTS
from airflow_segprovider.core.state.membership import MEMBERSHIPS
from airflow_segprovider.core.state.sync import HELD_ERROR_PREFIX, REJECTED
from airflow_segprovider.core.state.sync import RUNS as SYNC_RUNS
from airflow_segprovider.core.state.sync import STATE as SYNC_STATE
from airflow_segprovider.gates.queries.common import PHASES, GateConfigError, no_rows

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project, Sync


def cross_system_counts_sql(project: Project, as_of: dt.datetime, syncs: Sequence[Sync], phase: str, *,
                            dialect: str = "duckdb", schema: str | None = None) -> str:
    """One row per sync: the count its destination reported (staged for ``phase`` at ``as_of``) and the
    count we expect, with ``absolute_difference`` and ``relative_difference`` (over ``max(expected, 1)``).

    Expected ``before`` a sync: the keys the sync state says the destination holds. Expected ``after``:
    the snapshot's members the sync could send (consent given, identity present, not refused by the
    destination), plus the keys it holds that the sync keeps without having added them (the baseline
    of an existing list, and everything an ``add_only`` sync ever added); for a sync whose latest run
    at ``as_of`` was held by a failed segment gate, what the sync state says it holds (the held run sent
    only opt-out removals). ``snapshot_members`` is the segment's (or arm's) size, for reference.

    The count is the destination's own notion of its size, as staged from its ``reported_count()``
    (:func:`~airflow_segprovider.gates.staging.stage_destination_counts`), and is compared as
    :meth:`ReportedCount.drift_from <airflow_segprovider.core.destination.ReportedCount.drift_from>` compares
    it for the drift monitor: a Meta audience reports a range (``reported_lower`` to ``reported_upper``) of
    the people it *matched*, so any range that overlaps ``[⌊min_match_rate × expected⌋, expected]`` differs
    by 0 (the staged ``min_match_rate``: the connector's validated setting, 1 for an exact count); an upload
    that matched nobody still differs by at least that floor. A count the destination says it is still
    applying (``pending``: Meta applies an upload within up to 24 hours) is not judged: its difference is 0
    and the row says ``pending``; the next run's check decides. ``match_rate`` is the share the ad platform
    says it matched (None for a destination that counts everyone sent), shown with every failing row.
    """
    if phase not in PHASES:
        raise GateConfigError(f"unknown phase {phase!r} for cross_system_counts; phases: {', '.join(PHASES)}")
    from airflow_segprovider.core.sync.plan import desired_sql

    counts, state = table_ref(DESTINATION_COUNTS, schema), table_ref(SYNC_STATE, schema)
    rejected, memberships = table_ref(REJECTED, schema), table_ref(MEMBERSHIPS, schema)
    runs = table_ref(SYNC_RUNS, schema)
    at = ts_literal(as_of)
    parts = []
    for sync in syncs:
        sid = text_literal(sync.id)
        held = f"SELECT customer_key FROM {state} WHERE sync_id = {sid} AND in_destination"
        if phase == "before":
            expected = f"(SELECT COUNT(*) FROM ({held}) AS h)"
        else:
            desired = desired_sql(project, sync, project.destinations[sync.destination], as_of, schema)
            central = (f"SELECT d.customer_key FROM ({desired}) AS d WHERE d.consent_ok AND d.identity IS NOT NULL "
                       f"AND d.identity <> '' AND d.customer_key NOT IN (SELECT customer_key FROM {rejected} "
                       f"WHERE sync_id = {sid} AND operation = 'add')")
            kept = held + ("" if sync.mode == "add_only" else " AND origin <> 'segprovider'")
            # a held run (held, or partial when an opt-out was refused) sent no membership change
            latest_error = (f"(SELECT error FROM {runs} WHERE sync_id = {sid} AND as_of = {at} AND NOT dry_run "
                            "ORDER BY started_at DESC LIMIT 1)")
            held_run = f"{latest_error} LIKE {text_literal(HELD_ERROR_PREFIX + '%')}"
            expected = (f"CASE WHEN {held_run} THEN (SELECT COUNT(*) FROM ({held}) AS h) "
                        f"ELSE (SELECT COUNT(*) FROM ({central} UNION {kept}) AS e) END")
        arm = f" AND arm = {text_literal(sync.arm)}" if sync.arm else ""
        snapshot = (f"(SELECT COUNT(*) FROM {memberships} WHERE segment = {text_literal(sync.segment)} "
                    f"AND as_of = {at}{arm})")
        reported = (f"SELECT reported_count, reported_lower, reported_upper, min_match_rate, match_rate, pending, "
                    "reported_at, ROW_NUMBER() OVER (ORDER BY reported_at DESC) AS rn "
                    f"FROM {counts} WHERE sync_id = {sid} AND phase = {text_literal(phase)} AND as_of = {at}")
        parts.append(
            f"SELECT {sid} AS sync_id, {text_literal(sync.destination)} AS destination, "
            f"{text_literal(phase)} AS phase, r.reported_count AS reported_count, "
            "COALESCE(r.reported_lower, r.reported_count) AS reported_lower, "
            "COALESCE(r.reported_upper, r.reported_count) AS reported_upper, "
            "COALESCE(r.min_match_rate, 1.0) AS min_match_rate, r.match_rate AS match_rate, "
            "COALESCE(r.pending, FALSE) AS pending, r.reported_at AS reported_at, "
            f"{expected} AS expected_count, {snapshot} AS snapshot_members "
            f"FROM (SELECT 1 AS one) AS one LEFT JOIN ({reported}) AS r ON r.rn = 1")
    rows = " UNION ALL ".join(parts) if parts else no_rows(
        {"sync_id": "VARCHAR", "destination": "VARCHAR", "phase": "VARCHAR", "reported_count": "BIGINT",
         "reported_lower": "BIGINT", "reported_upper": "BIGINT", "min_match_rate": "DOUBLE", "match_rate": "DOUBLE",
         "pending": "BOOLEAN", "reported_at": "TIMESTAMP", "expected_count": "BIGINT", "snapshot_members": "BIGINT"})
    # The distance from the reported range to [FLOOR(min_match_rate * expected), expected] (ReportedCount.drift_from);
    # for an exact count with a rate of 1 that is ABS(reported - expected). A pending count is not judged.
    low = "FLOOR(c.expected_count * c.min_match_rate)"
    difference = (f"CASE WHEN c.reported_count IS NULL THEN NULL WHEN c.pending THEN 0 "
                  f"WHEN c.reported_upper < {low} THEN {low} - c.reported_upper "
                  "WHEN c.reported_lower > c.expected_count THEN c.reported_lower - c.expected_count ELSE 0 END")
    return render(
        "SELECT sync_id, destination, phase, reported_count, reported_lower, reported_upper, min_match_rate, "
        "match_rate, pending, reported_at, expected_count, snapshot_members, "
        f"CAST({difference} AS BIGINT) AS absolute_difference, "
        f"CAST({difference} AS DOUBLE) / GREATEST(expected_count, 1) AS relative_difference "
        f"FROM ({rows}) AS c", dialect)


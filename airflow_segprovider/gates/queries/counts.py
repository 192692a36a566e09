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

    A Meta audience reports the people it *matched*, not everyone sent, so for a Meta sync any count from
    ``min_match_rate × expected`` to ``expected`` differs by 0 (the destination's ``min_match_rate``, see
    :func:`match_rate_floor`); an upload that matched nobody still differs by at least that floor. The
    same bounds as the drift monitor's, rather than refusing the gate for Meta: the gate then still
    catches an audience that matched nobody or kept people it should have lost.
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
        reported = (f"SELECT reported_count, reported_at, ROW_NUMBER() OVER (ORDER BY reported_at DESC) AS rn "
                    f"FROM {counts} WHERE sync_id = {sid} AND phase = {text_literal(phase)} AND as_of = {at}")
        parts.append(
            f"SELECT {sid} AS sync_id, {text_literal(sync.destination)} AS destination, "
            f"{text_literal(phase)} AS phase, r.reported_count AS reported_count, r.reported_at AS reported_at, "
            f"{expected} AS expected_count, {snapshot} AS snapshot_members, "
            f"{match_rate_floor(project, sync)!r} AS min_match_rate "
            f"FROM (SELECT 1 AS one) AS one LEFT JOIN ({reported}) AS r ON r.rn = 1")
    rows = " UNION ALL ".join(parts) if parts else no_rows(
        {"sync_id": "VARCHAR", "destination": "VARCHAR", "phase": "VARCHAR", "reported_count": "BIGINT",
         "reported_at": "TIMESTAMP", "expected_count": "BIGINT", "snapshot_members": "BIGINT",
         "min_match_rate": "DOUBLE"})
    # The distance from the reported count to [FLOOR(min_match_rate * expected), expected]; with a rate of 1
    # that is ABS(reported - expected).
    low = "FLOOR(c.expected_count * c.min_match_rate)"
    difference = (f"CASE WHEN c.reported_count IS NULL THEN NULL WHEN c.reported_count < {low} "
                  f"THEN {low} - c.reported_count WHEN c.reported_count > c.expected_count "
                  "THEN c.reported_count - c.expected_count ELSE 0 END")
    return render(
        "SELECT sync_id, destination, phase, reported_count, reported_at, expected_count, snapshot_members, "
        f"CAST({difference} AS BIGINT) AS absolute_difference, "
        f"CAST({difference} AS DOUBLE) / GREATEST(expected_count, 1) AS relative_difference "
        f"FROM ({rows}) AS c", dialect)


def match_rate_floor(project: Project, sync: Sync) -> float:
    """The lowest share of the people sent that ``sync``'s destination may report: 1.0, except for Meta,
    whose audiences count the people matched (``min_match_rate`` of the sync's target or the destination's
    config; the connector's default otherwise).

    :raises GateConfigError: ``min_match_rate`` is not a number from 0 to 1.
    """
    destination = project.destinations[sync.destination]
    if destination.kind != "meta":
        return 1.0
    from airflow_segprovider.destinations.meta import DEFAULT_MIN_MATCH_RATE

    value = {**destination.config, **sync.target}.get("min_match_rate", DEFAULT_MIN_MATCH_RATE)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise GateConfigError(f"sync {sync.id}: destination '{destination.name}' min_match_rate must be a number "
                              f"from 0 to 1 (the lowest share of uploaded people Meta matches), got {value!r}")
    return float(value)

"""The SQL each gate validates: small, one row per checked thing, never a whole table.

Every query is written once in DuckDB's dialect and transpiled with
:func:`~airflow_segprovider.core.evaluate.dialects.render`, like the core's own statements.
Values that depend on ``as_of`` are emitted as typed literals; ages and type
families are derived in Python from the fetched rows (see :mod:`.frames`), so no
dialect has to do date arithmetic.

=======================  ==========================================================
gate                     one row per
=======================  ==========================================================
``freshness``            table of the data model (newest timestamp at or before
                         ``as_of``), and declared source's last successful load
``types``                sampled customer row (profiled into one row per attribute)
``segment_size``         sync: the segment's (or arm's) size and previous size
``consent``              sync: planned payload checked against the consent table
``cross_system_counts``  sync: what the destination reported against what we expect
=======================  ==========================================================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_segprovider.core.evaluate.dialects import quote_identifier as quote
from airflow_segprovider.core.evaluate.dialects import quoted_table as table_ref
from airflow_segprovider.core.evaluate.dialects import render
from airflow_segprovider.core.state.membership import MEMBERSHIPS, SNAPSHOTS, text_literal, ts_literal
from airflow_segprovider.core.project.spec import AttributeCondition, iter_conditions

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Attribute, Project, Sync

GATES = ("freshness", "types", "segment_size", "consent", "cross_system_counts")
#: Gates of the hybrid model's attribute hub (frames built by airflow_segprovider.gates.hub).
HUB_GATES = ("hub_freshness", "hub_types")
#: Gates checked per sync (the others check the data model's tables).
SYNC_GATES = frozenset({"segment_size", "consent", "cross_system_counts"})
PHASES = ("before", "after")
DESTINATION_COUNTS = "segprovider_destination_counts"
SOURCE_LOADS = "segprovider_source_loads"  # the ingest ledger (airflow_segprovider.ingest.ledger)
SYNC_STATE = "segprovider_sync_state"
REJECTED = "segprovider_rejected_records"
DEFAULT_SAMPLE_ROWS = 10_000
SAMPLE_SEED = 42


class GateConfigError(ValueError):
    """A gate was asked for something it cannot do (unknown gate, parameter or phase); retrying cannot help."""


@dataclass(frozen=True)
class _SqlTarget:
    """Just enough of a warehouse for :class:`~airflow_segprovider.core.sync.engine.SyncEngine` to write its SQL."""

    dialect: str = "duckdb"
    schema: str | None = None


def gate_syncs(project: Project, gate: str, selectors: Sequence[str] | None = None) -> list[Sync]:
    """The syncs that declare ``gate``, narrowed to ``selectors`` (sync ids, segments or destinations)."""
    from airflow_segprovider.core.sync.engine import select_syncs

    check_gate(gate)
    return [sync for sync in select_syncs(project, selectors) if gate in sync.gates]


def check_gate(gate: str) -> str:
    if gate not in GATES and gate not in HUB_GATES:
        raise GateConfigError(f"unknown gate {gate!r}; gates: {', '.join(GATES + HUB_GATES)}")
    return gate


# --- freshness -------------------------------------------------------------------------------


def timestamp_columns(project: Project) -> dict[str, list[str]]:
    """Table -> the timestamp columns whose maximum says how recent it is.

    Event and order tables: their timestamp column; the consent table: its ``updated_at``;
    the customer table: every attribute declared ``timestamp``.
    """
    model = project.model
    out: dict[str, list[str]] = {}

    def add(table: str, column: str) -> None:
        columns = out.setdefault(table, [])
        if column not in columns:
            columns.append(column)

    for attribute in model.customer.attributes.values():
        if attribute.type == "timestamp":
            add(model.customer.table, attribute.column)
    for source in model.events.values():
        add(source.table, source.timestamp)
    if model.consent is not None:
        add(model.consent.table, model.consent.updated_at_column)
    return out


def freshness_sql(project: Project, as_of: dt.datetime, *, dialect: str = "duckdb", schema: str | None = None,
                  include_loads: bool = False) -> str:
    """One row per table (newest timestamp at or before ``as_of``) and, with ``include_loads``, per source.

    Columns: ``kind`` (``data`` or ``load``), ``table_name``, ``timestamp_column``, ``source``,
    ``newest``, ``row_count``.

    :param include_loads: also read each declared source's latest successful load from the ingest
        ledger (only when that table exists; a source never loaded gives ``newest`` NULL).
    """
    at = ts_literal(as_of)
    parts = []
    for table, columns in timestamp_columns(project).items():
        ref = table_ref(table, schema)
        newest = " UNION ALL ".join(
            f"SELECT MAX({quote(c)}) AS v FROM {ref} WHERE {quote(c)} <= {at}" for c in columns)
        parts.append(
            f"SELECT 'data' AS kind, {text_literal(table)} AS table_name, "
            f"{text_literal(', '.join(columns))} AS timestamp_column, CAST(NULL AS VARCHAR) AS source, "
            f"(SELECT MAX(v) FROM ({newest}) AS n) AS newest, (SELECT COUNT(*) FROM {ref}) AS row_count")
    if include_loads:
        loads = table_ref(SOURCE_LOADS, schema)
        for name, source in sorted(project.sources.items()):
            latest = (f"SELECT finished_at, rows_loaded, ROW_NUMBER() OVER (ORDER BY finished_at DESC) AS rn "
                      f"FROM {loads} WHERE source = {text_literal(name)} AND status = 'succeeded'")
            parts.append(
                f"SELECT 'load' AS kind, {text_literal(source.table)} AS table_name, "
                f"'finished_at' AS timestamp_column, {text_literal(name)} AS source, l.finished_at AS newest, "
                f"l.rows_loaded AS row_count FROM (SELECT 1 AS one) AS one LEFT JOIN ({latest}) AS l ON l.rn = 1")
    rows = " UNION ALL ".join(parts) if parts else _no_rows(
        {"kind": "VARCHAR", "table_name": "VARCHAR", "timestamp_column": "VARCHAR", "source": "VARCHAR",
         "newest": "TIMESTAMP", "row_count": "BIGINT"})
    return render(rows, dialect)


# --- types -----------------------------------------------------------------------------------


def type_attributes(project: Project, syncs: Sequence[Sync] | None = None) -> list[Attribute]:
    """Customer attributes whose type matters: those any segment's rule reads, and those the syncs send."""
    model = project.model
    names: list[str] = []
    for segment in project.segments.values():
        for node in iter_conditions(segment.rule):
            if isinstance(node, AttributeCondition) and node.attribute not in names:
                names.append(node.attribute)
    for sync in project.syncs if syncs is None else syncs:
        destination = project.destinations[sync.destination]
        for name in (destination.identity, *destination.field_mapping.values()):
            if name not in names:
                names.append(name)
    return [model.customer.attributes[name] for name in names]


def types_sql(project: Project, columns: Sequence[str], *, sample_rows: int = DEFAULT_SAMPLE_ROWS,
              dialect: str = "duckdb", schema: str | None = None) -> str:
    """A sample of at most ``sample_rows`` customer rows, ``columns`` only.

    DuckDB and Snowflake draw a uniform sample; elsewhere the first rows are taken.
    """
    if not columns:
        raise GateConfigError("the types gate has no customer attribute to check: no segment reads one and "
                              "no destination sends one")
    rows = int(sample_rows)
    if rows <= 0:
        raise GateConfigError(f"sample_rows must be positive, got {sample_rows!r}")
    ref = table_ref(project.model.customer.table, schema)
    select = f"SELECT {', '.join(quote(c) for c in columns)} FROM {ref}"
    if dialect == "duckdb":
        return f"{select} USING SAMPLE reservoir({rows} ROWS) REPEATABLE ({SAMPLE_SEED})"
    if dialect == "snowflake":
        return render(select, dialect) + f" SAMPLE ({rows} ROWS)"
    return render(f"{select} LIMIT {rows}", dialect)


# --- segment size ------------------------------------------------------------------------------

_SIZE_COLUMNS = ("sync_id", "segment", "arm", "destination", "members", "previous_as_of", "previous_members")


def segment_size_sql(project: Project, as_of: dt.datetime, syncs: Sequence[Sync], *, dialect: str = "duckdb",
                     schema: str | None = None) -> str:
    """One row per sync: members at ``as_of`` (NULL without a snapshot), the previous snapshot's size,
    and ``change_fraction`` = ``|members - previous| / max(previous, 1)`` (NULL for a first snapshot).

    A sync of a split arm is sized by its arm's members, read from the membership store.
    """
    snapshots, memberships = table_ref(SNAPSHOTS, schema), table_ref(MEMBERSHIPS, schema)
    parts = []
    for sync in syncs:
        segment = text_literal(sync.segment)
        if sync.arm:
            arm = text_literal(sync.arm)
            members = (f"CASE WHEN s.segment IS NULL THEN NULL ELSE (SELECT COUNT(*) FROM {memberships} AS m "
                       f"WHERE m.segment = {segment} AND m.as_of = s.as_of AND m.arm = {arm}) END")
            previous = (f"CASE WHEN s.previous_as_of IS NULL THEN NULL ELSE (SELECT COUNT(*) FROM {memberships} "
                        f"AS m WHERE m.segment = {segment} AND m.as_of = s.previous_as_of AND m.arm = {arm}) END")
        else:
            arm, members, previous = "CAST(NULL AS VARCHAR)", "s.members", "p.members"
        parts.append(
            f"SELECT {text_literal(sync.id)} AS sync_id, {segment} AS segment, {arm} AS arm, "
            f"{text_literal(sync.destination)} AS destination, {members} AS members, "
            f"s.previous_as_of AS previous_as_of, {previous} AS previous_members "
            f"FROM (SELECT 1 AS one) AS one "
            f"LEFT JOIN {snapshots} AS s ON s.segment = {segment} AND s.as_of = {ts_literal(as_of)} "
            f"LEFT JOIN {snapshots} AS p ON p.segment = {segment} AND p.as_of = s.previous_as_of")
    rows = " UNION ALL ".join(parts) if parts else _no_rows(
        {"sync_id": "VARCHAR", "segment": "VARCHAR", "arm": "VARCHAR", "destination": "VARCHAR",
         "members": "BIGINT", "previous_as_of": "TIMESTAMP", "previous_members": "BIGINT"})
    return render(
        f"SELECT {', '.join(_SIZE_COLUMNS)}, CASE WHEN previous_members IS NULL OR members IS NULL THEN NULL "
        f"ELSE CAST(ABS(members - previous_members) AS DOUBLE) / GREATEST(previous_members, 1) END "
        f"AS change_fraction FROM ({rows}) AS sizes", dialect)


# --- consent -----------------------------------------------------------------------------------


def planned_payload_sql(project: Project, sync: Sync, as_of: dt.datetime, *, schema: str | None = None,
                        max_attempts: int = 3) -> str:
    """Keys the sync engine plans to send for ``sync`` at ``as_of`` (adds and changes), in DuckDB's dialect.

    Built from :meth:`SyncEngine._plan_sql` so the gate checks exactly what the sync would send.
    """
    from airflow_segprovider.core.sync.engine import SyncEngine

    engine = SyncEngine(project, _SqlTarget("duckdb", schema))  # type: ignore[arg-type]
    plan = engine._plan_sql(sync, project.destinations[sync.destination], as_of, max_attempts)
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
    rows = " UNION ALL ".join(parts) if parts else _no_rows(
        {"sync_id": "VARCHAR", "destination": "VARCHAR", "channel": "VARCHAR", "require_opt_in": "BOOLEAN",
         "payload": "BIGINT", "withdrawn": "BIGINT", "missing_opt_in": "BIGINT", "example_key": "VARCHAR"})
    return render(rows, dialect)


# --- cross-system counts -----------------------------------------------------------------------


def cross_system_counts_sql(project: Project, as_of: dt.datetime, syncs: Sequence[Sync], phase: str, *,
                            dialect: str = "duckdb", schema: str | None = None) -> str:
    """One row per sync: the count its destination reported (staged for ``phase`` at ``as_of``) and the
    count we expect, with ``absolute_difference`` and ``relative_difference`` (over ``max(expected, 1)``).

    Expected ``before`` a sync: the keys the sync state says the destination holds. Expected ``after``:
    the snapshot's members the sync could send (consent given, identity present, not refused by the
    destination), plus the keys it holds that the sync keeps without having added them (the baseline
    of an existing list, and everything an ``add_only`` sync ever added). ``snapshot_members`` is the
    segment's (or arm's) size, for reference.
    """
    if phase not in PHASES:
        raise GateConfigError(f"unknown phase {phase!r} for cross_system_counts; phases: {', '.join(PHASES)}")
    from airflow_segprovider.core.sync.engine import SyncEngine

    engine = SyncEngine(project, _SqlTarget("duckdb", schema))  # type: ignore[arg-type]
    counts, state = table_ref(DESTINATION_COUNTS, schema), table_ref(SYNC_STATE, schema)
    rejected, memberships = table_ref(REJECTED, schema), table_ref(MEMBERSHIPS, schema)
    at = ts_literal(as_of)
    parts = []
    for sync in syncs:
        sid = text_literal(sync.id)
        held = f"SELECT customer_key FROM {state} WHERE sync_id = {sid} AND in_destination"
        if phase == "before":
            expected = f"(SELECT COUNT(*) FROM ({held}) AS h)"
        else:
            desired = engine._desired_sql(sync, project.destinations[sync.destination], as_of)
            central = (f"SELECT d.customer_key FROM ({desired}) AS d WHERE d.consent_ok AND d.identity IS NOT NULL "
                       f"AND d.identity <> '' AND d.customer_key NOT IN (SELECT customer_key FROM {rejected} "
                       f"WHERE sync_id = {sid} AND operation = 'add')")
            kept = held + ("" if sync.mode == "add_only" else " AND origin <> 'segprovider'")
            expected = f"(SELECT COUNT(*) FROM ({central} UNION {kept}) AS e)"
        arm = f" AND arm = {text_literal(sync.arm)}" if sync.arm else ""
        snapshot = (f"(SELECT COUNT(*) FROM {memberships} WHERE segment = {text_literal(sync.segment)} "
                    f"AND as_of = {at}{arm})")
        reported = (f"SELECT reported_count, reported_at, ROW_NUMBER() OVER (ORDER BY reported_at DESC) AS rn "
                    f"FROM {counts} WHERE sync_id = {sid} AND phase = {text_literal(phase)} AND as_of = {at}")
        parts.append(
            f"SELECT {sid} AS sync_id, {text_literal(sync.destination)} AS destination, "
            f"{text_literal(phase)} AS phase, r.reported_count AS reported_count, r.reported_at AS reported_at, "
            f"{expected} AS expected_count, {snapshot} AS snapshot_members "
            f"FROM (SELECT 1 AS one) AS one LEFT JOIN ({reported}) AS r ON r.rn = 1")
    rows = " UNION ALL ".join(parts) if parts else _no_rows(
        {"sync_id": "VARCHAR", "destination": "VARCHAR", "phase": "VARCHAR", "reported_count": "BIGINT",
         "reported_at": "TIMESTAMP", "expected_count": "BIGINT", "snapshot_members": "BIGINT"})
    return render(
        "SELECT sync_id, destination, phase, reported_count, reported_at, expected_count, snapshot_members, "
        "ABS(reported_count - expected_count) AS absolute_difference, "
        "CAST(ABS(reported_count - expected_count) AS DOUBLE) / GREATEST(expected_count, 1) AS relative_difference "
        f"FROM ({rows}) AS c", dialect)


def _no_rows(columns: Mapping[str, str]) -> str:
    """A query with the given typed columns and no rows (a gate with nothing to check)."""
    return "SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in columns.items()) + " WHERE FALSE"

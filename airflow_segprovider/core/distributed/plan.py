"""Step 2 of a reconcile: compare each system's list, resolve by policy, and plan the exact changes.

Per customer, presence in each system is compared with what this project last wrote there (the
sync engine's state table) and with the last agreed value (``segprovider_reconcile_state``),
resolved with :mod:`airflow_segprovider.core.distributed.policy`, and written as the decisions
(conflicts with both sides, ``segprovider_reconcile_decisions``) and the exact change set the sync
engine will send (``segprovider_reconcile_plan``). Nothing else changes: a blocked plan leaves no
trace but itself.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_segprovider.core.distributed.context import ReconcileContext, utc_now
from airflow_segprovider.core.distributed.engine import ReconcileSyncEngine
from airflow_segprovider.core.distributed.errors import ReconcileError
from airflow_segprovider.core.distributed.policy import (
    Agreed,
    Observation,
    ReconcileSettings,
    Written,
    classify,
    plan_changes,
    resolve,
)
from airflow_segprovider.core.project.distributed import MEMBERSHIP_TIMES
from airflow_segprovider.core.sql.dialects import text_literal
from airflow_segprovider.core.state.distributed import AGREED, COUNTS, DECISIONS, PLAN, PULLS, RUNS
from airflow_segprovider.core.state.sync import STATE
from airflow_segprovider.core.sync.engine import SyncEngine

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import ReconcilePolicy

log = logging.getLogger(__name__)


@dataclass
class SystemChangeSet:
    """What one reconcile plans for one system of one segment."""

    segment: str
    system: str
    readable: bool
    size_before: int
    add: int = 0
    remove: int = 0

    @property
    def changes(self) -> int:
        return self.add + self.remove

    @property
    def fraction(self) -> float:
        size_after = self.size_before + self.add - self.remove
        return self.changes / max(self.size_before, size_after, 1)


@dataclass
class ReconcilePlan:
    """The plan of one run: per segment, the decisions' counts and the change set per system."""

    run_id: str
    as_of: str
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    change_sets: list[SystemChangeSet] = field(default_factory=list)

    @property
    def total_changes(self) -> int:
        return sum(c.changes for c in self.change_sets)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "as_of": self.as_of, "segments": self.segments,
                "change_sets": [{**asdict(c), "changes": c.changes, "fraction": round(c.fraction, 4)}
                                for c in self.change_sets],
                "total_changes": self.total_changes}


def build_plan(ctx: ReconcileContext, run_id: str, segments: Sequence[str] | None = None) -> ReconcilePlan:
    """Resolve every customer of each pulled segment and write the decisions and the change set."""
    ctx.ensure_tables()
    runs = ctx.run_segments(run_id)
    policies = [p for p in ctx.policies(segments) if p.segment in runs]
    if not policies:
        raise ReconcileError(f"reconcile run {run_id} has pulled nothing; pull first")
    as_of = min(as_of for _, as_of in runs.values())
    result = ReconcilePlan(run_id, as_of.isoformat())
    for policy in policies:
        status, seg_as_of = runs[policy.segment]
        if status not in ("pulled", "planned", "blocked"):
            raise ReconcileError(f"reconcile run {run_id} of {policy.segment!r} is {status}; plan a new run")
        _plan_segment(ctx, run_id, policy, seg_as_of, result)
    return result


def _plan_segment(ctx: ReconcileContext, run_id: str, policy: ReconcilePolicy, as_of: dt.datetime,
                  result: ReconcilePlan) -> None:
    rid, seg = text_literal(run_id), text_literal(policy.segment)
    syncs = {s.destination: s for s in ctx.syncs_of(policy)}
    pulled_at: dict[str, dt.datetime] = {system: at for system, at in ctx.warehouse.query(ctx.sql(
        f"SELECT system, pulled_at FROM {COUNTS} WHERE run_id = {rid} AND segment = {seg}"))}
    missing = [s for s in syncs if s not in pulled_at]
    if missing:
        raise ReconcileError(f"reconcile run {run_id} of {policy.segment!r} has no pull of {', '.join(missing)}; "
                             "pull again")
    observed: dict[str, dict[str, dt.datetime | None]] = {s: {} for s in policy.systems}
    for system, key, changed_at in ctx.warehouse.query(ctx.sql(
            f"SELECT system, customer_key, changed_at FROM {PULLS} WHERE run_id = {rid} AND segment = {seg}")):
        observed[system][key] = changed_at
    written: dict[str, dict[str, Written]] = {s: {} for s in syncs}
    for system, sync in syncs.items():
        for key, present, at, origin in ctx.warehouse.query(ctx.sql(
                f"SELECT customer_key, in_destination, synced_at, origin FROM {STATE} "
                f"WHERE sync_id = {text_literal(sync.id)}")):
            written[system][key] = Written(bool(present), at, origin)
    agreed = {key: Agreed(bool(member), changed_at) for key, member, changed_at in ctx.warehouse.query(ctx.sql(
        f"SELECT customer_key, member, changed_at FROM {AGREED} WHERE segment = {seg}"))}
    keys: set[str] = set(agreed)
    for system in policy.systems:
        keys.update(observed[system])
        keys.update(k for k, w in written[system].items() if w.present)
    for system in syncs:
        keys.update(k for k, w in written[system].items() if w.present)

    settings = ReconcileSettings(policy.policy, policy.authority, policy.tie_break)
    now = utc_now()
    decisions: dict[str, Any] = {}
    stale = conflicts = 0
    for key in sorted(keys):
        claims = {}
        for system in policy.systems:
            exact = MEMBERSHIP_TIMES[ctx.project.destinations[system].kind] == "exact"
            seen = observed[system]
            obs = Observation(key in seen, seen.get(key), exact)
            claims[system] = classify(system, obs, written[system].get(key), pulled_at[system])
        previous = agreed.get(key)
        if previous is None and not any(c.present for c in claims.values()):
            # known only as a past member of a receiving system: the agreed value is "not a member"
            previous = Agreed(False, None)
        decision = resolve(settings, claims, previous, now)
        stale += sum(1 for c in claims.values() if c.kind == "stale")
        conflicts += decision.conflict
        decisions[key] = (decision, sorted(s for s, c in claims.items() if c.present),
                          sorted(s for s, c in claims.items() if not c.present))

    rows = list(decisions.items())
    with ctx.warehouse.transaction():
        for table in (DECISIONS, PLAN):
            ctx.warehouse.execute(ctx.sql(f"DELETE FROM {table} WHERE run_id = {rid} AND segment = {seg}"))
        ctx.warehouse.upsert(DECISIONS, ["run_id", "segment", "customer_key"], pa.table({
            "run_id": [run_id] * len(rows), "segment": [policy.segment] * len(rows),
            "customer_key": pa.array([k for k, _ in rows], pa.string()),
            "as_of": pa.array([as_of] * len(rows), pa.timestamp("us")),
            "member": pa.array([d.member for _, (d, _, _) in rows], pa.bool_()),
            "changed_at": pa.array([d.changed_at for _, (d, _, _) in rows], pa.timestamp("us")),
            "rule": pa.array([d.rule for _, (d, _, _) in rows], pa.string()),
            "reason": pa.array([d.reason for _, (d, _, _) in rows], pa.string()),
            "source": pa.array([d.source for _, (d, _, _) in rows], pa.string()),
            "conflict": pa.array([d.conflict for _, (d, _, _) in rows], pa.bool_()),
            "present_in": pa.array([",".join(p) for _, (_, p, _) in rows], pa.string()),
            "absent_from": pa.array([",".join(a) for _, (_, _, a) in rows], pa.string()),
        }))

    # what the sync engine will do: consent and sendability per system, from its own desired query
    engine = ReconcileSyncEngine(ctx.project, ctx.warehouse, run_id)
    change_rows: list[tuple[str, str, bool, bool, str, str]] = []
    sets: dict[str, SystemChangeSet] = {}
    consent_ok: dict[str, dict[str, bool]] = {}
    addable: dict[str, dict[str, bool]] = {}
    holdings: dict[str, set[str]] = {}
    for system, sync in syncs.items():
        consent_ok[system], addable[system] = engine.sendability(sync, as_of)
        holdings[system] = (set(observed[system]) if system in policy.systems
                            else {k for k, w in written[system].items() if w.present})
        sets[system] = SystemChangeSet(policy.segment, system, system in policy.systems, len(holdings[system]))
    for key, (decision, _, _) in rows:
        for change in plan_changes(decision, key, {s: key in holdings[s] for s in syncs},
                                   {s: consent_ok[s].get(key, False) for s in syncs},
                                   {s: addable[s].get(key, False) for s in syncs}):
            change_rows.append((change.system, key, change.before, change.after, change.rule, change.reason))
            if change.after:
                sets[change.system].add += 1
            else:
                sets[change.system].remove += 1
    with ctx.warehouse.transaction():
        ctx.warehouse.upsert(PLAN, ["run_id", "segment", "system", "customer_key"], pa.table({
            "run_id": [run_id] * len(change_rows), "segment": [policy.segment] * len(change_rows),
            "system": pa.array([r[0] for r in change_rows], pa.string()),
            "customer_key": pa.array([r[1] for r in change_rows], pa.string()),
            "member_before": pa.array([r[2] for r in change_rows], pa.bool_()),
            "member_after": pa.array([r[3] for r in change_rows], pa.bool_()),
            "rule": pa.array([r[4] for r in change_rows], pa.string()),
            "reason": pa.array([r[5] for r in change_rows], pa.string()),
        }))
        ctx.warehouse.execute(ctx.sql(
            f"UPDATE {RUNS} SET status = 'planned', customers = {len(rows)}, conflicts = {conflicts}, "
            f"stale_edits = {stale}, planned_changes = {len(change_rows)} WHERE run_id = {rid} AND segment = {seg}"))
    result.segments[policy.segment] = {
        "policy": policy.policy, "customers": len(rows), "members": sum(1 for _, (d, _, _) in rows if d.member),
        "conflicts": conflicts, "stale_edits": stale, "planned_changes": len(change_rows),
        "max_change_fraction": policy.max_change_fraction}
    result.change_sets.extend(sets.values())
    log.info("reconcile %s plan of %s: %s", run_id, policy.segment, result.segments[policy.segment])


def load_plan(ctx: ReconcileContext, run_id: str) -> ReconcilePlan:
    """The plan of a run, as :func:`build_plan` returned it (for the gate and the operators)."""
    runs = ctx.run_segments(run_id)
    if not runs:
        raise ReconcileError(f"no reconcile run {run_id}")
    result = ReconcilePlan(run_id, min(a for _, a in runs.values()).isoformat())
    rid = text_literal(run_id)
    counts = {(seg, system): (readable, reported) for seg, system, readable, reported in ctx.warehouse.query(
        ctx.sql(f"SELECT segment, system, readable, reported_count FROM {COUNTS} WHERE run_id = {rid}"))}
    pulled = {(seg, system): n for seg, system, n in ctx.warehouse.query(ctx.sql(
        f"SELECT segment, system, COUNT(*) FROM {PULLS} WHERE run_id = {rid} GROUP BY segment, system"))}
    changes = {(seg, system, after): n for seg, system, after, n in ctx.warehouse.query(ctx.sql(
        f"SELECT segment, system, member_after, COUNT(*) FROM {PLAN} WHERE run_id = {rid} "
        "GROUP BY segment, system, member_after"))}
    for segment, policy_name, customers, conflicts, stale, planned in ctx.warehouse.query(ctx.sql(
            f"SELECT segment, policy, customers, conflicts, stale_edits, planned_changes FROM {RUNS} "
            f"WHERE run_id = {rid} ORDER BY segment")):
        policy = ctx.project.reconcile[segment]
        result.segments[segment] = {"policy": policy_name, "customers": customers, "conflicts": conflicts,
                                    "stale_edits": stale, "planned_changes": planned,
                                    "max_change_fraction": policy.max_change_fraction}
        for sync in ctx.syncs_of(policy):
            readable, reported = counts.get((segment, sync.destination), (False, None))
            size = pulled.get((segment, sync.destination), 0) if readable else \
                SyncEngine(ctx.project, ctx.warehouse).destination_count(sync)
            result.change_sets.append(SystemChangeSet(
                segment, sync.destination, bool(readable), size,
                changes.get((segment, sync.destination, True), 0),
                changes.get((segment, sync.destination, False), 0)))
    return result

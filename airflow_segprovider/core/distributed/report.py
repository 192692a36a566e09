"""Step 5 of a reconcile, and what a run leaves to read: the drift report, the audit log, the conflicts.

The drift report gives the counts per system after the run (``segprovider_reconcile_drift``):
what each list held before, the changes planned and applied, the members the resolved list lets
the system hold (consent, identity) and, when measured, the list's size now.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from airflow_segprovider.core.distributed.context import ReconcileContext, utc_now
from airflow_segprovider.core.distributed.engine import ReconcileSyncEngine
from airflow_segprovider.core.sql.dialects import text_literal
from airflow_segprovider.core.state.distributed import AUDIT, COUNTS, DECISIONS, DRIFT, PLAN


def drift_report(ctx: ReconcileContext, run_id: str, *, measure: bool = True) -> list[dict[str, Any]]:
    """Counts per system of each reconciled segment of the run: before, planned, applied, after.

    :param measure: ask each system for its size now (``reported_after``); ``drift`` is that
        size minus the number of resolved members the system may hold (consent, identity).
    """
    ctx.ensure_tables()
    rid = text_literal(run_id)
    runs = ctx.known_run(run_id)
    engine = ReconcileSyncEngine(ctx.project, ctx.warehouse, run_id)
    report: list[dict[str, Any]] = []
    for policy in ctx.policies([s for s in runs if s in ctx.project.reconcile] or None):
        if policy.segment not in runs:
            continue
        seg = text_literal(policy.segment)
        before = {system: n for system, n in ctx.warehouse.query(ctx.sql(
            f"SELECT system, reported_count FROM {COUNTS} WHERE run_id = {rid} AND segment = {seg}"))}
        planned = {(s, a): n for s, a, n in ctx.warehouse.query(ctx.sql(
            f"SELECT system, member_after, COUNT(*) FROM {PLAN} WHERE run_id = {rid} AND segment = {seg} "
            "GROUP BY system, member_after"))}
        applied = {(s, a): n for s, a, n in ctx.warehouse.query(ctx.sql(
            f"SELECT system, member_after, COUNT(*) FROM {AUDIT} WHERE run_id = {rid} AND segment = {seg} "
            "GROUP BY system, member_after"))}
        for sync in ctx.syncs_of(policy):
            system = sync.destination
            consent_ok, _ = engine.sendability(sync, runs[policy.segment][1])
            resolved = sum(1 for ok in consent_ok.values() if ok)
            after = None
            if measure:
                client = ctx.clients(sync)
                try:
                    after = client.member_count()
                finally:
                    client.close()
            report.append({
                "segment": policy.segment, "system": system, "readable": system in policy.systems,
                "reported_before": before.get(system), "planned_add": planned.get((system, True), 0),
                "planned_remove": planned.get((system, False), 0), "applied_add": applied.get((system, True), 0),
                "applied_remove": applied.get((system, False), 0), "resolved_members": resolved,
                "reported_after": after, "drift": None if after is None else after - resolved})
    if report:
        now = utc_now()
        with ctx.warehouse.transaction():
            ctx.warehouse.upsert(DRIFT, ["run_id", "segment", "system"], pa.table({
                "run_id": [run_id] * len(report),
                **{name: pa.array([r[name] for r in report], pa.int64() if name not in ("segment", "system",
                                  "readable") else (pa.bool_() if name == "readable" else pa.string()))
                   for name in ("segment", "system", "readable", "reported_before", "planned_add",
                                "planned_remove", "applied_add", "applied_remove", "resolved_members",
                                "reported_after", "drift")},
                "measured_at": pa.array([now] * len(report), pa.timestamp("us"))}))
    return report


def read_audit(ctx: ReconcileContext, run_id: str | None = None) -> list[dict[str, Any]]:
    """The audit log: every change a destination accepted, of one run or of all."""
    where = f"WHERE run_id = {text_literal(run_id)} " if run_id else ""
    return ctx.warehouse.query_records(ctx.sql(
        f"SELECT run_id, system, customer_key, segment, member_before, member_after, rule, reason, sync_run_id, "
        f"applied_at FROM {AUDIT} {where}ORDER BY applied_at, system, customer_key"))


def read_conflicts(ctx: ReconcileContext, run_id: str) -> list[dict[str, Any]]:
    """The run's conflicts: each customer the systems disagreed on, with both sides and the rule that won."""
    return ctx.warehouse.query_records(ctx.sql(
        f"SELECT segment, customer_key, present_in, absent_from, member, rule, reason FROM {DECISIONS} "
        f"WHERE run_id = {text_literal(run_id)} AND conflict ORDER BY segment, customer_key"))

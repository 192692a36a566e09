"""Step 4 of a reconcile: push the decisions through the sync engine and log every accepted change.

The pulled lists are first recorded as the systems' known state and the decisions as the agreed
values (one transaction); then the ordinary sync engine runs with the decisions as its desired
state (:class:`~airflow_segprovider.core.distributed.engine.ReconcileSyncEngine`): safe-delete
guards, rejected records and the consent re-check all apply. Each acknowledged batch writes its
audit rows (run, system, customer key, segment, before, after, rule, reason) in the same
transaction as its state rows, so the audit log holds exactly the changes the destinations accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_segprovider.core.distributed.context import ReconcileContext, utc_now
from airflow_segprovider.core.distributed.engine import ReconcileSyncEngine
from airflow_segprovider.core.distributed.errors import ReconcileError
from airflow_segprovider.core.sql.dialects import text_literal, ts_literal
from airflow_segprovider.core.state.distributed import AGREED, AUDIT, COUNTS, DECISIONS, PLAN, PULLS, RUNS
from airflow_segprovider.core.state.sync import STATE, state_rows
from airflow_segprovider.core.sync.plan import SyncOptions

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import ReconcilePolicy


def apply_plan(ctx: ReconcileContext, run_id: str, *, options: SyncOptions | None = None,
               segments: Sequence[str] | None = None, allow_large_change: bool = False) -> dict[str, Any]:
    """Push the decisions to every system through the sync engine and log each accepted change.

    Safe to rerun after a failure: what was acknowledged is in the state table and the audit
    log, and the rerun sends only the rest.

    :param allow_large_change: the change-set gate's override; it also lifts the sync engine's own
        remove-fraction guard (``allow_mass_removal``), which would otherwise stop the same change.
    """
    ctx.ensure_tables()
    options = options or SyncOptions()
    if allow_large_change:
        options = replace(options, allow_mass_removal=True)
    runs = ctx.known_run(run_id)
    summary: dict[str, Any] = {}
    for policy in ctx.policies(segments):
        if policy.segment not in runs:
            continue
        status, as_of = runs[policy.segment]
        if status == "blocked":
            raise ReconcileError(f"reconcile run {run_id} of {policy.segment!r} was blocked by the change-set "
                                 "gate; nothing is applied")
        if status not in ("planned", "applying", "partial", "failed"):
            raise ReconcileError(f"reconcile run {run_id} of {policy.segment!r} is {status}; plan it first")
        _absorb(ctx, run_id, policy)
        engine = ReconcileSyncEngine(ctx.project, ctx.warehouse, run_id)
        applied: dict[str, Any] = {}
        error: str | None = None
        pending = {system for (system,) in ctx.warehouse.query(ctx.sql(
            f"SELECT DISTINCT system FROM {PLAN} WHERE run_id = {text_literal(run_id)} "
            f"AND segment = {text_literal(policy.segment)}"))}
        try:
            for sync in ctx.syncs_of(policy):
                if sync.destination not in pending:  # nothing planned for this list: nothing to send
                    applied[sync.destination] = {"added": 0, "removed": 0, "rejected": 0, "status": "unchanged"}
                    continue
                client = ctx.clients(sync)
                try:
                    record = engine.run(sync, client, as_of, options=options,
                                        run_id=f"{run_id}__{sync.destination}")
                finally:
                    client.close()
                applied[sync.destination] = {"added": record.succeeded["add"],
                                             "removed": record.succeeded["remove"],
                                             "rejected": sum(record.failed.values()), "status": record.status}
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            _finish(ctx, run_id, policy.segment, applied, error)
        summary[policy.segment] = applied
    return summary


def _absorb(ctx: ReconcileContext, run_id: str, policy: ReconcilePolicy) -> None:
    """Record the pulled lists as what each system holds, and the decisions as agreed: once per run.

    From here on a system's list differing from its state row is a new edit, and our own writes
    (committed by the engine as they are acknowledged) match their state rows.
    """
    rid, seg = text_literal(run_id), text_literal(policy.segment)
    done = ctx.warehouse.query(ctx.sql(
        f"SELECT absorbed FROM {RUNS} WHERE run_id = {rid} AND segment = {seg}"))
    if done and done[0][0]:
        return
    with ctx.warehouse.transaction():
        for sync in ctx.syncs_of(policy):
            if sync.destination not in policy.systems:
                continue
            sid, system = text_literal(sync.id), text_literal(sync.destination)
            pulled = (f"SELECT customer_key, identity, destination_id, pulled_at FROM {PULLS} "
                      f"WHERE run_id = {rid} AND segment = {seg} AND system = {system}")
            appeared = ctx.warehouse.query(ctx.sql(
                f"SELECT p.customer_key, p.identity, p.destination_id, p.pulled_at, s.row_hash FROM ({pulled}) AS p "
                f"LEFT JOIN {STATE} AS s ON s.sync_id = {sid} AND s.customer_key = p.customer_key "
                "WHERE s.customer_key IS NULL OR NOT s.in_destination"))
            if appeared:
                rows = state_rows(sync.id, [r[0] for r in appeared], [r[1] for r in appeared],
                                  [r[4] for r in appeared], [r[2] for r in appeared], True, "observed", run_id)
                ctx.warehouse.upsert(STATE, ["sync_id", "customer_key"], rows.set_column(
                    rows.schema.get_field_index("synced_at"), "synced_at",
                    pa.array([r[3] for r in appeared], pa.timestamp("us"))))
            pulled_at = ctx.warehouse.query(ctx.sql(
                f"SELECT pulled_at FROM {COUNTS} WHERE run_id = {rid} AND segment = {seg} AND system = {system}"))
            ctx.warehouse.execute(ctx.sql(
                f"UPDATE {STATE} SET in_destination = FALSE, origin = 'observed', "
                f"synced_at = {ts_literal(pulled_at[0][0])}, run_id = {rid} "
                f"WHERE sync_id = {sid} AND in_destination AND customer_key NOT IN "
                f"(SELECT customer_key FROM ({pulled}) AS p)"))
        ctx.warehouse.execute(ctx.sql(
            f"DELETE FROM {AGREED} WHERE segment = {seg} AND customer_key IN "
            f"(SELECT customer_key FROM {DECISIONS} WHERE run_id = {rid} AND segment = {seg})"))
        ctx.warehouse.execute(ctx.sql(
            f"INSERT INTO {AGREED} (segment, customer_key, member, changed_at, rule, run_id) "
            f"SELECT segment, customer_key, member, changed_at, rule, run_id FROM {DECISIONS} "
            f"WHERE run_id = {rid} AND segment = {seg}"))
        ctx.warehouse.execute(ctx.sql(
            f"UPDATE {RUNS} SET absorbed = TRUE, status = 'applying' WHERE run_id = {rid} AND segment = {seg}"))


def _finish(ctx: ReconcileContext, run_id: str, segment: str, applied: dict[str, Any], error: str | None) -> None:
    rid, seg = text_literal(run_id), text_literal(segment)
    count = ctx.warehouse.query(ctx.sql(
        f"SELECT COUNT(*) FROM {AUDIT} WHERE run_id = {rid} AND segment = {seg}"))[0][0]
    rejected = sum(a["rejected"] for a in applied.values())
    status = "failed" if error else ("partial" if rejected else "applied")
    with ctx.warehouse.transaction():
        ctx.warehouse.execute(ctx.sql(
            f"UPDATE {RUNS} SET status = {text_literal(status)}, applied_changes = {int(count)}, "
            f"rejected = {int(rejected)}, error = {text_literal(error[:1000]) if error else 'NULL'}, "
            f"finished_at = {ts_literal(utc_now())} WHERE run_id = {rid} AND segment = {seg}"))

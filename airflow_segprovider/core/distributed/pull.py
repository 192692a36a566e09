"""Step 1 of a reconcile: pull every tool's list and stage it with the time each system reports.

Each readable system's list (Mailchimp segment or tag members, HubSpot list memberships) is read
through the destination clients (the shared HTTP layer: paging, rate limits, retries), its
identities matched to customer keys and staged in ``segprovider_reconcile_pulls``. Systems that
cannot be read back (Meta) give their reported count (``segprovider_reconcile_counts``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_segprovider.core.distributed.context import ReconcileContext, utc_now
from airflow_segprovider.core.distributed.errors import ReconcileError
from airflow_segprovider.core.evaluate.customers import customer_relation_sql
from airflow_segprovider.core.sql.dialects import text_literal
from airflow_segprovider.core.state.distributed import COUNTS, PULLS, RUNS

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Destination, ReconcilePolicy

log = logging.getLogger(__name__)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """Vendor timestamps (with offsets) as naive UTC, the warehouse's convention."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


def pull_lists(ctx: ReconcileContext, run_id: str, as_of: dt.datetime,
               segments: Sequence[str] | None = None) -> dict[str, Any]:
    """Stage every system's list of each reconciled segment; returns counts per segment and system."""
    ctx.ensure_tables()
    summary: dict[str, Any] = {}
    for policy in ctx.policies(segments):
        summary[policy.segment] = {}
        _start_run(ctx, run_id, policy, as_of)
        for sync in ctx.syncs_of(policy):
            destination = ctx.project.destinations[sync.destination]
            readable = sync.destination in policy.systems
            client = ctx.clients(sync)
            try:
                pulled_at = utc_now()
                members = list(client.iter_members()) if readable else []
                reported = client.member_count()
            finally:
                client.close()
            keyed = _match(ctx, destination, [(m.identity, m.destination_id, _utc(m.last_changed))
                                         for m in members], as_of) if readable else []
            matched_identities = {identity.strip().lower() for _, identity, _, _ in keyed}
            unmatched = len({m.identity.strip().lower() for m in members} - matched_identities)
            with ctx.warehouse.transaction():
                ctx.warehouse.execute(ctx.sql(
                    f"DELETE FROM {PULLS} WHERE run_id = {text_literal(run_id)} AND segment = "
                    f"{text_literal(policy.segment)} AND system = {text_literal(sync.destination)}"))
                if keyed:
                    ctx.warehouse.upsert(PULLS, ["run_id", "segment", "system", "customer_key"], pa.table({
                        "run_id": [run_id] * len(keyed), "segment": [policy.segment] * len(keyed),
                        "system": [sync.destination] * len(keyed),
                        "customer_key": [k for k, _, _, _ in keyed],
                        "identity": [i for _, i, _, _ in keyed],
                        "destination_id": pa.array([d for _, _, d, _ in keyed], pa.string()),
                        "changed_at": pa.array([c for _, _, _, c in keyed], pa.timestamp("us")),
                        "pulled_at": pa.array([pulled_at] * len(keyed), pa.timestamp("us")),
                    }))
                ctx.warehouse.upsert(COUNTS, ["run_id", "segment", "system"], pa.table({
                    "run_id": [run_id], "segment": [policy.segment], "system": [sync.destination],
                    "kind": [destination.kind], "readable": [readable],
                    "reported_count": pa.array([reported], pa.int64()),
                    "pulled_members": pa.array([len(members) if readable else None], pa.int64()),
                    "matched": pa.array([len({k for k, _, _, _ in keyed}) if readable else None], pa.int64()),
                    "unmatched": pa.array([unmatched if readable else None], pa.int64()),
                    "pulled_at": pa.array([pulled_at], pa.timestamp("us")),
                }))
            summary[policy.segment][sync.destination] = {
                "readable": readable, "reported_count": reported,
                "pulled": len(members) if readable else None,
                "matched": len({k for k, _, _, _ in keyed}) if readable else None,
                "unmatched": unmatched if readable else None}
            log.info("reconcile %s: pulled %s of %s: %s", run_id, sync.destination, policy.segment,
                     summary[policy.segment][sync.destination])
    return summary


def _start_run(ctx: ReconcileContext, run_id: str, policy: ReconcilePolicy, as_of: dt.datetime) -> None:
    status = ctx.run_segments(run_id).get(policy.segment)
    if status is not None and status[0] in ("applying", "applied", "partial"):
        raise ReconcileError(f"reconcile run {run_id} of {policy.segment!r} was already applied ({status[0]}); "
                             "start a new run to pull again")
    with ctx.warehouse.transaction():
        ctx.warehouse.upsert(RUNS, ["run_id", "segment"], pa.table({
            "run_id": [run_id], "segment": [policy.segment],
            "as_of": pa.array([as_of], pa.timestamp("us")), "policy": [policy.policy], "status": ["pulled"],
            "customers": pa.array([None], pa.int64()), "conflicts": pa.array([None], pa.int64()),
            "stale_edits": pa.array([None], pa.int64()), "planned_changes": pa.array([None], pa.int64()),
            "applied_changes": pa.array([None], pa.int64()), "rejected": pa.array([None], pa.int64()),
            "absorbed": [False], "error": pa.array([None], pa.string()),
            "started_at": pa.array([utc_now()], pa.timestamp("us")),
            "finished_at": pa.array([None], pa.timestamp("us"))}))


def _match(ctx: ReconcileContext, destination: Destination, members: list[tuple[str, str | None, dt.datetime | None]],
           as_of: dt.datetime) -> list[tuple[str, str, str | None, dt.datetime | None]]:
    """``(customer key, identity, destination id, changed at)`` of the members the customer table knows
    (by the identities valid at ``as_of``, as the reconcile's syncs send them)."""
    customer = ctx.project.model.customer
    identity_col = customer.attributes[destination.identity].column
    by_identity = {identity.strip().lower(): (identity, vendor_id, changed)
                   for identity, vendor_id, changed in members if identity and identity.strip()}
    names = list(by_identity)
    out: list[tuple[str, str, str | None, dt.datetime | None]] = []
    # in chunks: the list has the destination's size, not the customer table's
    for start in range(0, len(names), 5000):
        values = ", ".join(text_literal(i) for i in names[start:start + 5000])
        for key, identity in ctx.warehouse.query(ctx.sql(
                f"SELECT CAST(\"{customer.key}\" AS VARCHAR), LOWER(TRIM(CAST(\"{identity_col}\" AS VARCHAR))) "
                f"FROM {customer_relation_sql(ctx.project, ctx.warehouse.schema, as_of)} "
                f"WHERE LOWER(TRIM(CAST(\"{identity_col}\" AS VARCHAR))) IN ({values})")):
            original, vendor_id, changed = by_identity[identity]
            out.append((key, original, vendor_id, changed))
    return out

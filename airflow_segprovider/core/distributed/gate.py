"""Step 3 of a reconcile: the change-set gate.

A run that would change more than ``max_change_fraction`` of any list (or remove more than the
sync's ``max_remove_fraction``) is stopped before anything is sent: a bulk edit or an import in
one tool must not spread to every other tool unchecked.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from airflow_segprovider.core.distributed.context import ReconcileContext, utc_now
from airflow_segprovider.core.distributed.errors import ReconcileError
from airflow_segprovider.core.distributed.plan import ReconcilePlan, load_plan
from airflow_segprovider.core.sql.dialects import text_literal, ts_literal
from airflow_segprovider.core.state.distributed import RUNS


class ChangeSetTooLargeError(ReconcileError):
    """The change-set gate: the reconcile would change more than ``max_change_fraction`` of a list."""

    def __init__(self, message: str, offenders: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.offenders = offenders

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.offenders))


def check_change_set(ctx: ReconcileContext, run_id: str, *, allow_large_change: bool = False) -> ReconcilePlan:
    """Stop a run that would change more than ``max_change_fraction`` of any list.

    :raises ChangeSetTooLargeError: naming each list, its size, the changes and the limit; the
        run is marked ``blocked`` and :func:`~airflow_segprovider.core.distributed.apply.apply_plan` refuses it.
    """
    plan = load_plan(ctx, run_id)
    offenders = []
    syncs = {(s.segment, s.destination): s for s in ctx.project.syncs}
    for change_set in plan.change_sets:
        limit = ctx.project.reconcile[change_set.segment].max_change_fraction
        # the sync engine's own guard would stop the removals halfway through the apply: stop here instead
        remove_limit = syncs[(change_set.segment, change_set.system)].max_remove_fraction
        too_many = change_set.changes and change_set.fraction > limit
        too_many_removals = (change_set.size_before and
                             change_set.remove > remove_limit * change_set.size_before)
        if too_many or too_many_removals:
            offenders.append({**asdict(change_set), "changes": change_set.changes,
                              "fraction": round(change_set.fraction, 4), "max_change_fraction": limit,
                              "max_remove_fraction": remove_limit,
                              "limit": "max_change_fraction" if too_many else "max_remove_fraction"})
    if offenders and not allow_large_change:
        with ctx.warehouse.transaction():
            for segment in sorted({o["segment"] for o in offenders}):
                ctx.warehouse.execute(ctx.sql(
                    f"UPDATE {RUNS} SET status = 'blocked', finished_at = {ts_literal(utc_now())} "
                    f"WHERE run_id = {text_literal(run_id)} AND segment = {text_literal(segment)}"))
        lines = [f"{o['segment']} in {o['system']}: {o['changes']} changes (+{o['add']} -{o['remove']}) to a "
                 f"list of {o['size_before']} = {o['fraction']:.0%} > max_change_fraction "
                 f"{o['max_change_fraction']:.0%}" if o["limit"] == "max_change_fraction" else
                 f"{o['segment']} in {o['system']}: {o['remove']} removals from a list of {o['size_before']} "
                 f"> the sync's max_remove_fraction {o['max_remove_fraction']:.0%}" for o in offenders]
        raise ChangeSetTooLargeError(
            f"reconcile {run_id} stopped before changing anything: " + "; ".join(lines)
            + ". Check the lists (a bulk edit, an import, a wrong policy?), then rerun with "
            "allow_large_change if it is intended", offenders)
    return plan

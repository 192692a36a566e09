"""The distributed model on a warehouse: pull every tool's list, compare, resolve, push, log, never loop.

One reconcile run, for every segment with a ``reconcile:`` policy:

1. :meth:`Reconciler.pull` reads each readable system's list (Mailchimp segment or tag members,
   HubSpot list memberships) through the destination clients (the shared HTTP layer: paging, rate
   limits, retries), matches identities to customer keys and stages them in
   ``segprovider_reconcile_pulls`` with the time each system reports for each membership. Systems
   that cannot be read back (Meta) give their reported count (``segprovider_reconcile_counts``).
2. :meth:`Reconciler.plan` compares, per customer, presence in each system with what this project
   last wrote there (the sync engine's state table) and with the last agreed value
   (``segprovider_reconcile_state``), resolves with :mod:`airflow_segprovider.core.distributed.policy`, and
   writes the decisions (conflicts with both sides) and the exact change set the sync engine will
   send (``segprovider_reconcile_plan``). Nothing else changes: a blocked plan leaves no trace but itself.
3. :meth:`Reconciler.check_change_set` stops a run that would change more than
   ``max_change_fraction`` of any list.
4. :meth:`Reconciler.apply` records the pulled lists as the systems' known state and the decisions
   as the agreed values (one transaction), then runs the ordinary :class:`~airflow_segprovider.core.sync.engine.SyncEngine`
   with the decisions as its desired state: safe-delete guards, rejected records and the consent
   re-check all apply. Each acknowledged batch writes its audit rows (run, system, customer key,
   segment, before, after, rule, reason) in the same transaction as its state rows, so the audit
   log holds exactly the changes the destinations accepted.
5. :meth:`Reconciler.drift_report` gives the counts per system after the run.

Each step lives in its own module (:mod:`~airflow_segprovider.core.distributed.pull`,
:mod:`~airflow_segprovider.core.distributed.plan`, :mod:`~airflow_segprovider.core.distributed.gate`,
:mod:`~airflow_segprovider.core.distributed.apply`, :mod:`~airflow_segprovider.core.distributed.report`);
the tables are :mod:`airflow_segprovider.core.state.distributed`'s. :class:`Reconciler` composes them.

Nothing here imports Airflow: the operators and the CLI pass in a warehouse and a way to build clients.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.distributed.apply import apply_plan
from airflow_segprovider.core.distributed.context import ReconcileContext, new_run_id, utc_now
from airflow_segprovider.core.distributed.gate import check_change_set
from airflow_segprovider.core.distributed.plan import build_plan, load_plan
from airflow_segprovider.core.distributed.pull import pull_lists
from airflow_segprovider.core.distributed.report import drift_report, read_audit, read_conflicts

if TYPE_CHECKING:
    from airflow_segprovider.core.distributed.plan import ReconcilePlan
    from airflow_segprovider.core.sync.plan import SyncOptions


class Reconciler(ReconcileContext):
    """Runs the distributed model's steps for a project's reconciled segments on one warehouse.

    :param project: the validated project (its ``reconcile`` policies).
    :param warehouse: where staging, decisions, the audit log and the sync state live.
    :param clients: builds the destination client of one sync (the caller owns connections).
    """

    def pull(self, run_id: str, as_of: dt.datetime, segments: Sequence[str] | None = None) -> dict[str, Any]:
        """Stage every system's list of each reconciled segment; returns counts per segment and system."""
        return pull_lists(self, run_id, as_of, segments)

    def plan(self, run_id: str, segments: Sequence[str] | None = None) -> ReconcilePlan:
        """Resolve every customer of each pulled segment and write the decisions and the change set."""
        return build_plan(self, run_id, segments)

    def load_plan(self, run_id: str) -> ReconcilePlan:
        """The plan of a run, as :meth:`plan` returned it (for the gate and the operators)."""
        return load_plan(self, run_id)

    def check_change_set(self, run_id: str, *, allow_large_change: bool = False) -> ReconcilePlan:
        """Stop a run that would change more than ``max_change_fraction`` of any list.

        :raises ChangeSetTooLargeError: naming each list, its size, the changes and the limit; the
            run is marked ``blocked`` and :meth:`apply` refuses it.
        """
        return check_change_set(self, run_id, allow_large_change=allow_large_change)

    def apply(self, run_id: str, *, options: SyncOptions | None = None,
              segments: Sequence[str] | None = None, allow_large_change: bool = False) -> dict[str, Any]:
        """Push the decisions to every system through the sync engine and log each accepted change.

        Safe to rerun after a failure: what was acknowledged is in the state table and the audit
        log, and the rerun sends only the rest.

        :param allow_large_change: the change-set gate's override; it also lifts the sync engine's own
            remove-fraction guard (``allow_mass_removal``), which would otherwise stop the same change.
        """
        return apply_plan(self, run_id, options=options, segments=segments, allow_large_change=allow_large_change)

    def drift_report(self, run_id: str, *, measure: bool = True) -> list[dict[str, Any]]:
        """Counts per system of each reconciled segment of the run: before, planned, applied, after.

        :param measure: ask each system for its size now (``reported_after``); ``drift`` is that
            size minus the number of resolved members the system may hold (consent, identity).
        """
        return drift_report(self, run_id, measure=measure)

    def reconcile(self, *, as_of: dt.datetime | None = None, run_id: str | None = None,
                  segments: Sequence[str] | None = None, options: SyncOptions | None = None,
                  allow_large_change: bool = False, dry_run: bool = False) -> dict[str, Any]:
        """Pull, plan, gate and (unless ``dry_run``) apply; returns the plan and what was applied."""
        run_id = run_id or new_run_id()
        as_of = as_of or utc_now()
        self.pull(run_id, as_of, segments)
        self.plan(run_id, segments)
        plan = self.check_change_set(run_id, allow_large_change=allow_large_change)
        applied = {} if dry_run else self.apply(run_id, options=options, segments=segments,
                                                allow_large_change=allow_large_change)
        return {"run_id": run_id, "plan": plan.to_dict(), "applied": applied}

    def audit(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The audit log: every change a destination accepted, of one run or of all."""
        return read_audit(self, run_id)

    def conflicts(self, run_id: str) -> list[dict[str, Any]]:
        """The run's conflicts: each customer the systems disagreed on, with both sides and the rule that won."""
        return read_conflicts(self, run_id)

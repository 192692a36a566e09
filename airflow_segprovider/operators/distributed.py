"""The distributed model's steps as Airflow tasks: pull, plan, change-set gate, apply, drift report.

Thin wrappers over :class:`~airflow_segprovider.core.distributed.reconciler.Reconciler`: every step reads
and writes the warehouse, so a retried task resumes from what the previous try committed. The
pull names the reconcile run (the Airflow run id and the pull's try) and pushes it to XCom; the
later steps read it from there, so a cleared and rerun DAG run reconciles afresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_segprovider.operators.base import SegmentsBaseOperator, as_flag, historical_reason

if TYPE_CHECKING:
    import datetime as dt

    from airflow.sdk import Context

    from airflow_segprovider.core.distributed.reconciler import Reconciler
    from airflow_segprovider.core.warehouses.base import Warehouse


RUN_ID_KEY = "reconcile_run_id"
PULLED_RUN_ID = "{{ ti.xcom_pull(task_ids='pull', key='" + RUN_ID_KEY + "') }}"


class ReconcileBaseOperator(SegmentsBaseOperator):
    """Base of the reconcile steps.

    :param reconcile_run_id: the reconcile run this step belongs to (templated; default the one the
        ``pull`` task started).
    :param segments: reconciled segments to work on; all when empty.
    """

    template_fields: Sequence[str] = (*SegmentsBaseOperator.template_fields, "reconcile_run_id")
    ui_color = "#f3e8fd"

    def __init__(self, *, reconcile_run_id: str | None = PULLED_RUN_ID, segments: Sequence[str] = (),
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reconcile_run_id = reconcile_run_id
        self.segments = list(segments)

    def reconciler(self, warehouse: Warehouse) -> Reconciler:
        from airflow_segprovider.core.distributed.reconciler import Reconciler
        from airflow_segprovider.hooks.destination import hook_for_destination

        project = self.project

        def clients(sync):
            return hook_for_destination(project.destinations[sync.destination]).get_client(project, sync)

        return Reconciler(project, warehouse, clients)


def distributed_historical_reason(context: Context, reconciler: Reconciler, segments: Sequence[str],
                                  as_of: dt.datetime) -> str | None:
    """Why this run must not reconcile: a backfill, or a newer reconcile already ran.

    The lists are read as they are now, so a reconcile of a past interval would push today's
    decisions under yesterday's name: backfills never pull, plan or push.
    """
    reason = historical_reason(context, reconciler.warehouse, [], as_of)
    if reason:
        return reason
    newest = reconciler.latest_as_of(segments)
    if newest is not None and newest > as_of:
        return (f"a newer reconcile ran (as_of {newest.isoformat()} > {as_of.isoformat()}): only the latest run "
                "reconciles, history is never pushed")
    return None


class ReconcilePullOperator(ReconcileBaseOperator):
    """Read every system's list of each reconciled segment and stage it in the warehouse.

    Starts the reconcile run (``<airflow run id>__pull<try>`` unless ``reconcile_run_id`` is given)
    and pushes its id to XCom under ``reconcile_run_id``. Skipped for backfills and for runs older
    than the newest reconcile (the skip propagates: nothing downstream runs).
    """

    def __init__(self, *, reconcile_run_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(reconcile_run_id=reconcile_run_id, **kwargs)

    def execute_step(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        if not self.reconcile_run_id:
            self.reconcile_run_id = f"{context['run_id']}__pull{context['ti'].try_number}"
        context["ti"].xcom_push(key=RUN_ID_KEY, value=self.reconcile_run_id)
        as_of = self.as_of_value()
        with self.warehouse() as warehouse:
            reconciler = self.reconciler(warehouse)
            segments = [p.segment for p in reconciler.policies(self.segments or None)]
            reason = distributed_historical_reason(context, reconciler, segments, as_of)
            if reason:
                raise AirflowSkipException(f"not reconciling: {reason}")
            summary = reconciler.pull(self.reconcile_run_id, as_of, self.segments or None)
        self.log.info("pulled: %s", summary)
        return summary


class ReconcilePlanOperator(ReconcileBaseOperator):
    """Compare the pulled lists, resolve each customer by the segment's policy, write decisions and change set."""

    def execute_step(self, context: Context) -> dict[str, Any]:
        with self.warehouse() as warehouse:
            reconciler = self.reconciler(warehouse)
            plan = reconciler.plan(self.reconcile_run_id, self.segments or None)
            conflicts = reconciler.conflicts(self.reconcile_run_id)
        for conflict in conflicts[:20]:
            self.log.info("conflict %s/%s: in %s, not in %s -> %s by %s: %s", conflict["segment"],
                          conflict["customer_key"], conflict["present_in"] or "-", conflict["absent_from"] or "-",
                          "member" if conflict["member"] else "not a member", conflict["rule"], conflict["reason"])
        summary = plan.to_dict()
        self.log.info("plan: %s", summary)
        return summary


class ReconcileChangeSetGateOperator(ReconcileBaseOperator):
    """Stop (and alert) when the reconcile would change more than ``max_change_fraction`` of a list.

    :param allow_large_change: let this run through anyway (templated, e.g. ``{{ params.allow_large_change }}``).
    """

    template_fields: Sequence[str] = (*ReconcileBaseOperator.template_fields, "allow_large_change")
    ui_color = "#fff3cd"

    def __init__(self, *, allow_large_change: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_large_change = allow_large_change

    def execute_step(self, context: Context) -> dict[str, Any]:
        from airflow_segprovider.core.distributed import ChangeSetTooLargeError

        with self.warehouse() as warehouse:
            reconciler = self.reconciler(warehouse)
            try:
                plan = reconciler.check_change_set(self.reconcile_run_id,
                                                   allow_large_change=as_flag(self.allow_large_change))
            except ChangeSetTooLargeError as exc:
                # shaped like a gate result, so the alert lists each list with its observed fraction
                context["ti"].xcom_push(key="gate_result", value={
                    "gate": "reconcile_change_set", "success": False,
                    "failed": [{"expectation_type": "change_fraction_at_most", "column": f"{o['segment']}/{o['system']}",
                                "observed_value": o["fraction"] if o["limit"] == "max_change_fraction"
                                else o["remove"],
                                "kwargs": {o["limit"]: o[o["limit"]], "size": o["size_before"], "add": o["add"],
                                           "remove": o["remove"]},
                                "notes": "set allow_large_change to apply it anyway"} for o in exc.offenders]})
                raise
        summary = plan.to_dict()
        self.log.info("change set within limits: %s", [(c["segment"], c["system"], c["changes"], c["fraction"])
                                                      for c in summary["change_sets"]])
        return summary


class ReconcileApplyOperator(ReconcileBaseOperator):
    """Push the decisions through the sync engine; every accepted change is written to the audit log.

    :param dry_run: stop after the plan (templated).
    :param allow_large_change: also lifts the sync engine's remove-fraction guard (templated).
    """

    template_fields: Sequence[str] = (*ReconcileBaseOperator.template_fields, "dry_run", "allow_large_change")
    ui_color = "#dbe9f6"

    def __init__(self, *, dry_run: bool | str = False, allow_large_change: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dry_run = dry_run
        self.allow_large_change = allow_large_change

    def execute_step(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from airflow_segprovider.core.state.distributed import PLAN

        if as_flag(self.dry_run):
            raise AirflowSkipException(f"dry run: the plan is in {PLAN}; nothing is pushed")
        with self.warehouse() as warehouse:
            applied = self.reconciler(warehouse).apply(self.reconcile_run_id, segments=self.segments or None,
                                                       allow_large_change=as_flag(self.allow_large_change))
        self.log.info("applied: %s", applied)
        return applied


class ReconcileDriftReportOperator(ReconcileBaseOperator):
    """Counts per system after the run (reported size, planned and applied changes, drift), kept in the warehouse.

    :param max_drift: fail (and alert) when a readable system's size differs from the resolved list by more.
    """

    def __init__(self, *, max_drift: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_drift = max_drift

    def execute_step(self, context: Context) -> list[dict[str, Any]]:
        from airflow.sdk.exceptions import AirflowFailException

        with self.warehouse() as warehouse:
            report = self.reconciler(warehouse).drift_report(self.reconcile_run_id)
        for row in report:
            self.log.info("drift %s/%s: reported %s -> %s, resolved %s, +%s -%s applied, drift %s", row["segment"],
                          row["system"], row["reported_before"], row["reported_after"], row["resolved_members"],
                          row["applied_add"], row["applied_remove"], row["drift"])
        if self.max_drift is not None:
            drifting = [r for r in report if r["readable"] and r["drift"] is not None and abs(r["drift"]) > self.max_drift]
            if drifting:
                raise AirflowFailException("lists still drift after the reconcile: " + "; ".join(
                    f"{r['segment']} in {r['system']}: {r['reported_after']} members, {r['resolved_members']} resolved"
                    for r in drifting))
        return report

"""Build the distributed model's DAG from a segments project's ``reconcile:`` section.

Like :mod:`airflow_segprovider.factory.centralized`, building reads only the project's files, never a
connection or a Variable.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from airflow.sdk import DAG, Param

from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.state.distributed import AUDIT, PLAN
from airflow_segprovider.factory.skeleton import (
    DEFAULT_START,
    DEFAULT_WAREHOUSE_POOL,
    project_asset,
    segments_dag,
    warehouse_task_args,
)
from airflow_segprovider.notifications.alert import DEFAULT_ALERT_CONN_ID
from airflow_segprovider.operators.base import DEFAULT_WAREHOUSE_CONN_ID
from airflow_segprovider.operators.distributed import (
    ReconcileApplyOperator,
    ReconcileChangeSetGateOperator,
    ReconcileDriftReportOperator,
    ReconcilePlanOperator,
    ReconcilePullOperator,
)

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project


def _doc(project: Project, schedule: str) -> str:
    lines = [f"# Segments, distributed: `{project.name}`", "",
             "Each tool keeps its own lists; this DAG makes them agree. Pull every readable list (with the time "
             "each membership changed) → compare with what was last written and agreed → resolve each customer by "
             "the segment's policy → change-set gate → apply through the sync engine (safe deletes, rejected "
             f"records, consent) with every accepted change in `{AUDIT}` → drift report.", "",
             "Our own writes are recognised on the next pull and never replayed; an edit older than the value "
             "last written to its system is skipped.", "",
             f"Schedule `{schedule}`. **Backfills** and runs older than the newest reconcile do nothing: the "
             "lists are read as they are now, so history is never pushed.", "",
             "| segment | policy | systems compared | max change |", "|---|---|---|---|"]
    for name, policy in project.reconcile.items():
        rule = policy.policy + (f" ({policy.authority})" if policy.authority else "") + (
            f", tie_break {policy.tie_break}" if policy.policy == "most_recent" else "")
        lines.append(f"| `{name}` | {rule} | {', '.join(policy.systems)} | {policy.max_change_fraction:.0%} |")
    lines += ["", "Trigger with `dry_run: true` to pull and plan without pushing (see "
              f"`{PLAN}`); `allow_large_change: true` lets one run through the change-set gate."]
    return "\n".join(lines)


def build_distributed_dag(project_path: str | Path, *, dag_id: str = "segments_distributed",
                          schedule: str | None = "@hourly", start_date: dt.datetime = DEFAULT_START,
                          warehouse_conn_id: str = DEFAULT_WAREHOUSE_CONN_ID,
                          alert_conn_id: str = DEFAULT_ALERT_CONN_ID, owner: str = "data-engineering",
                          retries: int = 2, max_drift: int | None = None, tags: tuple[str, ...] = (),
                          warehouse_pool: str | None = DEFAULT_WAREHOUSE_POOL) -> DAG:
    """Build the distributed-model DAG for the project in ``project_path``.

    :param schedule: how often the lists are reconciled (edits made in between are resolved together).
    :param max_drift: fail the drift report when a list differs from the resolved one by more members.
    """
    project_path = str(Path(project_path).resolve())
    project = load_project(project_path)
    common = warehouse_task_args(project_path, warehouse_conn_id, warehouse_pool)
    with segments_dag(
        project, model="distributed", dag_id=dag_id, schedule=schedule, start_date=start_date, owner=owner,
        retries=retries, alert_conn_id=alert_conn_id, doc_md=_doc(project, str(schedule)), tags=tags,
        params={"dry_run": Param(False, type="boolean", description="pull and plan without pushing"),
                "allow_large_change": Param(False, type="boolean",
                                            description="let this run change more than max_change_fraction")},
    ) as dag:
        pull = ReconcilePullOperator(task_id="pull", outlets=[project_asset(project, "reconcile/pulls")], **common)
        plan = ReconcilePlanOperator(task_id="plan", outlets=[project_asset(project, "reconcile/plan")], **common)
        gate = ReconcileChangeSetGateOperator(task_id="gate_change_set",
                                              allow_large_change="{{ params.allow_large_change }}", **common)
        apply = ReconcileApplyOperator(task_id="apply", dry_run="{{ params.dry_run }}",
                                       allow_large_change="{{ params.allow_large_change }}",
                                       outlets=[project_asset(project, "reconcile/audit"),
                                                project_asset(project, "sync_state")], **common)
        drift = ReconcileDriftReportOperator(task_id="drift_report", max_drift=max_drift,
                                             trigger_rule="none_failed",
                                             outlets=[project_asset(project, "reconcile/drift")], **common)
        pull >> plan >> gate >> apply >> drift
    return dag

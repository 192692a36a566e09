"""The centralized model's DAG: ingest, gate, evaluate every segment in the warehouse, gate, sync changes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, Param, TaskGroup

from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.project.spec import centralized_syncs, reconciled_syncs
from airflow_segprovider.factory.skeleton import (
    DEFAULT_START,
    DEFAULT_WAREHOUSE_POOL,
    ingest_group,
    project_asset,
    segments_dag,
    warehouse_task_args,
)
from airflow_segprovider.notifications.alert import DEFAULT_ALERT_CONN_ID
from airflow_segprovider.operators.base import DEFAULT_WAREHOUSE_CONN_ID
from airflow_segprovider.operators.evaluate import SegmentsEvaluateOperator
from airflow_segprovider.operators.gate import SEGMENT_HOLDING_GATES, SegmentsGateOperator
from airflow_segprovider.operators.held import SegmentsHeldReportOperator
from airflow_segprovider.operators.sync import SegmentsSyncOperator

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project, Sync

SOURCE_GATES = ("freshness", "types")
SEGMENT_GATES = ("segment_size", "consent")


def _doc(project: Project, schedule: str) -> str:
    lines = [f"# Segments, centralized: `{project.name}`", "",
             project.description or "", "",
             "Ingest sources → source gates → evaluate every segment in the warehouse (one query) → "
             "segment gates → cross-system count gate → one sync per destination → post-sync count check.",
             "", f"Schedule `{schedule}`; each run evaluates at `as_of = data_interval_end` (a run triggered without a logical "
             "date: its `run_after`). "
             "**Backfills** recompute snapshots and gate results but never push to destinations: only the "
             "latest run syncs.", "", "| segment | syncs to |", "|---|---|"]
    owned = centralized_syncs(project)
    for name in project.segments:
        targets = ", ".join(f"{s.destination} ({s.mode})" for s in owned if s.segment == name) or "-"
        lines.append(f"| `{name}` | {targets} |")
    left = reconciled_syncs(project)
    if left:
        # a segment has exactly one owner: pushing a reconciled segment here would undo its hand edits
        lines += ["", "**Left to `segments_distributed`** (segments with a `reconcile:` policy; their lists are "
                  "edited by hand and reconciled, so this DAG never pushes them):", ""]
        for sync in left:
            policy = project.reconcile[sync.segment]
            lines.append(f"- `{sync.id}`: segment `{sync.segment}` → {sync.destination}, policy "
                         f"`{policy.policy}`" + (f" ({policy.loc})" if str(policy.loc) else ""))
    if project.on_gate_failure == "hold_segment":
        lines += ["", "**A failed segment gate holds its segment only** (`on_gate_failure: hold_segment`): the "
                  "syncs of that segment send no membership change (members who withdrew consent are still "
                  "removed), every other sync runs, and `report_held` fails the run with what was held. "
                  "Set `on_gate_failure: block_all` in the project to stop every sync instead."]
    lines += ["", "Trigger with `dry_run: true` to plan syncs without sending; `allow_mass_removal: true` "
              "overrides the remove-fraction and empty-segment guards for one run; `repair: true` reads each "
              "destination's members (Mailchimp, HubSpot) and restores those removed by hand (contacts added by "
              "hand are reported, never removed)."]
    if project.on_count_drift == "repair":
        lines += ["", "**Count drift before a sync repairs** (`on_count_drift: repair`): the sync reads the "
                  "destination's members and restores those removed by hand; a destination that cannot be read "
                  "(Meta) fails its count gate as before."]
    return "\n".join(lines)


def destination_branch(destination: str, syncs: Sequence[Sync], upstream: Any, common: Mapping[str, Any],
                       holding: Sequence[str], count_parameters: Mapping[str, Any], sync_state: Any,
                       repair_on_drift: bool = False) -> Any:
    """The task group of one destination: the count gate (counts asked and checked), the sync, the count check.

    The count tasks exist when a sync of the destination declares the ``cross_system_counts`` gate.
    :param repair_on_drift: the project's ``on_count_drift: repair``: drift the count gate finds makes the
        sync repair from the destination's members instead of failing (where they can be listed).
    :returns: the group (its last task is the branch's end).
    """
    counted = any("cross_system_counts" in sync.gates for sync in syncs)
    with TaskGroup(destination, tooltip=f"sync every centralized segment to {destination}") as group:
        sync = SegmentsSyncOperator(
            task_id="sync", destination=destination, dry_run="{{ params.dry_run }}",
            allow_mass_removal="{{ params.allow_mass_removal }}", repair="{{ params.repair }}", held_from=holding,
            outlets=[sync_state], **common)
        if not counted:
            upstream >> sync
            return group
        # each count gate asks the destination for its counts itself: one process (one GX import) per check
        gate = SegmentsGateOperator(task_id="gate_cross_system_counts", gate="cross_system_counts", phase="before",
                                    syncs=[destination], stage_counts=True, parameters=dict(count_parameters),
                                    repair_on_drift=repair_on_drift, **common)
        if repair_on_drift:
            sync.repair_from = [gate.task_id]
        check = SegmentsGateOperator(task_id="check_post_sync_counts", gate="cross_system_counts", phase="after",
                                     syncs=[destination], stage_counts=True, parameters=dict(count_parameters),
                                     **common)
        upstream >> gate >> sync >> check
    return group


def build_centralized_dag(project_path: str | Path, *, dag_id: str = "segments_centralized",
                          schedule: str | None = "@daily", start_date: dt.datetime = DEFAULT_START,
                          warehouse_conn_id: str = DEFAULT_WAREHOUSE_CONN_ID,
                          alert_conn_id: str = DEFAULT_ALERT_CONN_ID, owner: str = "data-engineering",
                          retries: int = 2, gate_parameters: Mapping[str, Mapping[str, Any]] | None = None,
                          source_connections: Mapping[str, str] | None = None, tags: tuple[str, ...] = (),
                          warehouse_pool: str | None = DEFAULT_WAREHOUSE_POOL, files_root: str | None = None) -> DAG:
    """Build the centralized rule engine DAG for the project in ``project_path``.

    It runs every sync except those of segments with a ``reconcile:`` policy: those belong to the
    distributed model (``segments_distributed``) and are listed as such in the DAG's ``doc_md``.

    :param gate_parameters: runtime parameters per gate (e.g. ``{"freshness": {"max_age_hours": 36}}``).
    :param source_connections: Airflow connection per REST source name.
    """
    project_path = str(Path(project_path).resolve())
    project = load_project(project_path)
    gate_parameters = gate_parameters or {}
    syncs = centralized_syncs(project)  # the distributed model owns the syncs of reconciled segments
    used_gates = {gate for sync in syncs for gate in sync.gates}
    common = warehouse_task_args(project_path, warehouse_conn_id, warehouse_pool)
    with segments_dag(
        project, model="centralized", dag_id=dag_id, schedule=schedule, start_date=start_date, owner=owner,
        retries=retries, alert_conn_id=alert_conn_id, doc_md=_doc(project, str(schedule)), tags=tags,
        params={"dry_run": Param(False, type="boolean", description="plan syncs without sending"),
                "allow_mass_removal": Param(False, type="boolean",
                                            description="allow removing more than max_remove_fraction"),
                "repair": Param(False, type="boolean",
                                description="read each destination's members and restore those removed by hand")},
    ) as dag:
        ingest = ingest_group(project, common, source_connections, files_root)
        source_gates = [SegmentsGateOperator(task_id=f"gate_{gate}", gate=gate,
                                             parameters=dict(gate_parameters.get(gate, {})), **common)
                        for gate in SOURCE_GATES if gate in used_gates]
        evaluate = SegmentsEvaluateOperator(task_id="evaluate", outlets=[project_asset(project, "memberships")],
                                            **common)
        hold = project.on_gate_failure == "hold_segment"
        segment_gates = [SegmentsGateOperator(task_id=f"gate_{gate}", gate=gate,
                                              parameters=dict(gate_parameters.get(gate, {})),
                                              hold_failed_segments=hold and gate in SEGMENT_HOLDING_GATES, **common)
                         for gate in SEGMENT_GATES if gate in used_gates]
        holding = [task.task_id for task in segment_gates if task.hold_failed_segments]
        upstream: list[Any] = [ingest] if ingest is not None else []
        for task in [*source_gates, evaluate, *segment_gates]:
            if upstream:
                upstream[-1] >> task
            upstream.append(task)
        last = upstream[-1]
        # one branch per destination: a destination that fails (a wrong token, an outage) fails and alerts its
        # own tasks; the other destinations' syncs, with their opt-out removals, still run
        branch_ends = []
        for destination in sorted({sync.destination for sync in syncs}):
            branch_ends.append(destination_branch(
                destination, [s for s in syncs if s.destination == destination], last, common, holding,
                dict(gate_parameters.get("cross_system_counts", {})), project_asset(project, "sync_state"),
                repair_on_drift=project.on_count_drift == "repair"))
        if holding:
            branch_ends >> SegmentsHeldReportOperator(task_id="report_held", gate_task_ids=holding)
    return dag

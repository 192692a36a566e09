"""The hybrid model's DAG: ingest, build the attribute hub, gate it, push attributes to each spoke, check drift.

Like every DAG of :mod:`airflow_segprovider.factory`, building reads only the project's files, never a
connection or a Variable: parsing stays fast and side-effect free.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, Param

from airflow_segprovider.core.project.loader import load_project
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
from airflow_segprovider.operators.hybrid import (
    AttributePushOperator,
    DriftCheckOperator,
    HubBuildOperator,
    HubGateOperator,
)

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project


def _hybrid_doc(project: Project, schedule: str) -> str:
    hub = project.hub
    lines = [f"# Segments, hybrid (hub and spokes): `{project.name}`", "",
             "Ingest sources → build the attribute hub (one profile per customer, per-attribute freshness) → "
             "`hub_freshness` and `hub_types` gates → push changed attributes to each spoke (row hash per "
             "destination, typed per field) and keep its own segments' rules in place → drift check (the hub "
             "evaluates each spoke rule and compares with the count the spoke reports).", "",
             f"Schedule `{schedule}`, `as_of = data_interval_end` (or `run_after` for a run triggered without a "
             "logical date). **Backfills** never rebuild or push the hub: "
             "historical attributes never reach a tool.", "", "| spoke | pushed fields | spoke segments |",
             "|---|---|---|"]
    for destination, push in (hub.push.items() if hub else []):
        fields = ", ".join(f"`{f}`←{a}" for f, a in push.fields.items())
        spokes = ", ".join(n for n, s in project.spoke_segments.items() if s.destination == destination) or "-"
        lines.append(f"| `{destination}` | {fields} | {spokes} |")
    lines += ["", "Trigger with `dry_run: true` to plan pushes without sending."]
    return "\n".join(lines)


def build_hybrid_dag(project_path: str | Path, *, dag_id: str = "segments_hybrid", schedule: str | None = "@daily",
                     start_date: dt.datetime = DEFAULT_START, warehouse_conn_id: str = DEFAULT_WAREHOUSE_CONN_ID,
                     alert_conn_id: str = DEFAULT_ALERT_CONN_ID, owner: str = "data-engineering", retries: int = 2,
                     gate_parameters: Mapping[str, Mapping[str, Any]] | None = None,
                     source_connections: Mapping[str, str] | None = None, tags: tuple[str, ...] = (),
                          warehouse_pool: str | None = DEFAULT_WAREHOUSE_POOL, files_root: str | None = None) -> DAG:
    """The hybrid model's DAG: ingest → hub build → hub gates → attribute push → drift check.

    :param gate_parameters: parameters per hub gate (e.g. ``{"hub_freshness": {"max_age_hours": 24}}``).
    :param source_connections: Airflow connection per REST source name.
    """
    project_path = str(Path(project_path).resolve())
    project = load_project(project_path)
    if project.hub is None:
        raise ValueError(f"project {project.name!r} declares no 'hub:': the hybrid DAG needs one")
    gate_parameters = gate_parameters or {}
    common = warehouse_task_args(project_path, warehouse_conn_id, warehouse_pool)
    with segments_dag(
        project, model="hybrid", dag_id=dag_id, schedule=schedule, start_date=start_date, owner=owner,
        retries=retries, alert_conn_id=alert_conn_id, doc_md=_hybrid_doc(project, str(schedule)), tags=tags,
        params={"dry_run": Param(False, type="boolean", description="plan pushes without sending")},
    ) as dag:
        ingest = ingest_group(project, common, source_connections, files_root)
        build = HubBuildOperator(task_id="build_hub", outlets=[project_asset(project, "hub")], **common)
        freshness = HubGateOperator(task_id="gate_hub_freshness", gate="hub_freshness",
                                    parameters=dict(gate_parameters.get("hub_freshness", {})), **common)
        types = HubGateOperator(task_id="gate_hub_types", gate="hub_types",
                                parameters=dict(gate_parameters.get("hub_types", {})), **common)
        push = AttributePushOperator.partial(
            task_id="push_attributes", dry_run="{{ params.dry_run }}",
            outlets=[project_asset(project, "hub_push_state")], **common,
        ).expand(destination=sorted(project.hub.push))
        drift = DriftCheckOperator(task_id="check_drift", scope="hybrid", **common)
        if ingest is not None:
            ingest >> build
        build >> freshness >> types >> push >> drift
    return dag

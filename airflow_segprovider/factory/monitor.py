"""The drift monitor's DAG: every model's expectations against what the destinations report, hourly.

Like every DAG of :mod:`airflow_segprovider.factory`, building reads only the project's files, never a
connection or a Variable: parsing stays fast and side-effect free.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from airflow.sdk import DAG

from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.project.spec import reconciled_syncs
from airflow_segprovider.core.state.hybrid import DRIFT_REPORTS
from airflow_segprovider.factory.skeleton import (
    DEFAULT_START,
    DEFAULT_WAREHOUSE_POOL,
    segments_dag,
    warehouse_task_args,
)
from airflow_segprovider.notifications.alert import DEFAULT_ALERT_CONN_ID
from airflow_segprovider.operators.base import DEFAULT_AS_OF, DEFAULT_WAREHOUSE_CONN_ID
from airflow_segprovider.operators.hybrid import DriftCheckOperator


def build_drift_monitor_dag(project_path: str | Path, *, dag_id: str = "segments_drift_monitor",
                            schedule: str | None = "@hourly", start_date: dt.datetime = DEFAULT_START,
                            warehouse_conn_id: str = DEFAULT_WAREHOUSE_CONN_ID,
                            alert_conn_id: str = DEFAULT_ALERT_CONN_ID, owner: str = "data-engineering",
                            retries: int = 1, sync_tolerance: float = 0.01, tags: tuple[str, ...] = (),
                          warehouse_pool: str | None = DEFAULT_WAREHOUSE_POOL) -> DAG:
    """The drift monitor: every model's expectations against what the destinations report, on a schedule.

    Centralized syncs (members acknowledged vs the destination's count) and the hybrid model (each spoke
    segment's count vs the hub's evaluation of its rule, stale attributes, type mismatches). Past
    tolerance, the check fails and the notifier alerts; it changes nothing anywhere.
    """
    project_path = str(Path(project_path).resolve())
    project = load_project(project_path)
    reconciled = len(reconciled_syncs(project))
    doc = "\n".join([
        f"# Segments drift monitor: `{project.name}`", "",
        "Reads every destination and compares with what the project expects, changing nothing:", "",
        f"* **centralized syncs** ({len(project.syncs) - reconciled}): members the sync state says each destination "
        f"holds vs the count it reports (tolerance {sync_tolerance:.0%});",
        f"* **reconciled syncs** ({reconciled}, distributed model): the list the last reconcile left vs the count "
        "now reported, held to the policy's `max_change_fraction` (more hand edits than the next reconcile may "
        "apply need a person);",
        f"* **hybrid spoke segments** ({len(project.spoke_segments)}): the hub's evaluation of each spoke rule vs "
        "the count the spoke reports (per-segment `drift_tolerance`), **stale attributes** (hub older than its "
        "source) and **type mismatches** (hub attribute vs spoke field).", "",
        f"Schedule `{schedule}`. Findings are kept in `{DRIFT_REPORTS}`; past tolerance the task fails "
        "and the notifier alerts."])
    with segments_dag(
        project, model="monitoring", dag_id=dag_id, schedule=schedule, start_date=start_date, owner=owner,
        retries=retries, alert_conn_id=alert_conn_id, doc_md=doc, tags=tags,
        retry_delay=dt.timedelta(minutes=2), exponential_backoff=False,
    ) as dag:
        DriftCheckOperator(task_id="check_drift", scope="all", sync_tolerance=sync_tolerance, as_of=DEFAULT_AS_OF,
                           **warehouse_task_args(project_path, warehouse_conn_id, warehouse_pool))
    return dag

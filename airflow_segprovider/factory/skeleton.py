"""The skeleton every segments DAG shares, whichever model it runs.

Loading (the project's YAML, validated by the core) is kept apart from building (this package) and
from running (the operators): building reads only files, never a connection or a Variable, so
parsing a DAG file stays fast and side-effect free.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import DAG, Asset, TaskGroup

from airflow_segprovider.notifications.alert import SegproviderNotifier
from airflow_segprovider.operators.ingest import SegmentsIngestOperator

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project

#: The first logical date of every example DAG (no catch-up: only the latest interval runs).
DEFAULT_START = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
#: The Airflow pool of the tasks that open the warehouse: one slot, because an embedded DuckDB file takes one
#: writer at a time (tasks take turns instead of spinning on the lock). The deployment creates it
#: (``airflow pools set segprovider_duckdb 1 ...``); a run of a DAG using a missing pool fails at once
#: (:mod:`airflow_segprovider.plugins.pool_guard`). Pass ``warehouse_pool=None`` to a factory for a
#: warehouse that takes concurrent writers (Snowflake, BigQuery, PostgreSQL).
DEFAULT_WAREHOUSE_POOL = "segprovider_duckdb"


def warehouse_task_args(project_path: str, warehouse_conn_id: str, warehouse_pool: str | None) -> dict[str, Any]:
    """The arguments every task that opens the warehouse shares: the project, the connection and the pool."""
    common: dict[str, Any] = {"project_path": project_path, "warehouse_conn_id": warehouse_conn_id}
    if warehouse_pool:
        common["pool"] = warehouse_pool
    return common


def project_asset(project: Project, what: str) -> Asset:
    """The Asset of one of a project's tables, so downstream DAGs can be data-aware."""
    return Asset(name=f"segprovider.{project.name}.{what}", uri=f"segprovider://{project.name}/{what}")


def segments_dag(project: Project, *, model: str, dag_id: str, schedule: str | None, start_date: dt.datetime,
                 owner: str, retries: int, alert_conn_id: str, doc_md: str, params: Mapping[str, Any] | None = None,
                 tags: tuple[str, ...] = (), retry_delay: dt.timedelta = dt.timedelta(minutes=5),
                 exponential_backoff: bool = True) -> DAG:
    """A DAG with what every segprovider DAG shares, whichever model it runs.

    No catch-up and one run at a time (each run reads and writes the same state tables), tags
    ``segprovider``, the model and the project, and the notifier on every task failure.

    :param model: ``centralized``, ``distributed``, ``hybrid`` or ``monitoring`` (a tag).
    """
    notifier = SegproviderNotifier(conn_id=alert_conn_id)
    default_args: dict[str, Any] = {"owner": owner, "retries": retries, "retry_delay": retry_delay,
                                    "on_failure_callback": [notifier]}
    if exponential_backoff:
        default_args["retry_exponential_backoff"] = True
    return DAG(dag_id=dag_id, schedule=schedule, start_date=start_date, catchup=False, max_active_runs=1,
               tags=["segprovider", model, project.name, *tags], doc_md=doc_md, default_args=default_args,
               params=dict(params or {}))


def ingest_group(project: Project, common: Mapping[str, Any],
                 source_connections: Mapping[str, str] | None = None,
                 files_root: str | None = None) -> TaskGroup | None:
    """The ``ingest`` task group: one load per declared source, or None when the project declares none.

    Call inside the DAG's context.

    :param files_root: folder the file sources' relative paths start from (default: the project folder).
    """
    if not project.sources:
        return None
    with TaskGroup("ingest", tooltip="load every declared source into the warehouse") as ingest:
        for name, source in project.sources.items():
            SegmentsIngestOperator(task_id=f"load_{name}", source=name, conn_id=(source_connections or {}).get(name),
                                   files_root=files_root,
                                   outlets=[project_asset(project, f"staging/{source.table}")], **common)
    return ingest

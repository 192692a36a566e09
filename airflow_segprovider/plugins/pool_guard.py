"""Fail a segments DAG run at once when a pool its tasks need does not exist.

The segments DAGs put every task that writes an embedded DuckDB warehouse in one pool with one slot
(``segprovider_duckdb``), because DuckDB lets one process write at a time: tasks take turns instead of
spinning on the file's lock. A DAG file cannot create a pool in Airflow 3; the deployment does (the
compose init service, ``airflow pools set``, the UI). When it did not, Airflow's scheduler leaves the
pool's tasks unscheduled for ever and only logs a warning. This listener, run by the scheduler as a
run starts, fails those tasks instead, so the run fails within seconds, says which pool is missing and
how to create it (in the run's note and the scheduler's log), and the failure alerts as any failed run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.listeners import hookimpl

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun

log = logging.getLogger(__name__)

#: Runs of DAGs with this tag are checked (every DAG the segments factories build carries it).
TAG = "segprovider"


def missing_pool_message(dag_id: str, missing: list[str]) -> str:
    pools = ", ".join(repr(p) for p in missing)
    create = "; ".join(f'airflow pools set {p} 1 "segprovider: one warehouse writer at a time"' for p in missing)
    return (f"DAG {dag_id!r} needs the Airflow pool(s) {pools}, which do not exist, so its tasks could never "
            f"be scheduled: the run is failed. Create the pool (Admin > Pools in the UI, or `{create}`) and "
            "trigger again.")


@hookimpl
def on_dag_run_running(dag_run: DagRun, msg: str) -> None:
    """Fail the tasks of a starting segments run whose pool is missing (runs in the scheduler)."""
    dag: Any = getattr(dag_run, "dag", None)
    if dag is None or TAG not in set(getattr(dag, "tags", None) or ()):
        return
    from airflow.models.pool import Pool
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is None:
        return
    needed = {task.pool for task in dag.tasks}
    existing = set(session.scalars(select(Pool.pool).where(Pool.pool.in_(needed))))
    missing = sorted(needed - existing)
    if not missing:
        return
    message = missing_pool_message(dag_run.dag_id, missing)
    log.error("%s (run %s)", message, dag_run.run_id)
    for ti in dag_run.get_task_instances(session=session):
        if ti.pool in missing and ti.state is None:
            ti.set_state(TaskInstanceState.FAILED, session=session)
    try:
        dag_run.note = message
    except Exception:  # the note is a courtesy; failing the tasks is what matters
        log.warning("could not set the note of run %s", dag_run.run_id, exc_info=True)

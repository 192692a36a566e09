"""What every segments operator shares: the project, the warehouse hook, ``as_of`` and the backfill rule."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    import datetime as dt

    from airflow.sdk import Context

    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.warehouses.base import Warehouse

DEFAULT_WAREHOUSE_CONN_ID = "segprovider_warehouse"
#: A scheduled or backfilled run evaluates its interval's end. A run triggered with no logical date
#: (Airflow 3's default for a manual trigger from the UI or the REST API) has no data interval at all,
#: and evaluates at the time it was triggered for (``run_after``).
DEFAULT_AS_OF = "{{ data_interval_end | default(dag_run.run_after, true) }}"
WAREHOUSE_LOCK_WAIT_S = 1800.0


class SegmentsBaseOperator(BaseOperator):
    """Base of the segments operators.

    Subclasses implement :meth:`execute_step`. :meth:`execute` runs it and translates the package's
    errors once, for every operator: a :class:`~airflow_segprovider.core.errors.TerminalError`
    (a bad project, bad data, a refused request, a blocked sync, a failed gate) fails the task at once
    with ``AirflowFailException``, without spending retries; a
    :class:`~airflow_segprovider.core.errors.TransientError` (or any other exception) fails the
    attempt, and Airflow retries it.

    :param project_path: folder of the segments project (read when the task runs).
    :param warehouse_conn_id: Airflow connection of the warehouse (``duckdb`` for the embedded default).
    :param as_of: evaluation time (templated); default ``data_interval_end``, so a run of an
        interval evaluates exactly that interval, whenever it runs; a run triggered without a logical
        date (no data interval) evaluates at its ``run_after`` (see :data:`DEFAULT_AS_OF`).
    """

    template_fields: Sequence[str] = ("as_of",)
    ui_color = "#e8f4ea"

    def __init__(self, *, project_path: str, warehouse_conn_id: str = DEFAULT_WAREHOUSE_CONN_ID,
                 as_of: str = DEFAULT_AS_OF, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project_path = project_path
        self.warehouse_conn_id = warehouse_conn_id
        self.as_of = as_of

    def execute(self, context: Context) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_segprovider.core.errors import TerminalError

        try:
            return self.execute_step(context)
        except TerminalError as exc:  # retrying cannot fix it: fail now, and the notifier alerts now
            raise AirflowFailException(str(exc)) from exc

    def execute_step(self, context: Context) -> Any:
        """The operator's one step; raise the package's terminal or transient errors as they come."""
        raise NotImplementedError

    @cached_property
    def project(self) -> Project:
        from airflow_segprovider.core.project.loader import load_project

        return load_project(self.project_path)

    def as_of_value(self) -> dt.datetime:
        from airflow_segprovider.core.evaluate.engine import parse_as_of

        return parse_as_of(self.as_of)

    @contextlib.contextmanager
    def warehouse(self) -> Iterator[Warehouse]:
        """The warehouse for the duration of the task; closed afterwards (DuckDB allows one writer)."""
        import time

        from airflow_segprovider.hooks.warehouse import SegproviderWarehouseHook

        hook = SegproviderWarehouseHook(warehouse_conn_id=self.warehouse_conn_id)
        deadline = time.monotonic() + WAREHOUSE_LOCK_WAIT_S
        while True:
            try:
                warehouse = hook.get_warehouse(schema=self.project.warehouse.schema)
                break
            except Exception as exc:
                # An embedded DuckDB file has one writer at a time: parallel tasks wait their turn.
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                self.log.info("warehouse %s is locked by another task; waiting", self.warehouse_conn_id)
                time.sleep(1.0)
        try:
            yield warehouse
        finally:
            close = getattr(warehouse, "close", None)
            if close is not None:
                close()


def historical_reason(context: Context, warehouse: Warehouse, segments: Sequence[str],
                      as_of: dt.datetime) -> str | None:
    """Why this run must not push to destinations, or None when it is the latest run.

    A backfill recomputes history but never pushes it; neither does any run whose ``as_of``
    is older than the newest snapshot of the segments it would sync.
    """
    from airflow_segprovider.core.sync.safety import newer_snapshot

    dag_run = context.get("dag_run")
    run_type = str(getattr(dag_run, "run_type", "") or "")
    if run_type.lower().endswith("backfill"):
        return f"this is a backfill run ({getattr(dag_run, 'run_id', '?')}): backfills never push to destinations"
    newest = newer_snapshot(warehouse, segments, as_of)
    if newest is not None:
        return (f"a newer snapshot exists (as_of {newest.isoformat()} > {as_of.isoformat()}): only the latest run "
                "syncs, history is never pushed")
    return None


def as_flag(value: bool | str) -> bool:
    """A boolean operator argument that may arrive as rendered template text (``"{{ params.dry_run }}"``)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)

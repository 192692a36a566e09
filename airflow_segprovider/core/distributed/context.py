"""What every step of a reconcile works with: the project, the warehouse, the clients and the run's rows.

The steps (:mod:`~airflow_segprovider.core.distributed.pull`, :mod:`~airflow_segprovider.core.distributed.plan`,
:mod:`~airflow_segprovider.core.distributed.gate`, :mod:`~airflow_segprovider.core.distributed.apply`,
:mod:`~airflow_segprovider.core.distributed.report`) are functions of a :class:`ReconcileContext`;
:class:`~airflow_segprovider.core.distributed.reconciler.Reconciler` is the context with one method per step.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from airflow_segprovider.core.distributed.errors import ReconcileError
from airflow_segprovider.core.sql.dialects import in_list, render, text_literal
from airflow_segprovider.core.state.distributed import RUNS
from airflow_segprovider.core.state.distributed import ensure_tables as ensure_reconcile_tables
from airflow_segprovider.core.sync.engine import SyncEngine

if TYPE_CHECKING:
    from airflow_segprovider.core.destination import DestinationClient
    from airflow_segprovider.core.project.spec import Project, ReconcilePolicy, Sync
    from airflow_segprovider.core.warehouses.base import Warehouse

ClientFactory = Callable[["Sync"], "DestinationClient"]


def utc_now() -> dt.datetime:
    """Now, as naive UTC (the warehouse's convention)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def new_run_id() -> str:
    return f"reconcile__{uuid.uuid4().hex[:12]}"


class ReconcileContext:
    """A project's reconciled segments on one warehouse, and the run rows every step reads.

    :param project: the validated project (its ``reconcile`` policies).
    :param warehouse: where staging, decisions, the audit log and the sync state live.
    :param clients: builds the destination client of one sync (the caller owns connections).
    """

    def __init__(self, project: Project, warehouse: Warehouse, clients: ClientFactory) -> None:
        self.project = project
        self.warehouse = warehouse
        self.clients = clients

    def sql(self, duckdb_sql: str) -> str:
        """``duckdb_sql`` in the warehouse's dialect."""
        return render(duckdb_sql, self.warehouse.dialect)

    def ensure_tables(self) -> None:
        SyncEngine(self.project, self.warehouse).ensure_tables()
        ensure_reconcile_tables(self.warehouse)

    def policies(self, segments: Sequence[str] | None = None) -> list[ReconcilePolicy]:
        """The reconciled segments, all or those named."""
        if not self.project.reconcile:
            raise ReconcileError("the project declares no reconcile policies; add a 'reconcile:' section "
                                 "(see docs/segments-language.md, 'Reconcile')")
        unknown = [s for s in segments or () if s not in self.project.reconcile]
        if unknown:
            raise ReconcileError(f"no reconcile policy for {', '.join(map(repr, unknown))}; reconciled segments: "
                                 f"{', '.join(self.project.reconcile)}")
        return [p for name, p in self.project.reconcile.items() if not segments or name in segments]

    def syncs_of(self, policy: ReconcilePolicy) -> list[Sync]:
        return [s for s in self.project.syncs if s.segment == policy.segment]

    def run_segments(self, run_id: str) -> dict[str, tuple[str, dt.datetime]]:
        """``segment -> (status, as_of)`` of the run's segments (empty for an unknown run)."""
        return {segment: (status, as_of) for segment, status, as_of in self.warehouse.query(self.sql(
            f"SELECT segment, status, as_of FROM {RUNS} WHERE run_id = {text_literal(run_id)}"))}

    def known_run(self, run_id: str) -> dict[str, tuple[str, dt.datetime]]:
        """The run's segments; an unknown run (a wrong or unrendered id) is an error, never an empty success."""
        runs = self.run_segments(run_id)
        if not runs:
            raise ReconcileError(f"reconcile run {run_id!r} has pulled nothing; pull and plan it first")
        return runs

    def latest_as_of(self, segments: Iterable[str]) -> dt.datetime | None:
        """The newest ``as_of`` any reconcile of ``segments`` ran at (for the backfill rule)."""
        self.ensure_tables()
        names = list(segments)
        if not names:
            return None
        return self.warehouse.query(self.sql(
            f"SELECT MAX(as_of) FROM {RUNS} WHERE segment IN {in_list(names)} AND status <> 'pulled'"))[0][0]

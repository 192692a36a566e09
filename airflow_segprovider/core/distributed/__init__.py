"""The distributed model: every tool keeps its own list; a reconcile run pulls, resolves by policy and pushes the fixes.

:mod:`~airflow_segprovider.core.distributed.policy` decides (pure functions); the steps of a run
(pull, plan, gate, apply, report) each have a module, and
:class:`~airflow_segprovider.core.distributed.reconciler.Reconciler` composes them.
"""

from __future__ import annotations

from airflow_segprovider.core.distributed.context import ClientFactory, ReconcileContext, new_run_id
from airflow_segprovider.core.distributed.engine import ReconcileSyncEngine
from airflow_segprovider.core.distributed.errors import ReconcileError
from airflow_segprovider.core.distributed.gate import ChangeSetTooLargeError
from airflow_segprovider.core.distributed.plan import ReconcilePlan, SystemChangeSet
from airflow_segprovider.core.distributed.reconciler import Reconciler

__all__ = [
    "ChangeSetTooLargeError",
    "ClientFactory",
    "ReconcileContext",
    "ReconcileError",
    "ReconcilePlan",
    "ReconcileSyncEngine",
    "Reconciler",
    "SystemChangeSet",
    "new_run_id",
]

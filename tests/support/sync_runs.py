"""Run one sync of a project against the sandbox, as the CLI and the operators do: the helpers the sync tests share."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.sync import SyncEngine, SyncOptions
from airflow_segprovider.destinations.connection import build_client

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project, Sync
    from airflow_segprovider.core.sync.record import SyncRunRecord
    from airflow_segprovider.core.warehouses.base import Warehouse

#: Methods that change a vendor's state (batch reads are POSTs too: filter by path where it matters).
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def sync_of(project: Project, segment: str, destination: str, mode: str | None = None) -> Sync:
    """The project's sync of ``segment`` to ``destination``, in another ``mode`` when given."""
    sync = next(s for s in project.syncs if s.segment == segment and s.destination == destination)
    return dataclasses.replace(sync, mode=mode) if mode else sync


def run(project: Project, warehouse: Warehouse, connections: dict[str, Any], sync: Sync, as_of: Any,
        **options: Any) -> SyncRunRecord:
    """One run of ``sync`` at ``as_of`` with a client built from ``connections[destination]``."""
    client = build_client(project, sync, connections[sync.destination])
    try:
        return SyncEngine(project, warehouse).run(sync, client, as_of, options=SyncOptions(**options))
    finally:
        client.close()


def accepted_writes(sandbox: Any, vendor: str) -> list[Any]:
    """The vendor's write requests the sandbox accepted (status 200), in order."""
    return [r for r in sandbox.state.requests(vendor) if r.method in WRITES and r.status == 200]

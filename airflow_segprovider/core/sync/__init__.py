"""The sync: make each destination hold exactly the members the central logic computed.

:mod:`.engine` runs a sync through its phases: :mod:`.plan`, :mod:`.safety`,
:mod:`.execute` and :mod:`.record`; :mod:`.selection` picks the syncs a centralized run
pushes, and :mod:`.consent` reads each customer's latest consent answer. The sync's
tables are named and created in :mod:`airflow_segprovider.core.state.sync`.
"""

from __future__ import annotations

from airflow_segprovider.core.project.spec import centralized_syncs, reconciled_syncs
from airflow_segprovider.core.sync.consent import latest_consent_sql
from airflow_segprovider.core.sync.engine import SyncEngine
from airflow_segprovider.core.sync.plan import OPERATIONS, SyncOptions, SyncPlan
from airflow_segprovider.core.sync.record import SyncRunRecord
from airflow_segprovider.core.sync.safety import SyncBlockedError
from airflow_segprovider.core.sync.selection import ReconciledSyncError, select_syncs

__all__ = [
    "OPERATIONS",
    "ReconciledSyncError",
    "SyncBlockedError",
    "SyncEngine",
    "SyncOptions",
    "SyncPlan",
    "SyncRunRecord",
    "centralized_syncs",
    "latest_consent_sql",
    "reconciled_syncs",
    "select_syncs",
]

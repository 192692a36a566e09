"""The sync engine a reconcile applies its decisions with, writing the audit log as batches are acknowledged."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_segprovider.core.distributed.context import utc_now
from airflow_segprovider.core.distributed.errors import ReconcileError
from airflow_segprovider.core.sql.dialects import text_literal
from airflow_segprovider.core.state.distributed import AUDIT, DECISIONS, PLAN
from airflow_segprovider.core.state.membership import MEMBERSHIPS
from airflow_segprovider.core.state.sync import REJECTED, STATE
from airflow_segprovider.core.sync.consent import not_allowed_keys_sql
from airflow_segprovider.core.sync.engine import SyncEngine
from airflow_segprovider.core.sync.plan import REMOVALS, SyncOptions

if TYPE_CHECKING:
    import concurrent.futures

    from airflow_segprovider.core.destination import DestinationClient
    from airflow_segprovider.core.project.spec import Destination, Project, Sync
    from airflow_segprovider.core.warehouses.base import Warehouse


class ReconcileSyncEngine(SyncEngine):
    """The sync engine with one run's decisions as its desired state, writing the audit log as it goes.

    Everything else is the engine's own: batching, per-batch state commits, rejected records, the
    consent re-check, the empty-list and remove-fraction guards. Two differences: membership only
    (attributes are the centralized model's job, so no attribute-change pass), and removals are
    not limited to members this project added, because the reconcile policy decided them.
    """

    def __init__(self, project: Project, warehouse: Warehouse, reconcile_run_id: str) -> None:
        super().__init__(project, warehouse)
        self.reconcile_run_id = reconcile_run_id
        self._planned: dict[tuple[str, str], tuple[bool, str, str]] = {}

    def _decisions(self, sync: Sync, as_of: dt.datetime) -> str:
        return (f"(SELECT segment, customer_key, as_of, CAST(NULL AS VARCHAR) AS arm FROM {DECISIONS} "
                f"WHERE run_id = {text_literal(self.reconcile_run_id)} AND segment = {text_literal(sync.segment)} "
                "AND member)")

    def _desired_sql(self, sync: Sync, destination: Destination, as_of: dt.datetime) -> str:
        sql = super()._desired_sql(sync, destination, as_of)
        token = f"FROM {MEMBERSHIPS} AS m"
        if sql.count(token) != 1:  # the engine's query changed shape: fail loudly, never sync the wrong set
            raise ReconcileError("the sync engine's desired-state query no longer reads the membership table "
                                 "the reconcile replaces; update ReconcileSyncEngine")
        return sql.replace(token, f"FROM {self._decisions(sync, as_of)} AS m")

    def _plan_sql(self, sync: Sync, destination: Destination, as_of: dt.datetime, max_attempts: int
                  ) -> dict[str, str]:
        queries = super()._plan_sql(sync, destination, as_of, max_attempts)
        desired = self._desired_sql(sync, destination, as_of)
        queries["change"] = queries["add"] + " AND FALSE"
        queries["remove"] = self._sql(
            f"SELECT s.customer_key, s.identity, s.row_hash, s.destination_id FROM {STATE} AS s "
            f"WHERE s.sync_id = {text_literal(sync.id)} AND s.in_destination AND s.customer_key NOT IN "
            f"(SELECT customer_key FROM ({desired}) AS d WHERE d.consent_ok)")
        return queries

    def _require_snapshot(self, sync: Sync, at: dt.datetime) -> None:
        # the decisions are the snapshot; an empty one is legitimate and left to the safety guards
        pass

    def sendability(self, sync: Sync, as_of: dt.datetime) -> tuple[dict[str, bool], dict[str, bool]]:
        """Per resolved member: consent allows the system's channel; and it can be added (identity, not exhausted)."""
        self.ensure_tables()
        destination = self.project.destinations[sync.destination]
        desired = self._desired_sql(sync, destination, as_of)
        exhausted = (f"SELECT customer_key FROM {REJECTED} WHERE sync_id = {text_literal(sync.id)} "
                     f"AND attempts >= {SyncOptions().max_attempts}")
        # not allowed (withdrawn consent, the suppression list) reads as no consent: never spread, taken out
        not_allowed = not_allowed_keys_sql(self.project.model.consent, destination.channel, self.warehouse.schema,
                                           identities=desired)
        allowed = f"(d.consent_ok AND d.customer_key NOT IN ({not_allowed}))"
        consent: dict[str, bool] = {}
        addable: dict[str, bool] = {}
        for key, ok, can_add in self.warehouse.query(self._sql(
                f"SELECT d.customer_key, {allowed}, {allowed} AND d.identity IS NOT NULL AND d.identity <> '' "
                f"AND d.customer_key NOT IN ({exhausted}) FROM ({desired}) AS d")):
            consent[key] = bool(ok)
            addable[key] = bool(can_add)
        return consent, addable

    def run(self, sync: Sync, client: DestinationClient, as_of: str | dt.datetime, **kwargs: Any) -> Any:
        rid = text_literal(self.reconcile_run_id)
        self._planned = {(system, key): (after, rule, reason) for system, key, after, rule, reason in
                         self.warehouse.query(self._sql(
                             f"SELECT system, customer_key, member_after, rule, reason FROM {PLAN} WHERE run_id = {rid} "
                             f"AND segment = {text_literal(sync.segment)} AND system = {text_literal(sync.destination)}"))}
        return super().run(sync, client, as_of, **kwargs)

    def _commit(self, sync: Sync, operation: str, future: concurrent.futures.Future, record: Any,
                progress: Any) -> None:
        """The engine's batch commit and the batch's audit rows, in one transaction."""
        with self.warehouse.transaction():
            super()._commit(sync, operation, future, record, progress)
            result = future.result()
            records = future.meta[0]  # type: ignore[attr-defined]
            sent = {r.key for r in records}
            keys = [k for k in result.acknowledged if k in sent]
            if not keys:
                return
            after = operation not in REMOVALS  # consent removals and re-identifications take the member out too
            rules = [self._planned.get((sync.destination, k), (after, "unplanned", "not in the reconcile plan"))
                     for k in keys]
            now = utc_now()
            self.warehouse.upsert(AUDIT, ["run_id", "system", "segment", "customer_key"], pa.table({
                "run_id": [self.reconcile_run_id] * len(keys), "system": [sync.destination] * len(keys),
                "customer_key": pa.array(keys, pa.string()), "segment": [sync.segment] * len(keys),
                "member_before": [not after] * len(keys), "member_after": [after] * len(keys),
                "rule": [r[1] for r in rules], "reason": [r[2] for r in rules],
                "sync_run_id": [record.run_id] * len(keys),
                "applied_at": pa.array([now] * len(keys), pa.timestamp("us")),
            }))

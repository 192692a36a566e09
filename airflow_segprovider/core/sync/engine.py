"""The sync engine: make a destination hold exactly the members the central logic computed.

A sync compares the **desired** state (the segment's snapshot at ``as_of``) with the
**acknowledged** state of that destination and sends the difference. A run goes
through its phases in order, each in its own module:

1. :mod:`.safety`: the segment must have a snapshot at ``as_of``;
2. :mod:`.plan`: the queries of each operation (add, change, remove, consent_remove, reidentify), counted
   into a plan, after recording an existing list's members as a baseline on a first run;
   A repair run (``SyncOptions.repair``) first reads the destination's members (:mod:`.repair`), so the plan
   restores members removed by hand and reports contacts added by hand;
3. :mod:`.safety`: the empty-segment and mass-removal guards, on membership removals only (consent
   removals are never held back, by a guard or by a failed gate);
4. :mod:`.execute`: batches sent through the connector, each acknowledged batch
   committed to the sync state and the per-record sync log (:mod:`.record`), whose rows
   older than ``log_retention_days`` are then deleted;
5. :mod:`.record`: the run's record, written as ``running`` when it starts and again when it ends,
   whatever happened; the next run marks one left ``running`` (a killed run) ``crashed``.

:class:`SyncEngine` strings the phases together; each phase is a method, so that the
distributed model's reconcile and the hybrid model's attribute push can replace the
desired state or a step while keeping the rest.

This module imports nothing from Airflow: the operator passes in a warehouse and a
connector built from the Airflow connection.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.sql.dialects import render
from airflow_segprovider.core.state import sync as sync_state
from airflow_segprovider.core.state.sync import HELD_ERROR_PREFIX
from airflow_segprovider.core.sync.consent import not_allowed_keys_sql
from airflow_segprovider.core.sync.execute import EMAIL_CHANNEL, Progress, json_ready, record_batches, send_all, senders
from airflow_segprovider.core.sync.plan import (
    WITH_IDS,
    SyncOptions,
    SyncPlan,
    count_rows,
    desired_sql,
    held_queries,
    plan_queries,
    plan_sync,
    withdrawn_identities_sql,
)
from airflow_segprovider.core.sync.record import (
    SyncRunRecord,
    commit_batch,
    held_keys_sql,
    mark_crashed,
    previously_rejected,
    prune_sync_log,
    reject_unsendable,
    rejected_records,
    release_shared,
    write_run,
)
from airflow_segprovider.core.sync.repair import not_repairable, read_back, read_back_sql
from airflow_segprovider.core.sync.safety import SyncBlockedError, baseline_members, check_safety, require_snapshot

if TYPE_CHECKING:
    from airflow_segprovider.core.destination import DestinationClient
    from airflow_segprovider.core.project.spec import Destination, Project, Sync
    from airflow_segprovider.core.warehouses.base import Warehouse


class SyncEngine:
    """Runs syncs of a project's segments to its destinations, on one warehouse.

    :param project: the validated project.
    :param warehouse: where snapshots, customers, consent and sync state live.
    """

    def __init__(self, project: Project, warehouse: Warehouse) -> None:
        self.project = project
        self.warehouse = warehouse
        self._write_lock = threading.Lock()

    def _sql(self, duckdb_sql: str) -> str:
        return render(duckdb_sql, self.warehouse.dialect)

    def ensure_tables(self) -> None:
        sync_state.ensure_tables(self.warehouse)

    # the desired state and the plan's queries: what subclasses replace
    def _desired_sql(self, sync: Sync, destination: Destination, as_of: dt.datetime) -> str:
        """Members to hold: snapshot rows with identity, mapped attributes, row hash and consent now."""
        return desired_sql(self.project, sync, destination, as_of, self.warehouse.schema)

    def _plan_sql(self, sync: Sync, destination: Destination, as_of: dt.datetime, max_attempts: int) -> dict[str, str]:
        """Queries listing the keys of each operation (with what is needed to send them)."""
        desired = self._desired_sql(sync, destination, as_of)
        # the identities this sync would send are checked against the suppression list too
        not_allowed = not_allowed_keys_sql(self.project.model.consent, destination.channel, self.warehouse.schema,
                                           identities=desired)
        # an address whose owner opted out is out for everyone sharing it
        withdrawn = withdrawn_identities_sql(self.project, sync, destination, as_of, self.warehouse.schema,
                                             not_allowed)
        read_back = read_back_sql(sync.id) if getattr(self, "_repairing", False) else None
        return plan_queries(sync, destination, desired, max_attempts, self.warehouse.dialect, not_allowed,
                            withdrawn=withdrawn, read_back=read_back)

    def run(self, sync: Sync, client: DestinationClient, as_of: str | dt.datetime, *,
            options: SyncOptions | None = None, run_id: str | None = None) -> SyncRunRecord:
        """Bring ``sync``'s destination to the segment's snapshot at ``as_of``.

        :raises SyncBlockedError: a safety rule stopped the run before anything was sent.
        :raises TerminalDestinationError: the destination refused in a way retrying cannot fix.
        :raises TransientDestinationError: retries exhausted; a rerun resumes where this one stopped.
        """
        from airflow_segprovider.core.evaluate.engine import parse_as_of

        options = options or SyncOptions()
        at = parse_as_of(as_of)
        destination = self.project.destinations[sync.destination]
        record = SyncRunRecord(run_id or f"sync__{uuid.uuid4().hex[:12]}", sync.id, sync.segment,
                               sync.destination, at.isoformat(), sync.mode, options.dry_run)
        started, started_at = time.perf_counter(), sync_state.utc_now()
        self.ensure_tables()
        if not options.dry_run:
            mark_crashed(self.warehouse, sync.id, record.run_id)
        # written now, so a run killed before its end is visible (status "running", then "crashed")
        self._write_run(record, started_at, finished=False)
        try:
            self._require_snapshot(sync, at)
            if not options.dry_run:
                client.check()
                # A mapping to a field the destination lacks fails here, before anything is sent.
                client.check_fields(sorted(destination.field_mapping))
            # a repair reads the destination's members before planning (a dry run too: it shows the restores)
            self._repairing = options.repair and self._read_back(sync, client, record)
            queries = self._plan_sql(sync, destination, at, options.max_attempts)
            if options.held_by:
                queries = held_queries(queries)
            record.plan = self._plan(sync, client, queries, options, record.run_id, baseline=not options.dry_run)
            # membership removals only: a held plan has none, and consent removals are never held back
            self._check_safety(sync, record.plan, options)
            if not options.dry_run:
                self._execute(sync, destination, client, queries, options, record)
                if options.log_retention_days is not None:
                    prune_sync_log(self.warehouse, sync.id, options.log_retention_days)
            record.status = "dry_run" if options.dry_run else (
                "partial" if any(record.failed.values()) else "held" if options.held_by else "succeeded")
            if options.held_by:
                record.error = (f"{HELD_ERROR_PREFIX} {options.held_by}; "
                                f"{record.succeeded['consent_remove']} consent removals sent")
        except BaseException as exc:
            record.status = "blocked" if isinstance(exc, SyncBlockedError) else "failed"
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._repairing = False  # the reading belongs to this run: later plans of this engine do not use it
            record.duration_s = round(time.perf_counter() - started, 3)
            done = sum(record.succeeded.values())
            record.records_per_s = round(done / record.duration_s, 1) if record.duration_s else 0.0
            self._write_run(record, started_at)
        return record

    # the phases of a run
    def _require_snapshot(self, sync: Sync, at: dt.datetime) -> None:
        require_snapshot(self.warehouse, sync, at)

    def _count(self, sql: str) -> int:
        return count_rows(self.warehouse, sql)

    def _plan(self, sync: Sync, client: DestinationClient, queries: dict[str, str], options: SyncOptions,
              run_id: str, *, baseline: bool) -> SyncPlan:
        take_baseline = (lambda: self._baseline(sync, client, run_id)) if baseline else None
        return plan_sync(self.warehouse, sync, client, queries, options.sample_size, self._count, take_baseline,
                         read_back=getattr(self, "_repairing", False))

    def _read_back(self, sync: Sync, client: DestinationClient, record: SyncRunRecord) -> bool:
        """Read the destination's members for a repair; False (and why, in the record) where it cannot list them."""
        if not client.can_read_members:
            record.repair = not_repairable(sync.destination, client.kind)
            return False
        read = read_back(self.warehouse, sync.id, client, record.run_id)
        record.repair = f"read {read} members from {sync.destination}"
        return True

    def _baseline(self, sync: Sync, client: DestinationClient, run_id: str) -> int:
        """First run against an existing list: record its members (matched to customers) as not ours."""
        return baseline_members(self.project, self.warehouse, sync, client, run_id)

    def _check_safety(self, sync: Sync, plan: SyncPlan, options: SyncOptions) -> None:
        check_safety(sync, plan, options)

    def _execute(self, sync: Sync, destination: Destination, client: DestinationClient, queries: dict[str, str],
                 options: SyncOptions, record: SyncRunRecord) -> None:
        assert record.plan is not None
        plan = record.plan
        total = plan.add + plan.change + (plan.remove or 0) + plan.consent_remove + plan.reidentify + plan.restore
        progress = Progress(sync.id, total, options.progress_every_s)
        # before anything is sent: a shared identity stays in the destination for its other holders
        release_shared(self.warehouse, sync.id, queries["release"], record.run_id)
        reject_unsendable(self.warehouse, sync.id, queries["missing_identity"], record.run_id, options.max_attempts)
        # rejected earlier and retried now: few, so kept in memory to clear them when accepted
        self._previously_rejected = previously_rejected(self.warehouse, sync.id)
        batch_size = min(options.batch_size or client.max_batch_size, client.max_batch_size)
        for operation, send in senders(sync, client, unsubscribe=destination.channel == EMAIL_CHANNEL):
            batches = record_batches(self.warehouse, queries[operation], destination, batch_size,
                                     with_ids=operation in WITH_IDS, field_value=self._field_value)

            def commit(future: concurrent.futures.Future, operation: str = operation) -> None:
                self._commit(sync, operation, future, record, progress)

            send_all(operation, send, batches, options.concurrency or getattr(client, "batches_in_flight", 4), commit)
        progress.finish()

    def _field_value(self, destination: Destination, key: str, name: str, value: Any) -> Any:
        """A mapped field's value as the record carries it to the connector: JSON-ready (dates as ISO text)."""
        return json_ready(value)

    def _commit(self, sync: Sync, operation: str, future: concurrent.futures.Future, record: SyncRunRecord,
                progress: Progress) -> None:
        """Record one acknowledged batch: state rows, rejections, counters, in one transaction."""
        result = future.result()
        records, hashes = future.meta  # type: ignore[attr-defined]
        commit_batch(self.warehouse, self._write_lock, sync.id, operation, result, records, hashes, record,
                     self._previously_rejected)
        progress.advance(len(records))

    def _write_run(self, record: SyncRunRecord, started_at: dt.datetime, *, finished: bool = True) -> None:
        write_run(self.warehouse, record, started_at, finished=finished)

    # reading state
    def destination_count(self, sync: Sync) -> int:
        """How many keys the destination is known to hold for ``sync`` (acknowledged state), counted in SQL."""
        return self._count(self._sql(held_keys_sql(sync.id)))

    def rejected(self, sync: Sync) -> list[tuple[str, str, str, str, int]]:
        return rejected_records(self.warehouse, sync.id)

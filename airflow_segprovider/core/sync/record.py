"""What a sync run leaves in the warehouse: acknowledged state, rejected records, the log, the run record.

Each acknowledged batch is committed to the state table in its own transaction, so a
run killed halfway and run again sends only what was not acknowledged. Records a
destination refuses go to ``segprovider_rejected_records`` and are retried on later
runs up to ``max_attempts``; one accepted later is no longer a rejected record. Every
run writes a record to ``segprovider_sync_runs`` when it starts (``running``) and again when it ends; a
record still ``running`` when the next run of the sync starts is marked ``crashed`` (:func:`mark_crashed`).

The state is overwritten run after run; the **sync log** (``segprovider_sync_log``) keeps, per
record, what each run sent and what the destination answered, appended in the same transaction
as the batch's state (one bulk load per batch, the path the state's upsert takes: a DuckDB
relation, a PostgreSQL ``COPY``). Its ``run_id`` is the run record's: join the two on
``(run_id, sync_id)`` to see the run's destination, ``as_of`` and status (:func:`read_sync_log` does).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_segprovider.core.destination import RejectedRecord
from airflow_segprovider.core.sql.dialects import in_list, render, text_literal, ts_literal
from airflow_segprovider.core.state.sync import (
    LOG,
    REJECT,
    REJECTED,
    RELEASE,
    RUNS,
    STATE,
    log_rows,
    state_rows,
    utc_now,
)
from airflow_segprovider.core.sync.plan import OPERATIONS, REMOVALS, SyncPlan

if TYPE_CHECKING:
    from airflow_segprovider.core.destination import BatchResult, Record
    from airflow_segprovider.core.warehouses.base import Warehouse


@dataclass
class SyncRunRecord:
    """What one sync run planned and did: written to ``segprovider_sync_runs`` and pushed to XCom.

    ``run_id`` links it to the run's rows in the per-record sync log (``segprovider_sync_log``;
    ``segprovider sync-log --run RUN_ID``).
    """

    run_id: str
    sync_id: str
    segment: str
    destination: str
    as_of: str
    mode: str
    dry_run: bool
    status: str = "running"
    plan: SyncPlan | None = None
    succeeded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPERATIONS, 0))
    failed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPERATIONS, 0))
    duration_s: float = 0.0
    records_per_s: float = 0.0
    error: str | None = None
    #: a repair run: what was read from the destination, or why the repair was not possible; None otherwise
    repair: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def previously_rejected(warehouse: Warehouse, sync_id: str) -> dict[str, set[str]]:
    """Keys rejected earlier and retried now, per operation: few, so kept in memory to clear them when accepted."""
    keys: dict[str, set[str]] = {op: set() for op in OPERATIONS}
    for key, operation in warehouse.query(render(
            f"SELECT customer_key, operation FROM {REJECTED} WHERE sync_id = {text_literal(sync_id)}",
            warehouse.dialect)):
        keys[operation].add(key)
    return keys


def destination_ids(warehouse: Warehouse, sync_id: str, keys: list[str]) -> dict[str, str]:
    """The vendor ids the state holds for ``keys`` (learned when they were added)."""
    return {k: v for k, v in warehouse.query(render(
        f"SELECT customer_key, destination_id FROM {STATE} WHERE sync_id = {text_literal(sync_id)} "
        f"AND customer_key IN {in_list(keys)} AND destination_id IS NOT NULL", warehouse.dialect))}


def commit_batch(warehouse: Warehouse, lock: threading.Lock, sync_id: str, operation: str, result: BatchResult,
                 records: Sequence[Record], hashes: dict[str, str], record: SyncRunRecord,
                 rejected_before: dict[str, set[str]]) -> None:
    """Record one acknowledged batch: state rows, rejections, log rows, counters, in one transaction.

    :param lock: serializes the writes of batches acknowledged at the same time.
    :param rejected_before: :func:`previously_rejected`; keys accepted now are taken out of it.
    """
    identities = {r.key: r.identity for r in records}
    keys = [key for key in result.acknowledged if key in identities]
    ids = [result.destination_ids.get(key) for key in keys]
    refused = [(r.key, hashes.get(r.key), r.code, r.message) for r in result.rejected]
    with lock, warehouse.transaction():
        now = utc_now()
        log = log_rows(sync_id, record.run_id, operation, [], [], refused, now)
        if keys:
            if operation != "add":  # keep the vendor id learned at add time
                known = destination_ids(warehouse, sync_id, keys)
                ids = [vendor_id or known.get(key) for key, vendor_id in zip(keys, ids)]
            state = state_rows(sync_id, keys, [identities[key] for key in keys], [hashes.get(key) for key in keys],
                               ids, operation not in REMOVALS, "segprovider", record.run_id, now)
            warehouse.upsert(STATE, ["sync_id", "customer_key"], state)
            # the log's keys, hashes and time are the state's own columns: what the state says, the log says
            log = log_rows(sync_id, record.run_id, operation, state.column("customer_key"), state.column("row_hash"),
                           refused, now)
            resolved = rejected_before[operation].intersection(keys)
            if resolved:  # accepted now: no longer a rejected record
                warehouse.execute(render(
                    f"DELETE FROM {REJECTED} WHERE sync_id = {text_literal(sync_id)} AND operation = "
                    f"{text_literal(operation)} AND customer_key IN {in_list(sorted(resolved))}", warehouse.dialect))
                rejected_before[operation] -= resolved
        if result.rejected:
            record_rejections(warehouse, sync_id, operation, result.rejected, record.run_id, identities)
        warehouse.load(LOG, log)  # one statement for the whole batch
    record.succeeded[operation] += len(keys)
    record.failed[operation] += len(result.rejected)


def record_rejections(warehouse: Warehouse, sync_id: str, operation: str, rejected: Sequence[RejectedRecord],
                      run_id: str, identities: Mapping[str, str | None] | None = None) -> None:
    """Upsert refused records into ``segprovider_rejected_records``, counting each key's attempts.

    :param identities: key -> the identity refused. A refusal is of that identity: a key refused again
        with another identity (the customer's address changed) starts its count afresh.
    """
    now = utc_now()
    identities = identities or {}

    def same(a: str | None, b: str | None) -> bool:
        return (a or "").strip().lower() == (b or "").strip().lower()

    previous = {k: (attempts, first) for k, attempts, first, identity in warehouse.query(render(
        f"SELECT customer_key, attempts, first_seen, identity FROM {REJECTED} WHERE sync_id = {text_literal(sync_id)} "
        f"AND operation = {text_literal(operation)} AND customer_key IN {in_list([r.key for r in rejected])}",
        warehouse.dialect)) if identity is None or same(identity, identities.get(k))}
    rows = pa.table({
        "sync_id": [sync_id] * len(rejected),
        "customer_key": [r.key for r in rejected],
        "operation": [operation] * len(rejected),
        "error_code": [r.code for r in rejected],
        "message": [r.message[:1000] for r in rejected],
        "attempts": pa.array([previous.get(r.key, (0, now))[0] + 1 for r in rejected], pa.int32()),
        "first_seen": pa.array([previous.get(r.key, (0, now))[1] for r in rejected], pa.timestamp("us")),
        "last_seen": pa.array([now] * len(rejected), pa.timestamp("us")),
        "run_id": [run_id] * len(rejected),
        "final": pa.array([not getattr(r, "retryable", True) for r in rejected], pa.bool_()),
        "identity": pa.array([identities.get(r.key) for r in rejected], pa.string()),
    })
    with warehouse.transaction():
        warehouse.upsert(REJECTED, ["sync_id", "customer_key", "operation"], rows)


def release_shared(warehouse: Warehouse, sync_id: str, release_sql: str, run_id: str) -> int:
    """Take leaving rows whose identity a staying contact still holds out of the state, without a call.

    The destination keeps the shared identity (it is another member's too); the log says ``release``.

    :param release_sql: the plan's ``release`` query (rendered): ``(customer_key, identity)``, few rows.
    :returns: how many rows were released.
    """
    keys = sorted({row[0] for row in warehouse.query(release_sql)})
    if not keys:
        return 0
    now = utc_now()
    with warehouse.transaction():
        warehouse.execute(render(
            f"UPDATE {STATE} SET in_destination = FALSE, synced_at = {ts_literal(now)}, "
            f"run_id = {text_literal(run_id)} "
            f"WHERE sync_id = {text_literal(sync_id)} AND customer_key IN {in_list(keys)}", warehouse.dialect))
        warehouse.load(LOG, log_rows(sync_id, run_id, RELEASE, keys, [None] * len(keys), [], now))
    return len(keys)


def reject_unsendable(warehouse: Warehouse, sync_id: str, missing_identity_sql: str, run_id: str,
                      max_attempts: int | None = None) -> None:
    """Members without an identity can never be sent: they are rejected records, not silently dropped.

    :param max_attempts: like any refusal, one is counted (and logged) until it was refused this often; it
        stays listed, and is sent as soon as the customer has an identity (it never exhausts sending).
    """
    keys = [row[0] for row in warehouse.query(missing_identity_sql)]
    if keys and max_attempts is not None:
        counted = {row[0] for row in warehouse.query(render(
            f"SELECT customer_key FROM {REJECTED} WHERE sync_id = {text_literal(sync_id)} AND operation = 'add' "
            f"AND attempts >= {int(max_attempts)}", warehouse.dialect))}
        keys = [key for key in keys if key not in counted]
    if keys:
        message = "the customer has no value for the destination's identity attribute"
        with warehouse.transaction():
            record_rejections(warehouse, sync_id, "add", [RejectedRecord(k, "missing_identity", message)
                                                          for k in keys], run_id)
            warehouse.load(LOG, log_rows(sync_id, run_id, REJECT, [], [],
                                         [(k, None, "missing_identity", message) for k in keys], utc_now()))


def write_run(warehouse: Warehouse, record: SyncRunRecord, started_at: dt.datetime, *, finished: bool = True) -> None:
    """Upsert the run's row into ``segprovider_sync_runs``.

    :param finished: False for the row written when the run starts (status ``running``, no ``finished_at``),
        so that a run killed before its end is still visible.
    """
    plan = record.plan
    row = pa.table({
        "run_id": [record.run_id], "sync_id": [record.sync_id], "segment": [record.segment],
        "destination": [record.destination],
        "as_of": pa.array([dt.datetime.fromisoformat(record.as_of)], pa.timestamp("us")),
        "mode": [record.mode], "dry_run": [record.dry_run], "status": [record.status],
        "planned_add": pa.array([plan.add if plan else None], pa.int64()),
        "planned_change": pa.array([plan.change if plan else None], pa.int64()),
        "planned_remove": pa.array([plan.remove if plan else None], pa.int64()),
        "planned_consent_remove": pa.array([plan.consent_remove if plan else None], pa.int64()),
        "planned_reidentify": pa.array([plan.reidentify if plan else None], pa.int64()),
        "released": pa.array([plan.released if plan else None], pa.int64()),
        "planned_restore": pa.array([plan.restore if plan else None], pa.int64()),
        "added_by_hand": pa.array([plan.added_by_hand if plan else None], pa.int64()),
        "repair": pa.array([record.repair], pa.string()),
        **{f"{kind}_{op}": pa.array([getattr(record, kind)[op]], pa.int64())
           for kind in ("succeeded", "failed") for op in OPERATIONS},
        "suppressed": pa.array([plan.suppressed if plan else None], pa.int64()),
        "started_at": pa.array([started_at], pa.timestamp("us")),
        "finished_at": pa.array([utc_now() if finished else None], pa.timestamp("us")),
        "duration_s": [record.duration_s], "records_per_s": [record.records_per_s], "error": [record.error],
    })
    with warehouse.transaction():
        warehouse.upsert(RUNS, ["run_id", "sync_id"], row)


#: ``error`` of a run marked ``crashed``
CRASHED_ERROR = ("the run stopped without recording its end (killed, or its worker lost); what it had "
                 "acknowledged is in the sync state, and the next run resumed from there")


def mark_crashed(warehouse: Warehouse, sync_id: str, run_id: str) -> int:
    """Mark ``sync_id``'s earlier runs still recorded as ``running`` as ``crashed``; how many there were.

    A run writes its record as ``running`` when it starts and overwrites it when it ends, whatever
    happened; one still ``running`` when the next run of the sync starts was killed (SIGKILL, a lost
    worker). Runs of one sync never overlap (one writer per DuckDB file; one task per sync in a DAG run).
    """
    where = (f"sync_id = {text_literal(sync_id)} AND status = 'running' AND run_id <> {text_literal(run_id)}")
    crashed = int(warehouse.query(render(f"SELECT COUNT(*) FROM {RUNS} WHERE {where}", warehouse.dialect))[0][0])
    if crashed:
        with warehouse.transaction():
            warehouse.execute(render(
                f"UPDATE {RUNS} SET status = 'crashed', error = {text_literal(CRASHED_ERROR)} WHERE {where}",
                warehouse.dialect))
    return crashed



def held_keys_sql(sync_id: str) -> str:
    """The keys the destination is known to hold for ``sync_id`` (acknowledged state), in DuckDB's dialect."""
    return f"SELECT customer_key FROM {STATE} WHERE sync_id = {text_literal(sync_id)} AND in_destination"


def rejected_records(warehouse: Warehouse, sync_id: str) -> list[tuple[str, str, str, str, int]]:
    """Every rejected record of ``sync_id``: key, operation, error code, message, attempts."""
    return warehouse.query(render(
        f"SELECT customer_key, operation, error_code, message, attempts FROM {REJECTED} "
        f"WHERE sync_id = {text_literal(sync_id)} ORDER BY customer_key", warehouse.dialect))


def prune_sync_log(warehouse: Warehouse, sync_id: str, retention_days: int, now: dt.datetime | None = None) -> None:
    """Delete ``sync_id``'s sync-log rows logged more than ``retention_days`` before ``now`` (default: now, UTC)."""
    cutoff = (now or utc_now()) - dt.timedelta(days=retention_days)
    with warehouse.transaction():
        warehouse.execute(render(f"DELETE FROM {LOG} WHERE sync_id = {text_literal(sync_id)} "
                                 f"AND logged_at < {ts_literal(cutoff)}", warehouse.dialect))


def read_sync_log(warehouse: Warehouse, *, sync_id: str | None = None, customer_key: str | None = None,
                  run_id: str | None = None, since: dt.datetime | None = None, until: dt.datetime | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
    """Sync-log rows, newest first, each with its run's destination, ``as_of`` and status.

    The run comes from ``segprovider_sync_runs``, joined on ``(run_id, sync_id)``: the run record's
    ``run_id`` is the link between the two (a run in progress has a row with status ``running``).

    :param since: rows logged at or after this time (UTC); ``until``: strictly before.
    :returns: ``[]`` when the warehouse has no sync log yet.
    """
    if warehouse.columns(LOG) is None:
        return []
    where = ["TRUE"]
    for column, value in (("sync_id", sync_id), ("customer_key", customer_key), ("run_id", run_id)):
        if value is not None:
            where.append(f"l.{column} = {text_literal(value)}")
    if since is not None:
        where.append(f"l.logged_at >= {ts_literal(since)}")
    if until is not None:
        where.append(f"l.logged_at < {ts_literal(until)}")
    return warehouse.query_records(render(
        f"SELECT l.logged_at, l.sync_id, l.run_id, r.destination, r.as_of, r.status AS run_status, l.customer_key, "
        f"l.action, l.status, l.error_code, l.message, l.row_hash FROM {LOG} AS l "
        f"LEFT JOIN {RUNS} AS r ON r.run_id = l.run_id AND r.sync_id = l.sync_id "
        f"WHERE {' AND '.join(where)} ORDER BY l.logged_at DESC, l.sync_id, l.customer_key, l.action "
        f"LIMIT {int(limit)}", warehouse.dialect))

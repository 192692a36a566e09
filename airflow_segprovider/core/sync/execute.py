"""Sending a plan: batches streamed out of the warehouse, sent concurrently, committed as acknowledged.

Batches are read from the plan's queries a few at a time (never the whole plan in
memory) and sent through the connector, ``concurrency`` in flight at once; the
connector retries what is transient. Each acknowledged batch is handed to a commit
callback (the engine's ``_commit``), so a run stopped halfway keeps what was
acknowledged. A batch refused as a whole is split to isolate the bad records.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.destination import (
    BatchResult,
    DestinationAuthError,
    DestinationConfigError,
    Record,
    RejectedRecord,
    TerminalDestinationError,
    UnsupportedOperationError,
)
from airflow_segprovider.core.sync.plan import WITH_IDS  # operations sent with the vendor ids the state holds

if TYPE_CHECKING:
    from airflow_segprovider.core.destination import DestinationClient
    from airflow_segprovider.core.project.spec import Destination, Sync
    from airflow_segprovider.core.warehouses.base import Warehouse

log = logging.getLogger(__name__)

#: the consent channel whose withdrawal also unsubscribes the contact in the ESP
EMAIL_CHANNEL = "email"

#: ``(records, row hashes, destination ids)``: one batch as read from the warehouse.
Batch = tuple[list[Record], dict[str, str], dict[str, str]]


def json_ready(value: Any) -> Any:
    """A warehouse value as a connector sends it: dates as ISO text, decimals as floats."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


class Progress:
    """Progress lines during long syncs: records done, rate, ETA."""

    def __init__(self, sync_id: str, total: int, every_s: float) -> None:
        self.sync_id, self.total, self.every_s = sync_id, total, every_s
        self.done = 0
        self.started = self.last = time.perf_counter()

    def advance(self, count: int) -> None:
        self.done += count
        now = time.perf_counter()
        if now - self.last >= self.every_s:
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            eta = (self.total - self.done) / rate if rate else float("inf")
            log.info("sync %s: %d/%d records (%.0f/s), ETA %.0fs", self.sync_id, self.done, self.total, rate, eta)

    def finish(self) -> None:
        elapsed = time.perf_counter() - self.started
        log.info("sync %s: done, %d records in %.1fs (%.0f/s)", self.sync_id, self.done, elapsed,
                 self.done / elapsed if elapsed else 0)


def senders(sync: Sync, client: DestinationClient, *, unsubscribe: bool = False,
            ) -> tuple[tuple[str, Callable[..., BatchResult]], ...]:
    """Each operation with the connector call that sends it, in the order a run sends them.

    Removals go first (membership, then consent, then old identities), restores, adds and changes after. A subclass
    whose own ``remove`` query also lists withdrawn members (the distributed model's reconcile) has
    them removed, and audited, as it always did; its consent removals then find nothing left.

    :param unsubscribe: a consent removal also unsubscribes the contact (the destination's channel is
        e-mail): the one status change a sync makes, carrying the person's own withdrawal.
    """
    def remove(records: Sequence[Record], ids: dict[str, str] | None = None) -> BatchResult:
        return client.remove_members(records, ids)

    def consent_remove(records: Sequence[Record], ids: dict[str, str] | None = None) -> BatchResult:
        removed = client.remove_members(records, ids)
        # a client without the optional unsubscribe (a test double, an older connector) only removes
        send_unsubscribe = getattr(client, "unsubscribe", None) if unsubscribe else None
        if send_unsubscribe is None:
            return removed
        done = set(removed.acknowledged)
        answered = send_unsubscribe([r for r in records if r.key in done])
        # not unsubscribed: not acknowledged, so the state keeps the contact and the next run retries both
        refused = {r.key for r in answered.rejected}
        return BatchResult(acknowledged=[k for k in removed.acknowledged if k not in refused],
                           rejected=removed.rejected + answered.rejected, destination_ids=removed.destination_ids)

    def change(records: Sequence[Record], ids: dict[str, str] | None = None) -> BatchResult:
        # a connector whose vendor id is the row it uploaded (Meta) replaces that row; the others update in place
        replace = getattr(client, "replace_members", None)
        return replace(records, ids) if ids and replace is not None else client.upsert(records)

    send_add = client.upsert if sync.mode == "upsert" else client.add_members
    # a changed identity: the old one is removed before "add" sends the new one; a member removed by hand is
    # restored as it was added
    return (("remove", remove), ("consent_remove", consent_remove), ("reidentify", remove), ("restore", send_add),
            ("add", send_add), ("change", change))


def record_batches(warehouse: Warehouse, sql: str, destination: Destination, batch_size: int, with_ids: bool,
                   field_value: Callable[[Destination, str, str, Any], Any]) -> Iterator[Batch]:
    """Stream ``(records, row hashes, destination ids)`` batches out of the warehouse.

    :param field_value: a mapped field's value as the record carries it (the engine's ``_field_value``).
    """
    for batch in warehouse.iter_batches(sql, batch_size=batch_size):
        columns = batch.to_pydict()
        keys, identities, hashes = columns["customer_key"], columns["identity"], columns["row_hash"]
        field_names = sorted(destination.field_mapping)
        if field_names and f"f__{field_names[0]}" in columns:
            values = [columns[f"f__{name}"] for name in field_names]
            records = [Record(key, identity or "", {name: field_value(destination, key, name, column[i])
                                                    for name, column in zip(field_names, values)})
                       for i, (key, identity) in enumerate(zip(keys, identities))]
        else:  # identities only (removals, destinations without mapped fields)
            records = [Record(key, identity or "") for key, identity in zip(keys, identities)]
        ids = {k: v for k, v in zip(keys, columns.get("destination_id", [None] * len(keys))) if v} if with_ids else {}
        yield records, dict(zip(keys, hashes)), ids


def send_all(operation: str, send: Callable[..., BatchResult], batches: Iterator[Batch], concurrency: int,
             commit: Callable[[concurrent.futures.Future], None]) -> None:
    """Send every batch of one operation, ``concurrency`` at a time, committing each as it is acknowledged.

    Each future carries ``meta = (records, row hashes)`` for ``commit``.

    :raises ValueError: ``concurrency`` below 1 (it would wait forever for a batch it never sent).
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency!r}")
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency,
                                                 thread_name_prefix=f"sync-{operation}")
    pending: set[concurrent.futures.Future] = set()
    try:
        for records, hashes, ids in batches:
            if not records:
                continue
            while len(pending) >= concurrency * 2:  # bounded: never the whole plan in memory
                _collect(pending, commit)
            future = pool.submit(send_isolating, send, records, ids, operation)
            future.meta = (records, hashes)  # type: ignore[attr-defined]
            pending.add(future)
        while pending:
            _collect(pending, commit)
    except BaseException:
        for future in pending:
            future.cancel()
        # acknowledged batches that finished meanwhile are still committed
        for future in [f for f in pending if f.done() and not f.cancelled() and f.exception() is None]:
            commit(future)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _collect(pending: set, commit: Callable[[concurrent.futures.Future], None]) -> None:
    done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
    for future in done:
        pending.discard(future)
        future.result()  # raises the batch's terminal/transient error: the run stops here
        commit(future)


def send_isolating(send: Callable[..., BatchResult], records: list[Record], ids: dict[str, str],
                   operation: str) -> BatchResult:
    """Send a batch; if the destination refuses it as a whole, split it to isolate the bad records.

    A whole-batch refusal about the records (400, 413, 422) is bisected until each half is accepted
    or a single record is left, which becomes a rejected record (``http_<status>``); the others
    are acknowledged. A refusal about the destination (auth, configuration) or a transient error
    is raised as it is: splitting cannot help.
    """
    try:
        return send(records, ids) if operation in WITH_IDS else send(records)
    except (DestinationAuthError, DestinationConfigError, UnsupportedOperationError):
        raise  # about the destination, not the records: splitting cannot help
    except TerminalDestinationError as exc:
        if exc.status not in (400, 413, 422):
            raise
        if len(records) == 1:
            return BatchResult(rejected=[RejectedRecord(records[0].key, f"http_{exc.status}", exc.message)])
        middle = len(records) // 2
        result = send_isolating(send, records[:middle], ids, operation)
        result.merge(send_isolating(send, records[middle:], ids, operation))
        return result

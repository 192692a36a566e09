"""The sync engine: make a destination hold exactly the members the central logic computed.

A sync compares the **desired** state (the segment's snapshot at ``as_of``, joined
with the customer's identity and mapped attributes, minus anyone whose consent for
the destination's channel is withdrawn *now*) with the **acknowledged** state of
that destination (``segprovider_sync_state``: what the destination confirmed, per
customer, with a hash of the attributes sent). The difference is the plan:

* **add**: desired, not in the destination;
* **change**: in both, attributes hash differs (mirror and upsert modes);
* **remove**: in the destination because *we* added it, no longer desired (mirror only).

Batches are sent through the connector; each acknowledged batch is committed to the
state table in its own transaction, so a run killed halfway and run again sends only
what was not acknowledged. Safe deletes: only keys this project added are removed,
the first run against an existing list records its members as a baseline instead of
deleting them, an empty segment never wipes a destination, and removing more than
``max_remove_fraction`` of a destination needs an explicit override. Records a
destination refuses go to ``segprovider_rejected_records`` and are retried on later
runs up to ``max_attempts``; a batch refused as a whole is split to isolate the bad
records. Every run writes a record to ``segprovider_sync_runs``.

This module imports nothing from Airflow: the operator passes in a warehouse and a
connector built from the Airflow connection.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_segprovider.core.evaluate.dialects import quote_identifier, quoted_table, render
from airflow_segprovider.core.errors import SegproviderError
from airflow_segprovider.core.state.membership import MEMBERSHIPS, in_list, text_literal, ts_literal
from airflow_segprovider.core.project.spec import centralized_syncs, reconciled_syncs  # noqa: F401  (re-exported)
from airflow_segprovider.core.destination import BatchResult, Record
from airflow_segprovider.core.destination import (
    DestinationAuthError,
    DestinationConfigError,
    RejectedRecord,
    TerminalDestinationError,
    UnsupportedOperationError,
)

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import ConsentModel, Destination, Project, Sync
    from airflow_segprovider.core.warehouses.base import Warehouse
    from airflow_segprovider.core.destination import DestinationClient

log = logging.getLogger(__name__)

STATE = "segprovider_sync_state"
REJECTED = "segprovider_rejected_records"
RUNS = "segprovider_sync_runs"

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {STATE} (
        sync_id VARCHAR NOT NULL, customer_key VARCHAR NOT NULL, identity VARCHAR,
        row_hash VARCHAR, destination_id VARCHAR, in_destination BOOLEAN NOT NULL,
        origin VARCHAR NOT NULL, synced_at TIMESTAMP NOT NULL, run_id VARCHAR NOT NULL,
        PRIMARY KEY (sync_id, customer_key))""",
    f"""CREATE TABLE IF NOT EXISTS {REJECTED} (
        sync_id VARCHAR NOT NULL, customer_key VARCHAR NOT NULL, operation VARCHAR NOT NULL,
        error_code VARCHAR NOT NULL, message VARCHAR, attempts INTEGER NOT NULL,
        first_seen TIMESTAMP NOT NULL, last_seen TIMESTAMP NOT NULL, run_id VARCHAR NOT NULL,
        PRIMARY KEY (sync_id, customer_key, operation))""",
    f"""CREATE TABLE IF NOT EXISTS {RUNS} (
        run_id VARCHAR NOT NULL, sync_id VARCHAR NOT NULL, segment VARCHAR NOT NULL,
        destination VARCHAR NOT NULL, as_of TIMESTAMP NOT NULL, mode VARCHAR NOT NULL, dry_run BOOLEAN NOT NULL,
        status VARCHAR NOT NULL, planned_add BIGINT, planned_change BIGINT, planned_remove BIGINT,
        succeeded_add BIGINT, succeeded_change BIGINT, succeeded_remove BIGINT,
        failed_add BIGINT, failed_change BIGINT, failed_remove BIGINT, suppressed BIGINT,
        started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP, duration_s DOUBLE, records_per_s DOUBLE,
        error VARCHAR, PRIMARY KEY (run_id, sync_id))""",
)
OPERATIONS = ("add", "change", "remove")


class SyncBlockedError(SegproviderError):
    """A safety rule stopped the sync before anything was sent; retrying does not help."""


@dataclass
class SyncOptions:
    """How one sync run behaves.

    :param dry_run: plan and report, never call the destination's write endpoints.
    :param allow_mass_removal: let a run remove more than ``max_remove_fraction`` of the destination.
    :param max_attempts: a refused record is retried on later runs until it was refused this often.
    :param concurrency: batches in flight at once (the connector also caps its own connections).
    :param sample_size: keys shown per operation in a dry run.
    :param progress_every_s: seconds between progress lines in the log.
    :param batch_size: records per call; None (default) uses the vendor's documented maximum.
    """

    dry_run: bool = False
    allow_mass_removal: bool = False
    max_attempts: int = 3
    concurrency: int = 4
    sample_size: int = 5
    progress_every_s: float = 10.0
    batch_size: int | None = None


@dataclass
class SyncPlan:
    add: int
    change: int
    remove: int | None  # None: unknown (a destination we cannot read and have no state for)
    suppressed: int
    missing_identity: int
    exhausted: int  # refused too often, no longer retried
    destination_size: int | None
    baseline: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class SyncRunRecord:
    """What one sync run planned and did: written to ``segprovider_sync_runs`` and pushed to XCom."""

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def latest_consent_sql(consent: ConsentModel, channel: str, schema: str | None,
                       as_of: dt.datetime | None = None) -> str:
    """``(k, opted_in)``: each customer's latest answer for ``channel`` (at ``as_of`` when given).

    The key is text, as the membership and sync tables hold it; at equal times a withdrawal wins,
    the safe reading. Written in DuckDB's dialect, rendered with the statement around it.
    """
    key, opted_in, updated_at = (quote_identifier(c) for c in (
        consent.customer_key, consent.opted_in_column, consent.updated_at_column))
    bound = f" AND {updated_at} <= {ts_literal(as_of)}" if as_of is not None else ""
    return (f"SELECT k, opted_in FROM (SELECT CAST({key} AS VARCHAR) AS k, {opted_in} AS opted_in, "
            f"ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {updated_at} DESC, {opted_in} ASC) AS rn "
            f"FROM {quoted_table(consent.table, schema)} WHERE {quote_identifier(consent.channel_column)} = "
            f"{text_literal(channel)}{bound}) AS ranked WHERE rn = 1")


class SyncEngine:
    """Runs syncs of a project's segments to its destinations, on one warehouse.

    :param project: the validated project.
    :param warehouse: where snapshots, customers, consent and sync state live.
    """

    def __init__(self, project: Project, warehouse: Warehouse) -> None:
        self.project = project
        self.warehouse = warehouse
        self._write_lock = threading.Lock()

    # --- SQL ----------------------------------------------------------------------------------
    def _sql(self, duckdb_sql: str) -> str:
        return render(duckdb_sql, self.warehouse.dialect)

    def ensure_tables(self) -> None:
        for statement in _DDL:
            self.warehouse.execute(self._sql(statement))

    def _desired_sql(self, sync: Sync, destination: Destination, as_of: dt.datetime) -> str:
        """Members to hold: snapshot rows with identity, mapped attributes, row hash and consent now."""
        model = self.project.model
        customer = model.customer
        attrs = customer.attributes
        identity_col = attrs[destination.identity].column
        fields = sorted(destination.field_mapping.items())
        projections = [f'c."{attrs[attr].column}" AS "f__{name}"' for name, attr in fields]
        hash_input = " || '|' || ".join(
            [f"COALESCE(CAST(c.\"{identity_col}\" AS VARCHAR), '')"]
            + [f"COALESCE(CAST(c.\"{attrs[attr].column}\" AS VARCHAR), '\u2205')" for _, attr in fields])
        arm = f" AND m.arm = {text_literal(sync.arm)}" if sync.arm else ""
        consent_join, consent_ok = "", "TRUE"
        if model.consent is not None and destination.channel in model.consent.channels:
            consent = model.consent
            require = model.consent.channels[destination.channel].require_opt_in
            # consent is checked again at sync time: the latest answer, whenever it was given
            consent_join = (f"LEFT JOIN ({latest_consent_sql(consent, destination.channel, self.warehouse.schema)}) "
                            f"AS consent ON consent.k = m.customer_key")
            consent_ok = f"COALESCE(consent.opted_in, {'FALSE' if require else 'TRUE'})"
        return (
            f"SELECT m.customer_key, CAST(c.\"{identity_col}\" AS VARCHAR) AS identity, "
            + "".join(p + ", " for p in projections)
            + f"MD5({hash_input}) AS row_hash, {consent_ok} AS consent_ok "
            f"FROM {MEMBERSHIPS} AS m JOIN {quoted_table(customer.table, self.warehouse.schema)} AS c "
            f"ON CAST(c.\"{customer.key}\" AS VARCHAR) = m.customer_key {consent_join} "
            f"WHERE m.segment = {text_literal(sync.segment)} AND m.as_of = {ts_literal(as_of)}{arm}"
        )

    def _plan_sql(self, sync: Sync, destination: Destination, as_of: dt.datetime, max_attempts: int) -> dict[str, str]:
        """Queries listing the keys of each operation (with what is needed to send them)."""
        desired = self._desired_sql(sync, destination, as_of)
        sid = text_literal(sync.id)
        exhausted = (f"SELECT customer_key FROM {REJECTED} WHERE sync_id = {sid} AND attempts >= {int(max_attempts)}")
        state = f"SELECT * FROM {STATE} WHERE sync_id = {sid} AND in_destination"
        fields = "".join(f', d."f__{name}"' for name in sorted(destination.field_mapping))
        sendable = (f"d.consent_ok AND d.identity IS NOT NULL AND d.identity <> '' "
                    f"AND d.customer_key NOT IN ({exhausted})")
        queries = {
            "desired": desired,
            "add": (f"SELECT d.customer_key, d.identity, d.row_hash{fields} FROM ({desired}) AS d "
                    f"LEFT JOIN ({state}) AS s ON s.customer_key = d.customer_key "
                    f"WHERE s.customer_key IS NULL AND {sendable}"),
            "change": (f"SELECT d.customer_key, d.identity, d.row_hash{fields} FROM ({desired}) AS d "
                       f"JOIN ({state}) AS s ON s.customer_key = d.customer_key "
                       f"WHERE (s.row_hash IS NULL OR s.row_hash <> d.row_hash) AND {sendable}"),
            "remove": (f"SELECT s.customer_key, s.identity, s.row_hash, s.destination_id FROM ({state}) AS s "
                       f"WHERE s.origin = 'segprovider' AND s.customer_key NOT IN "
                       f"(SELECT customer_key FROM ({desired}) AS d WHERE d.consent_ok)"),
            "suppressed": f"SELECT d.customer_key FROM ({desired}) AS d WHERE NOT d.consent_ok",
            "missing_identity": (f"SELECT d.customer_key FROM ({desired}) AS d WHERE d.consent_ok "
                                 f"AND (d.identity IS NULL OR d.identity = '')"),
            "exhausted": exhausted,
        }
        if sync.mode == "add_only":
            queries["change"] = queries["add"] + " AND FALSE"
            queries["remove"] = queries["remove"] + " AND FALSE"
        return {name: self._sql(sql) for name, sql in queries.items()}

    # --- the run ------------------------------------------------------------------------------
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
        started, started_at = time.perf_counter(), _now()
        self.ensure_tables()
        try:
            self._require_snapshot(sync, at)
            queries = self._plan_sql(sync, destination, at, options.max_attempts)
            if not options.dry_run:
                client.check()
                # A mapping to a field the destination lacks fails here, before anything is sent.
                client.check_fields(sorted(destination.field_mapping))
                record.plan = self._plan(sync, client, queries, options, record.run_id, baseline=True)
            else:
                record.plan = self._plan(sync, client, queries, options, record.run_id, baseline=False)
            self._check_safety(sync, record.plan, options)
            if not options.dry_run:
                self._execute(sync, destination, client, queries, options, record)
            record.status = "dry_run" if options.dry_run else (
                "succeeded" if not any(record.failed.values()) else "partial")
        except BaseException as exc:
            record.status = "blocked" if isinstance(exc, SyncBlockedError) else "failed"
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            record.duration_s = round(time.perf_counter() - started, 3)
            done = sum(record.succeeded.values())
            record.records_per_s = round(done / record.duration_s, 1) if record.duration_s else 0.0
            self._write_run(record, started_at)
        return record

    def _require_snapshot(self, sync: Sync, at: dt.datetime) -> None:
        rows = self.warehouse.query(self._sql(
            f"SELECT COUNT(*) FROM segprovider_snapshots WHERE segment = {text_literal(sync.segment)} "
            f"AND as_of = {ts_literal(at)}"))
        if not rows or not rows[0][0]:
            raise SyncBlockedError(f"sync {sync.id}: no snapshot of segment {sync.segment!r} at {at.isoformat()}; "
                                   "evaluate that as_of first (segprovider evaluate)")

    def _count(self, sql: str) -> int:
        return int(self.warehouse.query(f"SELECT COUNT(*) FROM ({sql}) AS q")[0][0])

    def _plan(self, sync: Sync, client: DestinationClient, queries: dict[str, str], options: SyncOptions,
              run_id: str, *, baseline: bool) -> SyncPlan:
        sid = text_literal(sync.id)
        has_state = self._count(self._sql(f"SELECT 1 FROM {STATE} WHERE sync_id = {sid}")) > 0
        baselined = 0
        if not has_state and baseline and client.can_read_members:
            baselined = self._baseline(sync, client, run_id)
            has_state = True
        plan = SyncPlan(
            add=self._count(queries["add"]), change=self._count(queries["change"]),
            remove=self._count(queries["remove"]), suppressed=self._count(queries["suppressed"]),
            missing_identity=self._count(queries["missing_identity"]), exhausted=self._count(queries["exhausted"]),
            destination_size=self._count(self._sql(f"SELECT 1 FROM {STATE} WHERE sync_id = {sid} AND in_destination")),
            baseline=baselined,
        )
        if not has_state and client.can_read_members and not baseline:
            plan.remove = None  # a dry run of a first sync: the destination's current members are not read
        if not has_state and not client.can_read_members:
            plan.destination_size = None
        for operation in OPERATIONS:
            plan.samples[operation] = [row[0] for row in self.warehouse.query(
                f"SELECT customer_key FROM ({queries[operation]}) AS q ORDER BY customer_key "
                f"LIMIT {int(options.sample_size)}")]
        log.info("sync %s plan: %s", sync.id, {k: v for k, v in asdict(plan).items() if k != "samples"})
        return plan

    def _baseline(self, sync: Sync, client: DestinationClient, run_id: str) -> int:
        """First run against an existing list: record its members (matched to customers) as not ours."""
        destination = self.project.destinations[sync.destination]
        customer = self.project.model.customer
        identity_col = customer.attributes[destination.identity].column
        identities: dict[str, Any] = {}
        for member in client.iter_members():
            identities[member.identity.strip().lower()] = member.destination_id
        if not identities:
            return 0
        names = list(identities)
        keys: list[str] = []
        found: list[str] = []
        # matched in chunks: the read-back list has the destination's size, not the customer table's
        for start in range(0, len(names), 5000):
            values = ", ".join(text_literal(i) for i in names[start:start + 5000])
            for key, identity in self.warehouse.query(self._sql(
                    f"SELECT CAST(\"{customer.key}\" AS VARCHAR), CAST(\"{identity_col}\" AS VARCHAR) "
                    f"FROM {quoted_table(customer.table, self.warehouse.schema)} "
                    f"WHERE LOWER(TRIM(CAST(\"{identity_col}\" AS VARCHAR))) IN ({values})")):
                keys.append(key)
                found.append(identity)
        if keys:
            with self.warehouse.transaction():
                self.warehouse.upsert(STATE, ["sync_id", "customer_key"], _state_rows(
                    sync.id, keys, found, [None] * len(keys),
                    [identities.get(i.strip().lower()) for i in found], True, "baseline", run_id))
        log.info("sync %s: baselined %d existing members of %s (%d matched customers)", sync.id, len(identities),
                 sync.destination, len(keys))
        return len(keys)

    def _check_safety(self, sync: Sync, plan: SyncPlan, options: SyncOptions) -> None:
        if sync.mode != "mirror" or not plan.remove:
            return
        desired = plan.add + plan.change + (plan.destination_size or 0) - plan.remove
        if desired <= 0 and not options.allow_mass_removal:
            raise SyncBlockedError(
                f"sync {sync.id}: the segment is empty, and the sync would remove all {plan.remove} members from "
                f"{sync.destination}; an empty segment never wipes a destination. Check the evaluation and the "
                "segment-size gate; to empty the list on purpose, run with allow_mass_removal")
        size = plan.destination_size or 0
        if size and plan.remove > sync.max_remove_fraction * size and not options.allow_mass_removal:
            raise SyncBlockedError(
                f"sync {sync.id}: would remove {plan.remove} of {size} members ({plan.remove / size:.0%}) from "
                f"{sync.destination}, more than max_remove_fraction {sync.max_remove_fraction:.0%}; check the "
                "segment, then rerun with allow_mass_removal (CLI --allow-mass-removal) if it is intended")

    # --- sending ------------------------------------------------------------------------------
    def _execute(self, sync: Sync, destination: Destination, client: DestinationClient, queries: dict[str, str],
                 options: SyncOptions, record: SyncRunRecord) -> None:
        assert record.plan is not None
        total = record.plan.add + record.plan.change + (record.plan.remove or 0)
        progress = _Progress(sync.id, total, options.progress_every_s)
        self._mark_unsendable(sync, queries, record.run_id)
        # rejected earlier and retried now: few, so kept in memory to clear them when accepted
        self._previously_rejected: dict[str, set[str]] = {op: set() for op in OPERATIONS}
        for key, operation in self.warehouse.query(self._sql(
                f"SELECT customer_key, operation FROM {REJECTED} WHERE sync_id = {text_literal(sync.id)}")):
            self._previously_rejected[operation].add(key)
        send_add = client.upsert if sync.mode == "upsert" else client.add_members
        batch_size = min(options.batch_size or client.max_batch_size, client.max_batch_size)
        for operation, send in (("remove", None), ("add", send_add), ("change", client.upsert)):
            batches = self._record_batches(queries[operation], destination, batch_size,
                                           with_ids=operation == "remove")
            if operation == "remove":
                def send(records: Sequence[Record], ids: dict[str, str] | None = None) -> BatchResult:
                    return client.remove_members(records, ids)
            self._send_all(sync, operation, send, batches, options, record, progress)
        progress.finish()

    def _mark_unsendable(self, sync: Sync, queries: dict[str, str], run_id: str) -> None:
        """Members without an identity can never be sent: they are rejected records, not silently dropped."""
        keys = [row[0] for row in self.warehouse.query(queries["missing_identity"])]
        if keys:
            self._record_rejections(sync, "add", [RejectedRecord(k, "missing_identity",
                                    "the customer has no value for the destination's identity attribute")
                                    for k in keys], run_id)

    def _record_batches(self, sql: str, destination: Destination, batch_size: int,
                        with_ids: bool) -> Iterator[tuple[list[Record], dict[str, str], dict[str, str]]]:
        """Stream ``(records, row hashes, destination ids)`` batches out of the warehouse."""
        for batch in self.warehouse.iter_batches(sql, batch_size=batch_size):
            columns = batch.to_pydict()
            keys, identities, hashes = columns["customer_key"], columns["identity"], columns["row_hash"]
            field_names = sorted(destination.field_mapping)
            if field_names and f"f__{field_names[0]}" in columns:
                values = [columns[f"f__{name}"] for name in field_names]
                records = [Record(key, identity or "", {name: self._field_value(destination, key, name, column[i])
                                                        for name, column in zip(field_names, values)})
                           for i, (key, identity) in enumerate(zip(keys, identities))]
            else:  # identities only (removals, destinations without mapped fields)
                records = [Record(key, identity or "") for key, identity in zip(keys, identities)]
            ids = {k: v for k, v in zip(keys, columns.get("destination_id", [None] * len(keys))) if v} if with_ids else {}
            yield records, dict(zip(keys, hashes)), ids

    def _field_value(self, destination: Destination, key: str, name: str, value: Any) -> Any:
        """A mapped field's value as the record carries it to the connector: JSON-ready (dates as ISO text)."""
        return _jsonable(value)

    def _send_all(self, sync: Sync, operation: str, send: Callable[..., BatchResult],
                  batches: Iterator[tuple[list[Record], dict[str, str], dict[str, str]]], options: SyncOptions,
                  record: SyncRunRecord, progress: _Progress) -> None:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, options.concurrency),
                                                     thread_name_prefix=f"sync-{operation}")
        pending: set[concurrent.futures.Future] = set()
        try:
            for records, hashes, ids in batches:
                if not records:
                    continue
                while len(pending) >= options.concurrency * 2:  # bounded: never the whole plan in memory
                    self._collect(sync, operation, pending, record, progress)
                future = pool.submit(self._send_isolating, send, records, ids, operation)
                future.meta = (records, hashes)  # type: ignore[attr-defined]
                pending.add(future)
            while pending:
                self._collect(sync, operation, pending, record, progress)
        except BaseException:
            for future in pending:
                future.cancel()
            # acknowledged batches that finished meanwhile are still committed
            for future in [f for f in pending if f.done() and not f.cancelled() and f.exception() is None]:
                self._commit(sync, operation, future, record, progress)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _collect(self, sync: Sync, operation: str, pending: set, record: SyncRunRecord, progress: _Progress) -> None:
        done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
        for future in done:
            pending.discard(future)
            future.result()  # raises the batch's terminal/transient error: the run stops here
            self._commit(sync, operation, future, record, progress)

    def _send_isolating(self, send: Callable[..., BatchResult], records: list[Record], ids: dict[str, str],
                        operation: str) -> BatchResult:
        """Send a batch; if the destination refuses it as a whole, split it to isolate the bad records."""
        try:
            return send(records, ids) if operation == "remove" else send(records)
        except (DestinationAuthError, DestinationConfigError, UnsupportedOperationError):
            raise  # about the destination, not the records: splitting cannot help
        except TerminalDestinationError as exc:
            if exc.status not in (400, 413, 422):
                raise
            if len(records) == 1:
                return BatchResult(rejected=[RejectedRecord(records[0].key, f"http_{exc.status}", exc.message)])
            middle = len(records) // 2
            result = self._send_isolating(send, records[:middle], ids, operation)
            result.merge(self._send_isolating(send, records[middle:], ids, operation))
            return result

    def _commit(self, sync: Sync, operation: str, future: concurrent.futures.Future, record: SyncRunRecord,
                progress: _Progress) -> None:
        """Record one acknowledged batch: state rows, rejections, counters, in one transaction."""
        result: BatchResult = future.result()
        records, hashes = future.meta  # type: ignore[attr-defined]
        identities = {r.key: r.identity for r in records}
        keys = [key for key in result.acknowledged if key in identities]
        ids = [result.destination_ids.get(key) for key in keys]
        with self._write_lock, self.warehouse.transaction():
            if keys:
                if operation != "add":  # keep the vendor id learned at add time
                    known = self._destination_ids(sync, keys)
                    ids = [vendor_id or known.get(key) for key, vendor_id in zip(keys, ids)]
                self.warehouse.upsert(STATE, ["sync_id", "customer_key"], _state_rows(
                    sync.id, keys, [identities[key] for key in keys], [hashes.get(key) for key in keys], ids,
                    operation != "remove", "segprovider", record.run_id))
                resolved = self._previously_rejected[operation].intersection(keys)
                if resolved:  # accepted now: no longer a rejected record
                    self.warehouse.execute(self._sql(
                        f"DELETE FROM {REJECTED} WHERE sync_id = {text_literal(sync.id)} AND operation = "
                        f"{text_literal(operation)} AND customer_key IN {in_list(sorted(resolved))}"))
                    self._previously_rejected[operation] -= resolved
            if result.rejected:
                self._record_rejections(sync, operation, result.rejected, record.run_id)
        record.succeeded[operation] += len(keys)
        record.failed[operation] += len(result.rejected)
        progress.advance(len(records))

    def _destination_ids(self, sync: Sync, keys: list[str]) -> dict[str, str]:
        return {k: v for k, v in self.warehouse.query(self._sql(
            f"SELECT customer_key, destination_id FROM {STATE} WHERE sync_id = {text_literal(sync.id)} "
            f"AND customer_key IN {in_list(keys)} AND destination_id IS NOT NULL"))}

    def _record_rejections(self, sync: Sync, operation: str, rejected: Sequence[RejectedRecord], run_id: str) -> None:
        now = _now()
        previous = {k: (attempts, first) for k, attempts, first in self.warehouse.query(self._sql(
            f"SELECT customer_key, attempts, first_seen FROM {REJECTED} WHERE sync_id = {text_literal(sync.id)} "
            f"AND operation = {text_literal(operation)} AND customer_key IN {in_list([r.key for r in rejected])}"))}
        rows = pa.table({
            "sync_id": [sync.id] * len(rejected),
            "customer_key": [r.key for r in rejected],
            "operation": [operation] * len(rejected),
            "error_code": [r.code for r in rejected],
            "message": [r.message[:1000] for r in rejected],
            "attempts": pa.array([previous.get(r.key, (0, now))[0] + 1 for r in rejected], pa.int32()),
            "first_seen": pa.array([previous.get(r.key, (0, now))[1] for r in rejected], pa.timestamp("us")),
            "last_seen": pa.array([now] * len(rejected), pa.timestamp("us")),
            "run_id": [run_id] * len(rejected),
        })
        with self.warehouse.transaction():
            self.warehouse.upsert(REJECTED, ["sync_id", "customer_key", "operation"], rows)

    def _write_run(self, record: SyncRunRecord, started_at: dt.datetime) -> None:
        plan = record.plan
        row = pa.table({
            "run_id": [record.run_id], "sync_id": [record.sync_id], "segment": [record.segment],
            "destination": [record.destination],
            "as_of": pa.array([dt.datetime.fromisoformat(record.as_of)], pa.timestamp("us")),
            "mode": [record.mode], "dry_run": [record.dry_run], "status": [record.status],
            "planned_add": pa.array([plan.add if plan else None], pa.int64()),
            "planned_change": pa.array([plan.change if plan else None], pa.int64()),
            "planned_remove": pa.array([plan.remove if plan else None], pa.int64()),
            **{f"{kind}_{op}": pa.array([getattr(record, kind)[op]], pa.int64())
               for kind in ("succeeded", "failed") for op in OPERATIONS},
            "suppressed": pa.array([plan.suppressed if plan else None], pa.int64()),
            "started_at": pa.array([started_at], pa.timestamp("us")),
            "finished_at": pa.array([_now()], pa.timestamp("us")),
            "duration_s": [record.duration_s], "records_per_s": [record.records_per_s], "error": [record.error],
        })
        with self.warehouse.transaction():
            self.warehouse.upsert(RUNS, ["run_id", "sync_id"], row)

    # --- reading state --------------------------------------------------------------------------
    def destination_count(self, sync: Sync) -> int:
        """How many keys the destination is known to hold for ``sync`` (acknowledged state), counted in SQL."""
        return self._count(self._sql(
            f"SELECT customer_key FROM {STATE} WHERE sync_id = {text_literal(sync.id)} AND in_destination"))

    def rejected(self, sync: Sync) -> list[tuple[str, str, str, str, int]]:
        return self.warehouse.query(self._sql(
            f"SELECT customer_key, operation, error_code, message, attempts FROM {REJECTED} "
            f"WHERE sync_id = {text_literal(sync.id)} ORDER BY customer_key"))


def _state_rows(sync_id: str, keys: list[str], identities: list[str | None], hashes: list[str | None],
                destination_ids: list[str | None], in_destination: bool, origin: str, run_id: str) -> pa.Table:
    """Rows of ``segprovider_sync_state`` for ``keys``, built column-wise (batches hold thousands of keys)."""
    count = len(keys)
    return pa.table({
        "sync_id": pa.array([sync_id] * count, pa.string()),
        "customer_key": pa.array(keys, pa.string()),
        "identity": pa.array(identities, pa.string()),
        "row_hash": pa.array(hashes, pa.string()),
        "destination_id": pa.array(destination_ids, pa.string()),
        "in_destination": pa.array([in_destination] * count, pa.bool_()),
        "origin": pa.array([origin] * count, pa.string()),
        "synced_at": pa.array([_now()] * count, pa.timestamp("us")),
        "run_id": pa.array([run_id] * count, pa.string()),
    })


class _Progress:
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


def build_client(project: Project, sync: Sync, connection: dict[str, Any], overrides: dict[str, Any] | None = None
                 ) -> DestinationClient:
    """The connector for one sync: destination config, the sync's target, then the connection's fields."""
    from airflow_segprovider.destinations.connection import client_settings
    from airflow_segprovider.destinations.registry import create_client

    destination = project.destinations[sync.destination]
    config, credentials = client_settings(destination.kind, destination.config, sync.target, connection,
                                          destination.connection_id, overrides)
    return create_client(destination.kind, destination.name, config, credentials)


class ReconciledSyncError(SegproviderError):
    """A sync of a segment the distributed model owns was selected for a centralized push."""




def _owned_by_reconcile(project: Project, sync: Sync) -> ReconciledSyncError:
    policy = project.reconcile[sync.segment]
    where = f" at {policy.loc}" if str(policy.loc) else ""
    return ReconciledSyncError(
        f"sync {sync.id} belongs to the distributed model: segment {sync.segment!r} has a reconcile policy "
        f"({policy.policy}){where}, so its lists are reconciled by segments_distributed and a centralized push "
        f"would undo the hand edits the reconcile keeps. Run it with `segprovider reconcile PROJECT --segment "
        f"{sync.segment}` instead, or remove the segment's `reconcile:` entry to hand it back to the "
        f"centralized model.")


def select_syncs(project: Project, selectors: Sequence[str] | None, *,
                 include_reconciled: bool = False) -> list[Sync]:
    """Syncs whose id, segment or destination matches a selector (all when there is none).

    The centralized model's selection: syncs of a segment with a ``reconcile:`` policy are left out
    (the distributed model owns them, see :func:`reconciled_syncs`). A destination selector skips them
    silently; naming such a sync or its segment raises :class:`ReconciledSyncError`, which says why
    and what to run instead.

    :param include_reconciled: select from every declared sync (read-only uses such as ``describe``).
    """
    pool = list(project.syncs) if include_reconciled else centralized_syncs(project)
    if not selectors:
        return pool
    wanted = set(selectors)
    if not include_reconciled:
        for sync in reconciled_syncs(project):
            if {sync.id, sync.segment} & wanted:
                raise _owned_by_reconcile(project, sync)
    chosen = [s for s in pool if {s.id, s.segment, s.destination} & wanted]
    unknown = [sel for sel in selectors if not any(sel in {s.id, s.segment, s.destination} for s in project.syncs)]
    if unknown:
        raise SegproviderError(f"no sync matches {', '.join(map(repr, unknown))}; syncs: "
                               f"{', '.join(s.id for s in project.syncs)}")
    return chosen

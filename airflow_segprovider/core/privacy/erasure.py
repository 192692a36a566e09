"""Erasure ("forget"): a person deleted from every destination and every table the project keeps.

One request per customer key, in this order, each step recorded only once it succeeded:

1. **Block.** The key goes on the suppression list (``reason`` ``erasure pending <request>``), committed at
   once: from then on no sync, push or reconcile sends the person, and every destination that holds them
   removes them at its next run, whatever happens to the rest of the request.
2. **Destinations.** Each sync's target the person was sent to (the sync state's identities) or read
   from (the distributed model's pulls) gets the vendor's permanent delete
   (:meth:`~airflow_segprovider.core.destination.DestinationClient.erase`) with every identity it holds for
   them and the destination id the state keeps (Meta's: the hashed match keys uploaded, so the rows Meta may
   have matched on a phone or an external id are deleted too); each outcome goes to the erasure log
   (``segprovider_erasures``) as it arrives. A destination they never reached is told nothing: an erasure
   must not hand an address to a tool that never had it.
3. **Project tables and tombstone, in one transaction.** Only when every destination confirmed: the
   person's rows are deleted from every table the project keeps (:mod:`.tables`), and a tombstone (the
   salted hashes of the key and of each identity, see :mod:`airflow_segprovider.core.state.privacy`)
   replaces the pending suppression. Ingest then drops any row of that key for good. A model table the
   project reads but does not load (another tool loads it) is not the project's to change: while it still
   holds the person, their key stays suppressed (``reason`` "forgotten; erase upstream in ...") so no
   evaluation of it sends them again, until a later ``forget`` finds it erased there.

A destination that failed leaves the request pending: the person stays suppressed (so nothing sends
them) and their rows stay (so the erasure knows what to delete); running ``forget`` again retries it,
and :func:`pending_erasures` lists them. Re-running it for a person already forgotten sends nothing and
deletes whatever of theirs reappeared: it is idempotent.

Past snapshots stay reproducible for everyone else: a snapshot is re-read from the same membership rows
minus the forgotten person's, and ``segprovider_snapshots`` keeps each snapshot's counts as they were.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.destination import Record
from airflow_segprovider.core.errors import TerminalError
from airflow_segprovider.core.hybrid.push import push_sync
from airflow_segprovider.core.privacy.tables import delete_customer_rows, external_tables, model_key_columns
from airflow_segprovider.core.sql.dialects import quote_identifier, quoted_table, render, text_literal, ts_literal
from airflow_segprovider.core.state import privacy
from airflow_segprovider.core.state import sync as sync_state
from airflow_segprovider.core.state.distributed import PULLS

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow_segprovider.core.destination import DestinationClient
    from airflow_segprovider.core.project.spec import Project, Sync
    from airflow_segprovider.core.warehouses.base import Warehouse

#: the erasure log's ``target`` of the project-table step
PROJECT_TABLES = "project_tables"


class ErasureError(TerminalError):
    """An erasure that cannot start (no salt, no key): nothing was changed."""


@dataclass
class DestinationOutcome:
    """What one sync's destination did with an erasure: ``erased``, ``failed`` or ``not_declared`` (the person
    was sent by a sync the project no longer declares: erase them there by hand)."""

    destination: str
    status: str
    records: int = 0
    detail: str = ""
    sync_id: str = ""


@dataclass
class ErasureResult:
    """One person's erasure. ``status``: ``erased``, ``pending`` (a destination failed: run it again) or
    ``already_forgotten``. Holds the key's salted hash, never the key."""

    request_id: str
    key_hash: str
    status: str
    destinations: list[DestinationOutcome] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)
    external_tables: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_salt(salt: str | None) -> str:
    """The privacy salt, checked: tombstones are only as private as the salt is secret and long."""
    if not salt:
        raise ErasureError(f"no privacy salt: set '{privacy.SALT_ENV}' to a long random secret (the same one for "
                           "every run of the project: tombstones made with another salt match nobody)")
    if len(salt) < privacy.MIN_SALT_LENGTH:
        raise ErasureError(f"the privacy salt '{privacy.SALT_ENV}' is {len(salt)} characters; use at least "
                           f"{privacy.MIN_SALT_LENGTH} random ones (e.g. python -c \"import secrets; "
                           "print(secrets.token_hex(32))\")")
    return salt


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _sql(warehouse: Warehouse, duckdb_sql: str) -> str:
    return render(duckdb_sql, warehouse.dialect)


@dataclass
class SentIdentities:
    """What one sync's target holds of a person: every identity it was sent or read under, and the vendor's id
    of them as the sync state keeps it (Meta: the hashed match keys of the upload), if any."""

    identities: list[str] = field(default_factory=list)
    destination_id: str | None = None


def identities_by_sync(project: Project, warehouse: Warehouse,
                       customer_key: str) -> tuple[dict[str, SentIdentities], list[str]]:
    """Every identity each sync sent the key under (its state, with the destination id it keeps), or read for it
    (the distributed pulls).

    Per sync, not per destination: each sync writes its own target (a Meta audience, a Mailchimp
    audience), and the erasure must reach each one.

    :return: sync id -> what its target holds, and the sync ids of state rows no declared sync or push owns.
    """
    syncs = sync_by_id(project)
    key = text_literal(customer_key)
    found: dict[str, SentIdentities] = {}
    unknown: list[str] = []

    def note(sync_id: str, identity: str) -> SentIdentities:
        sent = found.setdefault(sync_id, SentIdentities())
        if privacy.normalize_identity(identity) not in {privacy.normalize_identity(i) for i in sent.identities}:
            sent.identities.append(identity)
        return sent

    # one state row per (sync, customer): its identity and destination id are the ones last sent
    for sync_id, identity, destination_id in warehouse.query(_sql(warehouse, (
            f"SELECT sync_id, identity, destination_id FROM {sync_state.STATE} WHERE customer_key = {key} "
            "AND identity IS NOT NULL AND identity <> '' ORDER BY sync_id, identity"))):
        if sync_id in syncs:
            note(sync_id, identity).destination_id = destination_id or None
        elif sync_id not in unknown:
            unknown.append(sync_id)
    if warehouse.columns(PULLS) is not None:
        by_target = {(sync.segment, sync.destination): sync.id for sync in project.syncs}
        for segment, system, identity in warehouse.query(_sql(warehouse, (
                f"SELECT DISTINCT segment, system, identity FROM {PULLS} WHERE customer_key = {key} "
                "AND identity IS NOT NULL AND identity <> '' ORDER BY segment, system, identity"))):
            if (segment, system) in by_target:
                note(by_target[(segment, system)], identity)
    return found, unknown


def sync_by_id(project: Project) -> dict[str, Sync]:
    """Every sync that may have sent someone: the project's syncs and the hub's attribute pushes."""
    syncs = {sync.id: sync for sync in project.syncs}
    if project.hub is not None:
        pushes = (push_sync(push) for push in project.hub.push.values())
        syncs.update({sync.id: sync for sync in pushes})
    return syncs


def pending_erasures(warehouse: Warehouse) -> list[str]:
    """Customer keys whose erasure is not finished (a destination failed): run ``forget`` for them again."""
    privacy.ensure_tables(warehouse)
    prefix = text_literal(privacy.PENDING_REASON_PREFIX + "%")
    return [row[0] for row in warehouse.query(_sql(warehouse, (
        f"SELECT DISTINCT customer_key FROM {privacy.SUPPRESSIONS} WHERE customer_key IS NOT NULL "
        f"AND reason LIKE {prefix} ORDER BY customer_key")))]


def forget(project: Project, warehouse: Warehouse, customer_keys: Sequence[str], *,
           clients: Callable[[Sync], DestinationClient], salt: str | None, requested_by: str) -> list[ErasureResult]:
    """Erase each of ``customer_keys`` from every destination and every project table (see the module).

    :param clients: builds the connector of a sync's destination and target (closed after use).
    :param salt: the project's privacy salt (:func:`check_salt`).
    :param requested_by: who asked, for the suppression list (e.g. ``cli:alice``, ``airflow:<dag run>``).
    :raises ErasureError: no salt, or an empty key; nothing was changed.
    """
    salt = check_salt(salt)
    keys = [str(key).strip() for key in customer_keys]
    if not keys or any(not key for key in keys):
        raise ErasureError("give at least one customer key, none of them empty")
    sync_state.ensure_tables(warehouse)  # the privacy tables come with them
    return [_forget_one(project, warehouse, key, clients, salt, requested_by) for key in dict.fromkeys(keys)]


def _forget_one(project: Project, warehouse: Warehouse, key: str, clients: Callable[[Sync], DestinationClient],
                salt: str, requested_by: str) -> ErasureResult:
    key_hash = privacy.salted_hash(salt, key)
    pending = key in pending_erasures(warehouse)
    tombstoned = warehouse.query(_sql(warehouse, (
        f"SELECT request_id FROM {privacy.TOMBSTONES} WHERE key_hash = {text_literal(key_hash)}")))
    if tombstoned and not pending:
        # forgotten before: nothing to send; whatever of theirs reappeared is deleted again
        result = ErasureResult(tombstoned[0][0], key_hash, "already_forgotten")
        with warehouse.transaction():
            result.tables = {t: n for t, n in delete_customer_rows(project, warehouse, key).items() if n}
            result.external_tables = _keep_out_upstream(project, warehouse, key, requested_by)
        return result
    request_id = f"erasure__{uuid.uuid4().hex[:12]}"
    result = ErasureResult(request_id, key_hash, "pending")
    if not pending:  # 1. block: committed before anything is sent
        with warehouse.transaction():
            warehouse.execute(_sql(warehouse, (
                f"INSERT INTO {privacy.SUPPRESSIONS} (customer_key, identity, reason, added_at, added_by) VALUES "
                f"({text_literal(key)}, NULL, {text_literal(f'{privacy.PENDING_REASON_PREFIX} {request_id}')}, "
                f"{ts_literal(_now())}, {text_literal(requested_by)})")))
    found, unknown = identities_by_sync(project, warehouse, key)
    syncs = sync_by_id(project)
    for sync_id, sent in found.items():  # 2. destinations, each outcome logged as it arrives
        outcome = _erase_at(syncs[sync_id], sent, key, clients)
        result.destinations.append(outcome)
        _log(warehouse, request_id, key_hash, f"{outcome.destination} ({sync_id})", outcome.status, outcome.detail)
    for sync_id in unknown:
        outcome = DestinationOutcome(f"sync {sync_id}", "not_declared", 0,
                                     "the project no longer declares this sync: erase the person there by hand")
        result.destinations.append(outcome)
        _log(warehouse, request_id, key_hash, outcome.destination, outcome.status, outcome.detail)
    if any(outcome.status == "failed" for outcome in result.destinations):
        return result  # still suppressed, rows kept: the next run retries
    identity_hashes = sorted({privacy.salted_hash(salt, privacy.normalize_identity(identity))
                              for sent in found.values() for identity in sent.identities})
    with warehouse.transaction():  # 3. project tables and tombstone: all or nothing
        result.tables = {t: n for t, n in delete_customer_rows(project, warehouse, key).items() if n}
        warehouse.execute(_sql(warehouse, (
            f"DELETE FROM {privacy.TOMBSTONES} WHERE key_hash = {text_literal(key_hash)}")))
        warehouse.execute(_sql(warehouse, (
            f"INSERT INTO {privacy.TOMBSTONES} (key_hash, identity_hashes, erased_at, request_id) VALUES "
            f"({text_literal(key_hash)}, {text_literal(','.join(identity_hashes))}, {ts_literal(_now())}, "
            f"{text_literal(request_id)})")))
        _log(warehouse, request_id, key_hash, PROJECT_TABLES, "erased",
             f"{sum(result.tables.values())} rows from {len(result.tables)} tables")
        result.external_tables = _keep_out_upstream(project, warehouse, key, requested_by)
    result.status = "erased"
    return result


def _keep_out_upstream(project: Project, warehouse: Warehouse, key: str, requested_by: str) -> list[str]:
    """The model tables the project reads but does not load that still hold ``key``; while any does, the key
    stays on the suppression list (``reason`` "forgotten; erase upstream in ..."), since an evaluation reads
    those tables and would bring the person back. Run ``forget`` again once they are erased upstream."""
    columns = model_key_columns(project)
    upstream = [table for table in external_tables(project, warehouse) if warehouse.query(
        f"SELECT COUNT(*) FROM {quoted_table(table, warehouse.schema)} "
        f"WHERE CAST({quote_identifier(columns[table])} AS VARCHAR) = {text_literal(key)}")[0][0]]
    if upstream:
        reason = f"{privacy.UPSTREAM_REASON_PREFIX} {', '.join(upstream)}"
        warehouse.execute(_sql(warehouse, (
            f"INSERT INTO {privacy.SUPPRESSIONS} (customer_key, identity, reason, added_at, added_by) VALUES "
            f"({text_literal(key)}, NULL, {text_literal(reason)}, {ts_literal(_now())}, "
            f"{text_literal(requested_by)})")))
    return upstream


def _erase_at(sync: Sync, sent: SentIdentities, key: str,
              clients: Callable[[Sync], DestinationClient]) -> DestinationOutcome:
    name, identities = sync.destination, sent.identities
    try:
        client = clients(sync)
    except Exception as exc:  # a missing connection fails this destination, not the others
        return DestinationOutcome(name, "failed", len(identities), f"{type(exc).__name__}: {exc}", sync.id)
    try:
        # the destination id names the person as the vendor was sent them (Meta: every match key uploaded)
        answer = client.erase([Record(key, identity) for identity in identities],
                              {key: sent.destination_id} if sent.destination_id else None)
    except Exception as exc:  # retried by the next run: the person stays suppressed meanwhile
        return DestinationOutcome(name, "failed", len(identities), f"{type(exc).__name__}: {exc}", sync.id)
    finally:
        client.close()
    if answer.rejected:
        reasons = "; ".join(sorted({f"{r.code}: {r.message}" for r in answer.rejected}))
        return DestinationOutcome(name, "failed", len(identities), f"refused: {reasons}", sync.id)
    return DestinationOutcome(name, "erased", len(identities), f"{len(identities)} identities deleted", sync.id)


def _log(warehouse: Warehouse, request_id: str, key_hash: str, target: str, status: str, detail: str) -> None:
    with warehouse.transaction():
        warehouse.execute(_sql(warehouse, (
            f"INSERT INTO {privacy.ERASURES} (request_id, key_hash, target, status, detail, finished_at) VALUES "
            f"({text_literal(request_id)}, {text_literal(key_hash)}, {text_literal(target)}, {text_literal(status)}, "
            f"{text_literal(detail[:1000])}, {ts_literal(_now())})")))

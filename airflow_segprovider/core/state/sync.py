"""The sync engine's tables: what each destination acknowledged, what it refused, every run, every record sent.

``segprovider_sync_state``
    one row per (sync, customer): the acknowledged state of a destination, with the
    identity and the hash of the attributes sent, the vendor's id, whether the
    customer is in the destination and who put it there (``segprovider``, or
    ``baseline`` for members a first run found in an existing list).
``segprovider_rejected_records``
    one row per (sync, customer, operation) a destination refused, with the identity refused, the error
    and how often it was refused; retried on later runs up to ``max_attempts`` (a ``final`` refusal at
    once). A refusal blocks that identity only: once the customer holds another, it is sent.
``segprovider_sync_runs``
    one row per (run, sync): what the run planned, sent and failed, its status and timing; consent
    removals (``*_consent_remove``) apart from membership removals (``*_remove``), old identities
    removed after an identity change (``*_reidentify``) and rows ``released`` without a call (an
    identity another staying member still holds); a repair run's restores (``*_restore``), the contacts
    it found added by hand (``added_by_hand``) and what the repair did (``repair``: what was read, or why
    it was not possible).
``segprovider_sync_readback``
    the identities (trimmed, lower-cased) a repair run read from the destination, per sync: the last
    repair's reading, replaced by the next (the plan compares the state with it).
``segprovider_sync_log``
    one row per record a run sent (or refused to send), appended, never updated: the sync, the run
    (``run_id``, the join key to ``segprovider_sync_runs``), the customer, the ``action`` (``add``,
    ``change``, ``remove``, ``consent_remove``, ``reidentify`` sent to the destination; ``release`` for a
    row taken out of the state without a call; ``reject`` for a record refused before any call,
    e.g. without an identity), the hash of the attributes sent (``row_hash``, as in the state), the
    destination's answer (``status`` ``accepted`` or ``rejected``, with its ``error_code`` and message)
    and when (``logged_at``, UTC). Written in the transaction that commits the batch's state, so it is
    never ahead of or behind it; rows older than a sync's ``log_retention_days`` are deleted.

The statements are written in DuckDB's dialect and rendered for the warehouse's own.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import render
from airflow_segprovider.core.state import privacy

if TYPE_CHECKING:
    import pyarrow as pa

    from airflow_segprovider.core.warehouses.base import Warehouse

STATE = "segprovider_sync_state"
REJECTED = "segprovider_rejected_records"
RUNS = "segprovider_sync_runs"
LOG = "segprovider_sync_log"
READBACK = "segprovider_sync_readback"

TABLES: tuple[str, ...] = (STATE, REJECTED, RUNS, LOG, READBACK)

#: ``action`` of a log row for a record the engine refused before calling the destination
REJECT = "reject"
#: ``action`` of a log row for a leaving customer whose identity another member still holds: no call made
RELEASE = "release"

DDL = (
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
        planned_consent_remove BIGINT, succeeded_consent_remove BIGINT, failed_consent_remove BIGINT,
        planned_reidentify BIGINT, succeeded_reidentify BIGINT, failed_reidentify BIGINT, released BIGINT,
        started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP, duration_s DOUBLE, records_per_s DOUBLE,
        error VARCHAR, PRIMARY KEY (run_id, sync_id))""",
    # no primary key: an append-only log, loaded in bulk (one statement per batch)
    f"""CREATE TABLE IF NOT EXISTS {LOG} (
        sync_id VARCHAR NOT NULL, run_id VARCHAR NOT NULL, customer_key VARCHAR NOT NULL,
        action VARCHAR NOT NULL, row_hash VARCHAR, status VARCHAR NOT NULL, error_code VARCHAR,
        message VARCHAR, logged_at TIMESTAMP NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {READBACK} (
        sync_id VARCHAR NOT NULL, identity VARCHAR NOT NULL, destination_id VARCHAR, run_id VARCHAR NOT NULL,
        read_at TIMESTAMP NOT NULL)""",
)


#: columns added after a table was first released, ``(table, column, type)``: tables created by an earlier
#: version get them on the next :func:`ensure_tables` (``ADD COLUMN IF NOT EXISTS``, in every dialect we
#: render for: DuckDB, PostgreSQL, Snowflake, BigQuery); old rows read NULL there.
#: How a held run's record begins (status ``held``, or ``partial`` when an opt-out removal was refused):
#: the post-sync count check then expects what the state holds, not the snapshot.
HELD_ERROR_PREFIX = "membership changes held by"

ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    (RUNS, "planned_consent_remove", "BIGINT"),
    (RUNS, "succeeded_consent_remove", "BIGINT"),
    (RUNS, "failed_consent_remove", "BIGINT"),
    (RUNS, "planned_reidentify", "BIGINT"),
    (RUNS, "succeeded_reidentify", "BIGINT"),
    (RUNS, "failed_reidentify", "BIGINT"),
    (RUNS, "released", "BIGINT"),
    # a refusal no retry can lift (a Mailchimp compliance state): exhausted at its first attempt
    (REJECTED, "final", "BOOLEAN"),
    # the identity refused: a refusal blocks that identity, not the customer (issue #17)
    (REJECTED, "identity", "VARCHAR"),
    # repair from the destination's truth (issue #17)
    (RUNS, "planned_restore", "BIGINT"),
    (RUNS, "succeeded_restore", "BIGINT"),
    (RUNS, "failed_restore", "BIGINT"),
    (RUNS, "added_by_hand", "BIGINT"),
    (RUNS, "repair", "VARCHAR"),
)


def ensure_tables(warehouse: Warehouse) -> None:
    """Create the sync tables in ``warehouse`` when missing, and add the columns an earlier version lacked."""
    for statement in DDL:
        warehouse.execute(render(statement, warehouse.dialect))
    for table, column, kind in ADDED_COLUMNS:
        warehouse.execute(render(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}", warehouse.dialect))
    # every sync reads the suppression list (the plan's "not allowed" predicate): it must exist
    privacy.ensure_tables(warehouse)


def utc_now() -> dt.datetime:
    """The time the sync tables record: UTC, without a zone (their columns are plain TIMESTAMPs)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def repeated(value: object, kind: pa.DataType, count: int) -> pa.Array:
    """``value`` ``count`` times, built in Arrow: a list of datetimes converts one by one, 300 times slower."""
    import pyarrow as pa

    return pa.repeat(pa.scalar(value, kind), count)


def state_rows(sync_id: str, keys: list[str], identities: list[str | None], hashes: list[str | None],
               destination_ids: list[str | None], in_destination: bool, origin: str, run_id: str,
               synced_at: dt.datetime | None = None) -> pa.Table:
    """Rows of ``segprovider_sync_state`` for ``keys``, built column-wise (batches hold thousands of keys).

    :param synced_at: when (UTC); default: now.
    """
    import pyarrow as pa  # only when rows are written: the table names above are imported at DAG parse time too

    count = len(keys)
    return pa.table({
        "sync_id": repeated(sync_id, pa.string(), count),
        "customer_key": pa.array(keys, pa.string()),
        "identity": pa.array(identities, pa.string()),
        "row_hash": pa.array(hashes, pa.string()),
        "destination_id": pa.array(destination_ids, pa.string()),
        "in_destination": repeated(in_destination, pa.bool_(), count),
        "origin": repeated(origin, pa.string(), count),
        "synced_at": repeated(synced_at or utc_now(), pa.timestamp("us"), count),
        "run_id": repeated(run_id, pa.string(), count),
    })


def log_rows(sync_id: str, run_id: str, action: str, accepted: pa.Array | list[str],
             accepted_hashes: pa.Array | list[str | None], rejected: list[tuple[str, str | None, str, str]],
             logged_at: dt.datetime) -> pa.Table:
    """Rows of ``segprovider_sync_log`` for one batch, built column-wise.

    :param accepted: keys the destination accepted, and ``accepted_hashes`` their row hashes in order: the
        columns of the batch's :func:`state_rows` are taken as they are, without a copy.
    :param rejected: ``(key, row hash, error code, message)`` of each refused record (few).
    """
    import pyarrow as pa

    def strings(values: pa.Array | pa.ChunkedArray | list[str | None]) -> pa.Array:
        if isinstance(values, pa.ChunkedArray):
            return values.combine_chunks()
        return values if isinstance(values, pa.Array) else pa.array(values, pa.string())

    done, refused = len(accepted), len(rejected)
    count = done + refused
    return pa.table({
        "sync_id": repeated(sync_id, pa.string(), count),
        "run_id": repeated(run_id, pa.string(), count),
        "customer_key": pa.concat_arrays([strings(accepted), pa.array([r[0] for r in rejected], pa.string())]),
        "action": repeated(action, pa.string(), count),
        "row_hash": pa.concat_arrays([strings(accepted_hashes), pa.array([r[1] for r in rejected], pa.string())]),
        "status": pa.concat_arrays([repeated("accepted", pa.string(), done), repeated("rejected", pa.string(), refused)]),
        "error_code": pa.concat_arrays([pa.nulls(done, pa.string()), pa.array([r[2] for r in rejected], pa.string())]),
        "message": pa.concat_arrays([pa.nulls(done, pa.string()),
                                     pa.array([r[3][:1000] for r in rejected], pa.string())]),
        "logged_at": repeated(logged_at, pa.timestamp("us"), count),
    })

"""The sync engine's tables: what each destination acknowledged, what it refused, and every run.

``segprovider_sync_state``
    one row per (sync, customer): the acknowledged state of a destination, with the
    identity and the hash of the attributes sent, the vendor's id, whether the
    customer is in the destination and who put it there (``segprovider``, or
    ``baseline`` for members a first run found in an existing list).
``segprovider_rejected_records``
    one row per (sync, customer, operation) a destination refused, with the error and
    how often it was refused; retried on later runs up to ``max_attempts``.
``segprovider_sync_runs``
    one row per (run, sync): what the run planned, sent and failed, its status and timing.

The statements are written in DuckDB's dialect and rendered for the warehouse's own.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import render

if TYPE_CHECKING:
    import pyarrow as pa

    from airflow_segprovider.core.warehouses.base import Warehouse

STATE = "segprovider_sync_state"
REJECTED = "segprovider_rejected_records"
RUNS = "segprovider_sync_runs"

TABLES: tuple[str, ...] = (STATE, REJECTED, RUNS)

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
        started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP, duration_s DOUBLE, records_per_s DOUBLE,
        error VARCHAR, PRIMARY KEY (run_id, sync_id))""",
)


def ensure_tables(warehouse: Warehouse) -> None:
    """Create the sync tables in ``warehouse`` when missing."""
    for statement in DDL:
        warehouse.execute(render(statement, warehouse.dialect))


def utc_now() -> dt.datetime:
    """The time the sync tables record: UTC, without a zone (their columns are plain TIMESTAMPs)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def state_rows(sync_id: str, keys: list[str], identities: list[str | None], hashes: list[str | None],
               destination_ids: list[str | None], in_destination: bool, origin: str, run_id: str) -> pa.Table:
    """Rows of ``segprovider_sync_state`` for ``keys``, built column-wise (batches hold thousands of keys)."""
    import pyarrow as pa  # only when rows are written: the table names above are imported at DAG parse time too

    count = len(keys)
    return pa.table({
        "sync_id": pa.array([sync_id] * count, pa.string()),
        "customer_key": pa.array(keys, pa.string()),
        "identity": pa.array(identities, pa.string()),
        "row_hash": pa.array(hashes, pa.string()),
        "destination_id": pa.array(destination_ids, pa.string()),
        "in_destination": pa.array([in_destination] * count, pa.bool_()),
        "origin": pa.array([origin] * count, pa.string()),
        "synced_at": pa.array([utc_now()] * count, pa.timestamp("us")),
        "run_id": pa.array([run_id] * count, pa.string()),
    })

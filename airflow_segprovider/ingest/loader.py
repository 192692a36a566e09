"""Load a declared source into its model table: typed, quarantined, upserted, recorded.

One load is one transaction. It reads the source unit by unit (a file, an API page,
a query result), and for each unit:

1. reads the fields the data model declares for the table, as the reader gives them
   (CSV and JSON as text, Parquet and warehouse tables with their own types);
2. casts each to the model's type with ``TRY_CAST``; a row whose non-empty value does
   not cast, or that lacks a required value (key, timestamp, event type), goes to the
   quarantine with its position and reason, never into the table;
3. applies the valid rows by the source's mode: ``upsert`` updates the columns this
   source provides for rows whose key exists and inserts the others (the last row of
   a key in one load wins); ``append`` replaces the rows of the same file or page
   request (``_segprovider_load``), so reloading is idempotent; ``replace`` empties
   the table at the start of the load.

The ledger row is written in the same transaction. On any failure the transaction is
rolled back (no rows, no quarantine, watermark unchanged) and a ``failed`` ledger row
is written after it. Every row read ends up loaded or quarantined:
``rows_read = rows_loaded + rows_quarantined``.

Where each step runs: reading and typing always run in DuckDB, in-process (the
*engine*). On the embedded DuckDB warehouse the engine is the warehouse itself, so
rows never leave it. On PostgreSQL, Snowflake or BigQuery the engine is a private
in-memory DuckDB: each unit's valid rows (deduplicated by key for upserts) and its
quarantine rows stream out of it in Arrow batches into the target warehouse
(:mod:`.transfer`: ``COPY`` on PostgreSQL), and the upsert, the deletes, the
quarantine, the ledger and the watermark all live in the target, inside one
transaction of the target. Warehouse-table sources read the target's own table
or query in Arrow batches.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.state.ingest import ensure_tables
from airflow_segprovider.core.warehouses.base import ddl_outside_transaction
from airflow_segprovider.ingest import history, ledger
from airflow_segprovider.ingest.apply import Load
from airflow_segprovider.ingest.errors import IngestError, TerminalIngestError, TransientIngestError
from airflow_segprovider.ingest.forgotten import forgotten_keys
from airflow_segprovider.ingest.layout import table_layout
from airflow_segprovider.ingest.result import LoadResult
from airflow_segprovider.ingest.units import Unit, file_units, rest_units, warehouse_unit

if TYPE_CHECKING:

    from airflow_segprovider.core.project.spec import Project, Source
    from airflow_segprovider.core.warehouses.base import Warehouse
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

__all__ = ["LoadResult", "ingest_all", "ingest_source"]

logger = logging.getLogger(__name__)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _wrap(exc: BaseException, source: Source) -> IngestError | None:
    """The IngestError an exception means, or None for a programming error (re-raised as it is)."""
    import duckdb

    from airflow_segprovider.core.destination import DestinationError

    if isinstance(exc, IngestError):
        return exc
    if isinstance(exc, DestinationError):
        kind = TransientIngestError if exc.retryable else TerminalIngestError
        return kind(str(exc), source=source.name)
    if isinstance(exc, UnicodeDecodeError):
        return TerminalIngestError(f"a file is not UTF-8 text: {exc}", source=source.name,
                                   hint="export the file as UTF-8")
    if isinstance(exc, (duckdb.IOException, OSError)):
        return TransientIngestError(f"reading the source failed: {exc}", source=source.name)
    if isinstance(exc, duckdb.Error):
        # DuckDB's own advice (ignore_errors, null_padding...) would drop rows silently: keep only the diagnosis
        detail = str(exc).split("\nPossible fixes")[0].strip()
        return TerminalIngestError(f"the load failed in the warehouse: {detail}", source=source.name,
                                   hint="fix the file (or the query) and load again; nothing of this load was kept")
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "Error" in names and "DatabaseError" in names:  # a DB-API error of the target warehouse's driver
        if names & {"OperationalError", "InterfaceError"}:  # connection lost, server restarting, ...
            return TransientIngestError(f"the warehouse failed during the load: {exc}", source=source.name)
        return TerminalIngestError(f"the warehouse refused the load: {exc}", source=source.name,
                                   hint="check the table's existing column types against the data model; "
                                        "nothing of this load was kept")
    return None


def _engine_for(warehouse: Warehouse) -> DuckDBWarehouse:
    """The DuckDB that reads and types rows: the warehouse itself when it is DuckDB, else a private one."""
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

    if warehouse.dialect == "duckdb" and isinstance(warehouse, DuckDBWarehouse):
        return warehouse
    return DuckDBWarehouse(":memory:", schema="main")


def ingest_source(project: Project, warehouse: Warehouse, source_name: str, *,
                  connection: Mapping[str, Any] | None = None, now: dt.datetime | None = None,
                  files_root: str | Path | None = None, allow_shrink: bool = False,
                  valid_from: dt.datetime | None = None) -> LoadResult:
    """Load one source of ``project`` into its table, in one transaction of ``warehouse``.

    ``warehouse`` is any :class:`~airflow_segprovider.core.warehouses.base.Warehouse` (DuckDB, PostgreSQL,
    Snowflake, BigQuery): the table, the quarantine, the ledger and the watermark live there.

    :param source_name: a name from the project's ``sources:``.
    :param connection: for REST sources, the connection as a mapping (``host``, ``login``, ``password``,
        ``extra``); when None and the source names a ``connection_id``, it is read from
        ``AIRFLOW_CONN_<ID>`` (:func:`~airflow_segprovider.destinations.connection.connection_from_env`).
    :param now: the load's timestamp (``started_at``, ``finished_at``, quarantine times); default: the clock.
    :param files_root: folder relative file paths start from; default: the project folder.
    :param allow_shrink: load a ``replace`` source even when it would empty the table or shrink it by more
        than the source's ``max_shrink_fraction`` (see :mod:`.guards`).
    :param valid_from: with ``model.customer.history: true``, when the customer attribute values this load
        writes became valid (the DAG passes its run's ``as_of``); default: the load's start. Never before the
        history's latest change (see :mod:`.history`).
    :raises TerminalIngestError: retrying cannot help (bad file, unknown source, refused credentials, a
        ``replace`` source refused as empty or shrunken).
    :raises TransientIngestError: retrying later may (API failures after retries, files not there yet).
    """
    source = project.sources.get(source_name)
    if source is None:
        known = ", ".join(sorted(project.sources)) or "(none)"
        raise TerminalIngestError(f"project {project.name!r} declares no source {source_name!r}; known: {known}",
                                  source=source_name, hint="declare it under 'sources:' in the project")
    layout = table_layout(project.model, source)
    ensure_tables(warehouse)
    started_at = now or _utcnow()
    load_id = uuid.uuid4().hex
    previous = ledger.current_watermark(warehouse, source.name)
    engine = _engine_for(warehouse)
    load = Load(warehouse, engine, source, layout, load_id, project.model.customer.table, started_at)
    try:
        load.forgotten = forgotten_keys(warehouse, source.name)  # forgotten customers are never loaded again
        if previous is not None and load.usable_watermark([previous]) is None:  # stored before the future guard
            previous = load.usable_watermark(ledger.stored_watermarks(warehouse, source.name))
        if source.kind == "rest_api" and connection is None and source.connection_id:
            from airflow_segprovider.destinations.connection import connection_from_env

            connection = connection_from_env(source.connection_id, destination=source.name)
        load.prepare_outside_transaction()
        keeps_history = history.writes_history(project, layout.table)
        if keeps_history and ddl_outside_transaction(warehouse.dialect):
            history.prepare(warehouse, project)
        with warehouse.transaction():
            if source.kind == "file":
                units: Iterator[Unit] | list[Unit] = file_units(source, layout, Path(files_root or project.root))
            elif source.kind == "warehouse_table":
                units = [warehouse_unit(source, layout, warehouse, engine, previous, load_id)]
            else:
                units = rest_units(source, layout, engine, connection, previous, load_id)
            try:
                for unit in units:
                    load.apply(unit)
            finally:
                close = getattr(units, "close", None)
                if close is not None:
                    close()  # unregisters the page and closes the HTTP session now, not at garbage collection
            load.check_shrink(allow_shrink=allow_shrink)
            load.close()
            if keeps_history:  # the versions commit with the rows they describe, or not at all
                history.record_versions(warehouse, project, load_id, _naive_utc(valid_from) or started_at,
                                        started_at)
            watermark = load.final_watermark(previous)
            result = LoadResult(source.name, layout.table, load_id, source.mode, "succeeded", started_at,
                                now or _utcnow(), load.rows_read, load.rows_loaded, load.rows_quarantined,
                                load.units, watermark, previous, rows_forgotten=load.rows_forgotten)
            ledger.record_load(warehouse, {**asdict(result), "table_name": layout.table})
    except Exception as exc:
        error = _wrap(exc, source)
        failed = LoadResult(source.name, layout.table, load_id, source.mode, "failed", started_at, now or _utcnow(),
                            load.rows_read, 0, 0, load.units, previous, previous, str(error or exc))
        try:
            ledger.record_load(warehouse, {**asdict(failed), "table_name": layout.table})
        except Exception:  # the original failure matters more than its ledger row
            logger.exception("source %s: could not record the failed load", source.name)
        if error is None:
            raise
        error.result = failed
        if error is exc:
            raise
        raise error from exc
    finally:
        if engine is not warehouse:
            engine.close()
    logger.info("%s", result.summary())
    return result


def ingest_all(project: Project, warehouse: Warehouse,
               connections: Mapping[str, Mapping[str, Any]] | None = None, *, sources: Sequence[str] | None = None,
               now: dt.datetime | None = None, files_root: str | Path | None = None,
               allow_shrink: bool = False, valid_from: dt.datetime | None = None) -> list[LoadResult]:
    """Load every source (or ``sources``) in declaration order, each in its own transaction.

    A failing source does not stop the others: its result has ``status == 'failed'`` and its ``error``.

    :param connections: connection mappings by connection id; sources whose connection is not
        in it read ``AIRFLOW_CONN_<ID>``.
    :param allow_shrink: as for :func:`ingest_source`, for every source loaded.
    :param valid_from: as for :func:`ingest_source`.
    """
    results = []
    for name in sources or list(project.sources):
        source = project.sources.get(name)
        connection = (connections or {}).get(source.connection_id) if source and source.connection_id else None
        try:
            results.append(ingest_source(project, warehouse, name, connection=connection, now=now,
                                         files_root=files_root, allow_shrink=allow_shrink,
                                         valid_from=valid_from))
        except IngestError as exc:
            if exc.result is None:
                raise
            logger.error("%s", exc)
            results.append(exc.result)
    return results

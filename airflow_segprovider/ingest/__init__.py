"""Ingest: load the tables of the data model from files, warehouse tables and REST APIs.

Pure library code (no Airflow import): the Airflow operator and the CLI call
:func:`ingest_source` / :func:`ingest_all`. Every load is typed by the data model,
quarantines what it cannot type, and is recorded in the load ledger.

Reading and typing run in DuckDB: its file readers do the parsing and its
``TRY_CAST`` the typing. On the embedded DuckDB warehouse rows stream from file to
table without passing through Python; on PostgreSQL, Snowflake or BigQuery the typed
rows stream into the warehouse in Arrow batches (:mod:`.transfer`), where the table,
the quarantine, the ledger and the watermarks live. API pages, already in memory,
are handed over as Arrow tables.
"""

from __future__ import annotations

from airflow_segprovider.core.state.ingest import LOADS_TABLE, QUARANTINE_TABLE
from airflow_segprovider.ingest.errors import IngestError, TerminalIngestError, TransientIngestError
from airflow_segprovider.ingest.ledger import last_loads
from airflow_segprovider.ingest.loader import ingest_all, ingest_source
from airflow_segprovider.ingest.result import LoadResult

__all__ = [
    "LOADS_TABLE",
    "QUARANTINE_TABLE",
    "IngestError",
    "LoadResult",
    "TerminalIngestError",
    "TransientIngestError",
    "ingest_all",
    "ingest_source",
    "last_loads",
]

"""The warehouse adapters' own short-lived objects: staging tables, registered rows, server-side cursors.

None of them outlives a statement or a transaction, but they are names the project
chooses in the warehouse, so they are kept here with the other state names. The
adapters (:mod:`airflow_segprovider.core.warehouses`) import this module, which imports
nothing: it sits below them.

``_segprovider_upsert``, ``_segprovider_load``
    DuckDB: the Arrow rows of one upsert or one load, registered as a relation for
    the single ``INSERT`` that reads them, unregistered right after.
``segprovider_upsert_<n>``
    PostgreSQL: the temporary table an upsert copies its rows into before
    ``INSERT ... ON CONFLICT``; dropped on commit.
``segprovider_batches_<n>``
    PostgreSQL: the named server-side cursor (``WITH HOLD``) a streamed result is read from.
"""

from __future__ import annotations

DUCKDB_UPSERT_ROWS = "_segprovider_upsert"
DUCKDB_LOAD_ROWS = "_segprovider_load"
#: prefix of a PostgreSQL upsert's temporary staging table, numbered per process
UPSERT_STAGING_PREFIX = "segprovider_upsert_"
#: prefix of a PostgreSQL server-side cursor, numbered per process
BATCH_CURSOR_PREFIX = "segprovider_batches_"

#: every name (or name prefix) this module owns
TABLES = (DUCKDB_UPSERT_ROWS, DUCKDB_LOAD_ROWS, UPSERT_STAGING_PREFIX, BATCH_CURSOR_PREFIX)


def upsert_staging_ddl(staging: str, columns: str, table: str) -> str:
    """``CREATE TEMP TABLE`` of an upsert's staging table: ``table``'s ``columns``, no rows, dropped on commit.

    :param staging: the staging table's name (:data:`UPSERT_STAGING_PREFIX` and a number).
    :param columns: the quoted column list, as SQL text.
    :param table: the target table, as SQL text.
    """
    return f"CREATE TEMP TABLE {staging} ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA"

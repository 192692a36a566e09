"""Warehouses of every supported kind for the tests, each isolated in its own schema.

``open_warehouse(kind)`` yields a fresh, empty warehouse: DuckDB in memory, the real
PostgreSQL server on this machine (a schema ``t_<uuid>`` dropped afterwards) and
Snowflake emulated by ``fakesnow``. BigQuery has no server here: its SQL is checked by
the differential tests (parsed as BigQuery, executed after transpiling to DuckDB).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pyarrow as pa

from airflow_segprovider.core.warehouse import DuckDBWarehouse

PG_DSN = os.environ.get("SEGPROVIDER_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test")
KINDS = ("duckdb", "postgres", "snowflake")


def pg_connect():
    import psycopg2

    return psycopg2.connect(PG_DSN)


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A uniquely named, empty schema on the real server, dropped at the end."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    yield schema
    admin = pg_connect()
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        admin.close()


@contextlib.contextmanager
def open_warehouse(kind: str) -> Iterator:
    if kind == "duckdb":
        warehouse = DuckDBWarehouse(":memory:")
        try:
            yield warehouse
        finally:
            warehouse.close()
    elif kind == "postgres":
        from airflow_segprovider.core.warehouses.postgres import PostgresWarehouse

        with postgres_schema() as schema:
            warehouse = PostgresWarehouse(pg_connect(), schema=schema)
            try:
                yield warehouse
            finally:
                warehouse.close()
    elif kind == "snowflake":
        import fakesnow
        import snowflake.connector

        from airflow_segprovider.core.warehouses.snowflake import SnowflakeWarehouse

        with fakesnow.patch():
            connection = snowflake.connector.connect(database="segprovider_test", schema="main")
            warehouse = SnowflakeWarehouse(connection, schema="main")
            try:
                yield warehouse
            finally:
                warehouse.close()
    else:
        raise ValueError(kind)


def copy_tables(source, target, tables: list[str]) -> None:
    """Copy tables from one warehouse to another through Arrow batches and the target's ``load``."""
    for table in tables:
        first = True
        for batch in source.iter_batches(f"SELECT * FROM {table}", batch_size=20_000):
            rows = pa.Table.from_batches([batch])
            target.load(table, rows, create=first)
            first = False

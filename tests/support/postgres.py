"""The real PostgreSQL server the integration tests use: its DSN, and a fresh schema per test.

Every test that writes to PostgreSQL works in a uniquely named ``t_<uuid>`` schema, dropped at the
end, so tests never see each other's tables (``tests/`` is on ``sys.path`` beside ``conftest.py``).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

PG_DSN = os.environ.get("SEGPROVIDER_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test")


def pg_connect(**options: Any) -> Any:
    import psycopg2

    return psycopg2.connect(PG_DSN, **options)


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A uniquely named, empty schema on the real server, dropped at the end."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        yield schema
    finally:
        admin = pg_connect()
        admin.autocommit = True
        try:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            admin.close()


@contextlib.contextmanager
def postgres_warehouse() -> Iterator[Any]:
    """A ``PostgresWarehouse`` (psycopg2) in a fresh schema, closed and dropped at the end."""
    from airflow_segprovider.core.warehouses.postgres import PostgresWarehouse

    with postgres_schema() as schema:
        warehouse = PostgresWarehouse(pg_connect(), schema=schema)
        try:
            yield warehouse
        finally:
            warehouse.close()

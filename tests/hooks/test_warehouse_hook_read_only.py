"""``read_only=True`` opens the warehouse for reading only, as the insights plugin needs (it must never write).

DuckDB: ``DuckDBHook(read_only=True)`` opens the file read-only
(https://duckdb.org/docs/stable/connect/concurrency: one process writes, or many read). PostgreSQL: the
session's transactions are read-only (``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY``,
https://www.postgresql.org/docs/current/sql-set-transaction.html), so a write is refused by the server.
"""

from __future__ import annotations

import json

import duckdb
import pytest

from airflow_segprovider.hooks.warehouse import SegproviderWarehouseHook
from support.warehouse_matrix import postgres_schema

pytestmark = pytest.mark.integration


def test_a_read_only_duckdb_warehouse_reads_the_database_extra_and_refuses_writes(tmp_path, monkeypatch) -> None:
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("CREATE TABLE t AS SELECT 1 AS n")
    monkeypatch.setenv("AIRFLOW_CONN_WH_RO", json.dumps({"conn_type": "duckdb", "extra": {"database": str(database)}}))
    hook = SegproviderWarehouseHook("wh_ro", read_only=True)

    assert hook.duckdb_database() == str(database)
    warehouse = hook.get_warehouse()
    try:
        assert warehouse.query("SELECT n FROM t") == [(1,)]
        with pytest.raises(duckdb.Error, match="read-only"):
            warehouse.execute("INSERT INTO t VALUES (2)")
    finally:
        warehouse.close()


def test_a_read_only_postgres_session_refuses_writes(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WH_PG_RO", json.dumps(
        {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test"}))
    with postgres_schema() as schema:
        warehouse = SegproviderWarehouseHook("wh_pg_ro", read_only=True).get_warehouse(schema=schema)
        try:
            assert warehouse.query("SELECT 1") == [(1,)]
            with pytest.raises(Exception, match="read-only transaction"):
                warehouse.execute(f'CREATE TABLE "{schema}".t (n INTEGER)')
        finally:
            warehouse.close()

"""The warehouse hook opens the core's warehouse from a standard Airflow DuckDB connection."""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING

import duckdb
import pytest
from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.hooks.warehouse import SegproviderWarehouseHook, UnsupportedWarehouseError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def test_duckdb_connection_gives_a_duckdb_warehouse_on_its_file(
        tmp_path: Path, define_connection: Callable[..., Connection]) -> None:
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as seed:
        seed.execute("CREATE SCHEMA marketing")
        seed.execute("CREATE TABLE marketing.customers AS SELECT range AS id FROM range(5)")
    define_connection("wh", "duckdb", host=str(database), extra={"threads": 2})

    warehouse = SegproviderWarehouseHook(warehouse_conn_id="wh").get_warehouse(schema="marketing")
    try:
        assert isinstance(warehouse, DuckDBWarehouse)
        assert warehouse.path == str(database)
        assert warehouse.schema == "marketing"
        assert warehouse.query("SELECT count(*), sum(id) FROM marketing.customers") == [(5, 10)]
        # DuckDBHook applied the connection's extra when it opened the database
        assert warehouse.query("SELECT current_setting('threads')") == [(2,)]
        assert warehouse.columns("customers") == {"id": "BIGINT"}
        with warehouse.transaction():
            warehouse.execute("CREATE TABLE marketing.written AS SELECT 1 AS x")
    finally:
        warehouse.close()
    with duckdb.connect(str(database), read_only=True) as check:
        assert check.execute("SELECT x FROM marketing.written").fetchall() == [(1,)]


def test_default_schema_and_connection(tmp_path: Path, define_connection: Callable[..., Connection]) -> None:
    define_connection(SegproviderWarehouseHook.default_conn_name, "duckdb", host=str(tmp_path / "w.duckdb"))

    hook = SegproviderWarehouseHook()
    warehouse = hook.get_conn()
    try:
        assert warehouse.schema == "main"
        assert warehouse.query("SELECT 42") == [(42,)]
    finally:
        warehouse.close()
    assert hook.test_connection() == (True, "warehouse connection 'segprovider_warehouse': duckdb warehouse answers")


def test_unsupported_connection_type_names_the_connection_and_the_supported_types(
        define_connection: Callable[..., Connection]) -> None:
    define_connection("wh_my", "mysql", host="db.example", login="u", password="p4ssw0rd-x")

    with pytest.raises(UnsupportedWarehouseError) as failure:
        SegproviderWarehouseHook("wh_my").get_warehouse()

    message = str(failure.value)
    assert "'wh_my'" in message and "'mysql'" in message
    assert "supported: duckdb, google_cloud_platform, postgres, snowflake" in message
    assert "p4ssw0rd-x" not in message
    copy = pickle.loads(pickle.dumps(failure.value))
    assert (str(copy), copy.conn_id, copy.conn_type) == (message, "wh_my", "mysql")
    ok, why = SegproviderWarehouseHook("wh_my").test_connection()
    assert not ok and "'wh_my'" in why


def test_the_connection_is_read_on_first_use_only(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_lookup(cls: type[BaseHook], conn_id: str) -> Connection:
        raise AssertionError(f"looked up {conn_id} at construction")

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(no_lookup))
    hook = SegproviderWarehouseHook("wh_missing")
    monkeypatch.undo()

    with pytest.raises(AirflowNotFoundException, match="wh_missing"):
        hook.get_warehouse()

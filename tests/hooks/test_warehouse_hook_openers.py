"""The warehouse hook opens PostgreSQL, Snowflake and BigQuery warehouses through Airflow's own hooks.

* PostgreSQL: an Airflow connection defined as ``AIRFLOW_CONN_<ID>`` pointing at the real server;
  ``PostgresHook`` opens it (psycopg 3 or psycopg2, as the provider chooses) and the project
  evaluates on it.
* Snowflake: ``SnowflakeHook`` on a ``snowflake`` connection, with ``fakesnow`` patching the
  connector's ``connect``.
* BigQuery: no server here. What runs: the dataset/project/location resolution and its error
  (before anything contacts Google). What does not: ``BigQueryHook.get_client()`` and the
  client's calls; the SQL itself is covered by the differential tests (BigQuery SQL on DuckDB).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from airflow.sdk import Connection

from airflow_segprovider.core.errors import SegproviderError
from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.warehouses import PostgresWarehouse, SnowflakeWarehouse
from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.example.generate import generate
from airflow_segprovider.hooks.warehouse import SegproviderWarehouseHook
from support.warehouse_matrix import copy_tables, open_warehouse, postgres_schema

pytestmark = pytest.mark.integration

PROJECT_DIR = EXAMPLE_PROJECT


@pytest.fixture
def define_connection(monkeypatch):
    def define(conn_id: str, conn_type: str, *, extra: dict | None = None, **fields) -> Connection:
        connection = Connection(conn_id=conn_id, conn_type=conn_type, extra=json.dumps(extra) if extra else None,
                                **fields)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection.as_json())
        return connection

    return define


def test_postgres_connection_opens_the_real_server_and_evaluates(define_connection):
    define_connection("wh_pg", "postgres", host="127.0.0.1", port=5432, login="postgres", schema="test")
    project = load_project(PROJECT_DIR)
    with postgres_schema() as schema, open_warehouse("duckdb") as source:
        generate(source, 300, seed=2)
        warehouse = SegproviderWarehouseHook("wh_pg").get_warehouse(schema=schema)
        try:
            assert isinstance(warehouse, PostgresWarehouse) and warehouse.schema == schema
            assert warehouse.query("SELECT current_database(), current_schema()") == [("test", schema)]
            copy_tables(source, warehouse, ["customers", "events", "orders", "consents"])
            result = evaluate(project, warehouse, dt.datetime(2026, 11, 24), run_id="hook")
            assert sum(d.members for d in result.diffs) > 0
        finally:
            warehouse.close()
    ok, message = SegproviderWarehouseHook("wh_pg").test_connection()
    assert ok and "postgres warehouse answers" in message


def test_postgres_default_schema_is_public(define_connection):
    define_connection("wh_pg_default", "postgres", host="127.0.0.1", port=5432, login="postgres", schema="test")
    warehouse = SegproviderWarehouseHook("wh_pg_default").get_warehouse()
    try:
        assert warehouse.schema == "public"
    finally:
        warehouse.close()


def test_postgres_connection_to_a_dead_port_fails_with_the_driver_error(define_connection):
    define_connection("wh_pg_dead", "postgres", host="127.0.0.1", port=1, login="postgres", schema="test")
    ok, message = SegproviderWarehouseHook("wh_pg_dead").test_connection()
    assert not ok and "'wh_pg_dead'" in message


def test_snowflake_connection_opens_through_snowflake_hook_on_fakesnow(define_connection):
    import fakesnow

    database = f"db_{uuid.uuid4().hex[:8]}"
    define_connection("wh_sf", "snowflake", login="user", password="secret", schema="marketing",
                      extra={"account": "acme", "database": database, "warehouse": "wh", "role": "r"})
    with fakesnow.patch():
        warehouse = SegproviderWarehouseHook("wh_sf").get_warehouse()
        try:
            assert isinstance(warehouse, SnowflakeWarehouse) and warehouse.schema == "marketing"
            warehouse.execute("CREATE TABLE customers (customer_id VARCHAR, email VARCHAR)")
            warehouse.execute("INSERT INTO customers VALUES ('1', 'a@example.com')")
            assert warehouse.query_records("SELECT customer_id, email FROM customers") == [
                {"customer_id": "1", "email": "a@example.com"}]
            assert warehouse.columns("customers") == {"customer_id": "TEXT", "email": "TEXT"}
        finally:
            warehouse.close()


def test_bigquery_settings_come_from_the_argument_then_the_extra(define_connection):
    define_connection("wh_bq", "google_cloud_platform",
                      extra={"project": "acme-data", "dataset": "marketing", "location": "EU"})
    hook = SegproviderWarehouseHook("wh_bq")
    assert hook.bigquery_settings(None) == {"dataset": "marketing", "project": "acme-data", "location": "EU"}
    assert hook.bigquery_settings("segments")["dataset"] == "segments"


def test_bigquery_without_a_dataset_says_where_to_set_it(define_connection):
    define_connection("wh_bq_nodataset", "google_cloud_platform", extra={"project": "acme-data"})
    with pytest.raises(SegproviderError, match="names no dataset") as failure:
        SegproviderWarehouseHook("wh_bq_nodataset").get_warehouse()
    assert "wh_bq_nodataset" in str(failure.value) and "warehouse: {schema:" in str(failure.value)

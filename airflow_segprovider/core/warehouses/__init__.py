"""Warehouse adapters: one interface, four warehouses.

:class:`~airflow_segprovider.core.warehouses.base.Warehouse` is the interface the engine,
the membership store and the sync state run on. DuckDB (embedded default) lives in
:mod:`airflow_segprovider.core.warehouses.duckdb`; the adapters here wrap the driver
connections that Airflow's own hooks hand out (``PostgresHook``, ``SnowflakeHook``,
``BigQueryHook``) and never import Airflow or the driver at module import time.
"""

from __future__ import annotations

from airflow_segprovider.core.warehouses.base import Warehouse
from airflow_segprovider.core.warehouses.bigquery import BigQueryWarehouse
from airflow_segprovider.core.warehouses.dbapi import DBAPIWarehouse, arrow_table_ddl
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.core.warehouses.postgres import PostgresWarehouse
from airflow_segprovider.core.warehouses.snowflake import SnowflakeWarehouse

__all__ = [
    "BigQueryWarehouse",
    "DBAPIWarehouse",
    "DuckDBWarehouse",
    "PostgresWarehouse",
    "SnowflakeWarehouse",
    "Warehouse",
    "arrow_table_ddl",
]

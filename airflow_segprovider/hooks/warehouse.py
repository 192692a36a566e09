"""The warehouse hook: the core's :class:`~airflow_segprovider.core.warehouses.base.Warehouse` from an Airflow connection.

Users configure the warehouse the standard way, with the connection type of
Airflow's own provider for it; this hook asks that provider's hook for an open
connection and wraps it in the core's adapter:

========================== ============================== ====================================
connection type            provider hook                  adapter
========================== ============================== ====================================
``duckdb``                 ``DuckDBHook``                 ``DuckDBWarehouse``
``postgres``               ``PostgresHook``               ``PostgresWarehouse``
``snowflake``              ``SnowflakeHook``              ``SnowflakeWarehouse``
``google_cloud_platform``  ``BigQueryHook``               ``BigQueryWarehouse``
========================== ============================== ====================================

The provider packages are imported only when a connection of their type is opened
(``pip install airflow-segprovider[postgres]``, ``[snowflake]``, ``[bigquery]``).
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_segprovider.core.errors import TerminalError

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Connection

    from airflow_segprovider.core.warehouses.base import Warehouse

__all__ = ["SUPPORTED_CONN_TYPES", "SegproviderWarehouseHook", "UnsupportedWarehouseError"]

#: schema of the project's tables when neither the caller nor the connection names one
DEFAULT_SCHEMAS = {"duckdb": "main", "postgres": "public", "snowflake": "PUBLIC"}


class UnsupportedWarehouseError(TerminalError):
    """The warehouse connection's type has no adapter; retrying cannot help.

    :param conn_id: the Airflow connection.
    :param conn_type: its connection type.
    """

    def __init__(self, conn_id: str, conn_type: str | None) -> None:
        self.conn_id = conn_id
        self.conn_type = conn_type
        super().__init__(
            f"warehouse connection '{conn_id}' has conn_type {conn_type!r}, which segprovider cannot use as a "
            f"warehouse; supported: {', '.join(SUPPORTED_CONN_TYPES)} (DuckDB, PostgreSQL, Snowflake, and BigQuery "
            "through a Google Cloud connection): create the connection with one of these types")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable with its fields, as Airflow moves exceptions across processes
        return (type(self), (self.conn_id, self.conn_type))


class SegproviderWarehouseHook(BaseHook):
    """Open the warehouse a segments project runs on, from an Airflow connection.

    The connection's type picks the adapter: ``duckdb`` opens the database through
    :class:`~airflow.providers.duckdb.hooks.duckdb.DuckDBHook` (path, extensions, memory and thread
    limits, MotherDuck token: all as that provider documents them). The connection is read when the
    warehouse is first asked for, never at construction.

    :param warehouse_conn_id: the Airflow connection (``segprovider_warehouse`` by default).
    :param read_only: open the warehouse for reading only: DuckDB opens its file read-only (so other
        processes may read it too, and none may write it meanwhile), PostgreSQL sessions are set read-only.
    """

    conn_name_attr = "warehouse_conn_id"
    default_conn_name = "segprovider_warehouse"
    hook_name = "Segprovider warehouse"

    def __init__(self, warehouse_conn_id: str = default_conn_name, *, read_only: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.warehouse_conn_id = warehouse_conn_id
        self.read_only = read_only

    @cached_property
    def airflow_connection(self) -> Connection:
        """The Airflow connection, looked up on first use.

        :raises AirflowNotFoundException: it is not defined.
        """
        return self.get_connection(self.warehouse_conn_id)

    def get_warehouse(self, schema: str | None = None) -> Warehouse:
        """A new warehouse on the connection; the caller closes it.

        :param schema: schema (BigQuery: dataset) of the project's tables. When not given: DuckDB
            ``main``, PostgreSQL ``public``, Snowflake the connection's schema or ``PUBLIC``, BigQuery
            the connection extra ``dataset`` (required there).
        :raises UnsupportedWarehouseError: the connection's type has no adapter.
        :raises AirflowNotFoundException: the connection is not defined.
        """
        conn_type = self.airflow_connection.conn_type
        opener = _OPENERS.get(conn_type or "")
        if opener is None:
            raise UnsupportedWarehouseError(self.warehouse_conn_id, conn_type)
        return opener(self, schema)

    def get_conn(self) -> Warehouse:
        """A new warehouse on the connection, in the default schema (see :meth:`get_warehouse`)."""
        return self.get_warehouse()

    def test_connection(self) -> tuple[bool, str]:
        """Open the warehouse and run ``SELECT 1``."""
        try:
            warehouse = self.get_warehouse()
        except Exception as exc:
            return False, f"warehouse connection '{self.warehouse_conn_id}': {exc}"
        try:
            warehouse.query("SELECT 1")
        except Exception as exc:
            return False, f"warehouse connection '{self.warehouse_conn_id}': SELECT 1 failed: {exc}"
        finally:
            close = getattr(warehouse, "close", None)
            if close is not None:
                close()
        return True, f"warehouse connection '{self.warehouse_conn_id}': {warehouse.dialect} warehouse answers"

    def duckdb_database(self) -> str:
        """The database a ``duckdb`` connection opens, as ``DuckDBHook`` resolves it (the ``database`` extra,
        a MotherDuck database, the host, else ``:memory:``)."""
        return self._duckdb_hook().get_database()

    def _duckdb_hook(self) -> Any:
        from airflow.providers.duckdb.hooks.duckdb import DuckDBHook

        return DuckDBHook(duckdb_conn_id=self.warehouse_conn_id, read_only=True if self.read_only else None)

    def _open_duckdb(self, schema: str | None) -> Warehouse:
        from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

        duckdb_hook = self._duckdb_hook()
        connection = duckdb_hook.get_conn()
        try:
            return DuckDBWarehouse(_redact_database(duckdb_hook.get_database()), connection=connection,
                                   schema=schema or DEFAULT_SCHEMAS["duckdb"])
        except Exception:
            connection.close()
            raise

    def _open_postgres(self, schema: str | None) -> Warehouse:
        """``PostgresHook.get_conn()`` (psycopg2 or psycopg 3, as the provider chooses)."""
        postgres_hook_class = _provider_class("postgres", "airflow.providers.postgres.hooks.postgres", "PostgresHook")
        from airflow_segprovider.core.warehouses.postgres import PostgresWarehouse

        connection = postgres_hook_class(postgres_conn_id=self.warehouse_conn_id).get_conn()
        try:
            warehouse = PostgresWarehouse(connection, schema=schema or DEFAULT_SCHEMAS["postgres"])
            if self.read_only:
                warehouse.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            return warehouse
        except Exception:
            connection.close()
            raise

    def _open_snowflake(self, schema: str | None) -> Warehouse:
        """``SnowflakeHook.get_conn()``; the schema defaults to the connection's."""
        snowflake_hook_class = _provider_class("snowflake", "airflow.providers.snowflake.hooks.snowflake",
                                               "SnowflakeHook")
        from airflow_segprovider.core.warehouses.snowflake import SnowflakeWarehouse

        snowflake_hook = snowflake_hook_class(snowflake_conn_id=self.warehouse_conn_id)
        connection = snowflake_hook.get_conn()
        try:
            return SnowflakeWarehouse(
                connection, schema=schema or self.airflow_connection.schema or DEFAULT_SCHEMAS["snowflake"])
        except Exception:
            connection.close()
            raise

    def bigquery_settings(self, schema: str | None) -> dict[str, str | None]:
        """Dataset, project and location of a BigQuery warehouse, read without contacting Google.

        Precedence: the ``schema`` argument, then the connection extra ``dataset``; ``project``
        and ``location`` from the extra (the project otherwise comes from the credentials).

        :raises TerminalError: no dataset is named anywhere.
        """
        extra = self.airflow_connection.extra_dejson
        dataset = schema or extra.get("dataset")
        if not dataset:
            raise TerminalError(
                f"warehouse connection '{self.warehouse_conn_id}' is a BigQuery (google_cloud_platform) connection "
                "but names no dataset: set 'warehouse: {schema: <dataset>}' in the project or add "
                '{"dataset": "<dataset>"} to the connection extra')
        project = extra.get("project") or extra.get("project_id")
        return {"dataset": dataset, "project": project, "location": extra.get("location")}

    def _open_bigquery(self, schema: str | None) -> Warehouse:
        """``BigQueryHook.get_client()``; every statement runs in one BigQuery session."""
        settings = self.bigquery_settings(schema)
        bigquery_hook_class = _provider_class("bigquery", "airflow.providers.google.cloud.hooks.bigquery",
                                              "BigQueryHook")
        from airflow_segprovider.core.warehouses.bigquery import BigQueryWarehouse

        bigquery_hook = bigquery_hook_class(gcp_conn_id=self.warehouse_conn_id, location=settings["location"])
        client = bigquery_hook.get_client(project_id=settings["project"] or bigquery_hook.project_id,
                                          location=settings["location"])
        dataset = settings["dataset"] if "." in settings["dataset"] or not settings["project"] else \
            f"{settings['project']}.{settings['dataset']}"
        try:
            return BigQueryWarehouse(client, dataset=dataset, location=settings["location"])
        except Exception:
            client.close()
            raise


def _provider_class(extra: str, module: str, name: str) -> Any:
    """The provider's hook class, imported on first use; a clear error when the provider is missing."""
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise TerminalError(
            f"{name} is not installed: install the provider with 'pip install airflow-segprovider[{extra}]' "
            f"({exc})") from exc


def _redact_database(database: str) -> str:
    # a MotherDuck database string carries its token; the warehouse's path is shown in logs and reprs
    return re.sub(r"motherduck_token=[^&]*", "motherduck_token=***", database)


_OPENERS: dict[str, Callable[[SegproviderWarehouseHook, str | None], Warehouse]] = {
    "duckdb": SegproviderWarehouseHook._open_duckdb,
    "postgres": SegproviderWarehouseHook._open_postgres,
    "snowflake": SegproviderWarehouseHook._open_snowflake,
    "google_cloud_platform": SegproviderWarehouseHook._open_bigquery,
}

SUPPORTED_CONN_TYPES: tuple[str, ...] = tuple(sorted(_OPENERS))

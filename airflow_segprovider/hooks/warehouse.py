"""The warehouse hook: the core's :class:`~airflow_segprovider.core.warehouse.Warehouse` from an Airflow connection.

Users configure the warehouse the standard way, with the connection type of
Airflow's own provider for it; this hook asks that provider's hook for an open
connection and wraps it in the core's adapter. Only DuckDB
(``apache-airflow-providers-duckdb``) is supported so far.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from airflow_segprovider.core.errors import SegproviderError

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Connection

    from airflow_segprovider.core.warehouse import Warehouse

__all__ = ["SUPPORTED_CONN_TYPES", "SegproviderWarehouseHook", "UnsupportedWarehouseError"]

DEFAULT_SCHEMA = "main"


class UnsupportedWarehouseError(SegproviderError):
    """The warehouse connection's type has no adapter; retrying cannot help.

    :param conn_id: the Airflow connection.
    :param conn_type: its connection type.
    """

    def __init__(self, conn_id: str, conn_type: str | None) -> None:
        self.conn_id = conn_id
        self.conn_type = conn_type
        super().__init__(
            f"warehouse connection '{conn_id}' has conn_type {conn_type!r}, which segprovider cannot use as a "
            f"warehouse yet; supported: {', '.join(SUPPORTED_CONN_TYPES)} (a DuckDB connection of "
            "apache-airflow-providers-duckdb: the database file in host). PostgreSQL, Snowflake and BigQuery "
            "adapters are planned for a later release")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable with its fields, as Airflow moves exceptions across processes
        return (type(self), (self.conn_id, self.conn_type))


class SegproviderWarehouseHook(BaseHook):
    """Open the warehouse a segments project runs on, from an Airflow connection.

    The connection's type picks the adapter: ``duckdb`` opens the database through
    :class:`~airflow.providers.duckdb.hooks.duckdb.DuckDBHook` (path, extensions, memory and thread
    limits, MotherDuck token: all as that provider documents them). The connection is read when the
    warehouse is first asked for, never at construction.

    :param warehouse_conn_id: the Airflow connection (``segprovider_warehouse`` by default).
    """

    conn_name_attr = "warehouse_conn_id"
    default_conn_name = "segprovider_warehouse"
    hook_name = "Segprovider warehouse"

    def __init__(self, warehouse_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.warehouse_conn_id = warehouse_conn_id

    @cached_property
    def airflow_connection(self) -> Connection:
        """The Airflow connection, looked up on first use.

        :raises AirflowNotFoundException: it is not defined.
        """
        return self.get_connection(self.warehouse_conn_id)

    def get_warehouse(self, schema: str | None = None) -> Warehouse:
        """A new warehouse on the connection; the caller closes it.

        :param schema: schema of the project's tables (``main`` when not given).
        :raises UnsupportedWarehouseError: the connection's type has no adapter.
        :raises AirflowNotFoundException: the connection is not defined.
        """
        conn_type = self.airflow_connection.conn_type
        opener = _OPENERS.get(conn_type or "")
        if opener is None:
            raise UnsupportedWarehouseError(self.warehouse_conn_id, conn_type)
        return opener(self, schema or DEFAULT_SCHEMA)

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

    def _open_duckdb(self, schema: str) -> Warehouse:
        from airflow.providers.duckdb.hooks.duckdb import DuckDBHook

        from airflow_segprovider.core.warehouse import DuckDBWarehouse

        duckdb_hook = DuckDBHook(duckdb_conn_id=self.warehouse_conn_id)
        connection = duckdb_hook.get_conn()
        try:
            return DuckDBWarehouse(_redact_database(duckdb_hook.get_database()), connection=connection, schema=schema)
        except Exception:
            connection.close()
            raise


def _redact_database(database: str) -> str:
    # a MotherDuck database string carries its token; the warehouse's path is shown in logs and reprs
    return re.sub(r"motherduck_token=[^&]*", "motherduck_token=***", database)


_OPENERS: dict[str, Callable[[SegproviderWarehouseHook, str], Warehouse]] = {
    "duckdb": SegproviderWarehouseHook._open_duckdb,
}

SUPPORTED_CONN_TYPES: tuple[str, ...] = tuple(sorted(_OPENERS))

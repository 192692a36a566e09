"""Great Expectations' own SQL datasources, where they work: the gate's metrics computed in the warehouse.

Which path each warehouse takes (``evaluate_gate(..., gx_path="auto")``):

==============  ===========================================================================
warehouse       path
==============  ===========================================================================
PostgreSQL      GX's PostgreSQL datasource (``context.data_sources.add_postgres``): each
                gate query becomes a GX query asset, and GX computes every metric
                (row counts, ranges, nulls, unexpected rows) in PostgreSQL with SQL;
                only metric results come back. Proven against the real server in
                ``tests/gates/test_gates_postgres.py``.
DuckDB          pandas: GX's SQL datasource through duckdb-engine returns empty metrics
                (see :mod:`.frames`); the gate query's small result is validated as a
                DataFrame.
Snowflake       pandas on the query result: GX's Snowflake datasource cannot create its
                engine here (snowflake-sqlalchemy 1.11 against SQLAlchemy 2.1), see
                ``docs/warehouses.md``.
BigQuery        pandas on the query result (no emulator to prove GX's BigQuery datasource).
==============  ===========================================================================

The ``types`` gate always takes the pandas path: it checks the type each attribute
*arrives as* in a fetched sample, which is a property of the client-side rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_segprovider.core.sql.dialects import ts_literal

if TYPE_CHECKING:
    from airflow_segprovider.core.warehouses.base import Warehouse

GX_PATHS = ("auto", "sql", "pandas")
#: Gates whose checks are properties of the fetched rows (dtypes), never pushed down.
PANDAS_ONLY_GATES = frozenset({"types"})


@dataclass(frozen=True)
class SqlDatasource:
    """How to open GX's datasource for a warehouse.

    :param kind: the GX data source factory (``postgres``).
    :param connection_string: SQLAlchemy URL (the password inside it is never logged by us).
    """

    kind: str
    connection_string: str

    def add_to(self, context: Any, name: str) -> Any:
        factory = getattr(context.data_sources, f"add_{self.kind}")
        return factory(name, connection_string=self.connection_string)

    def __repr__(self) -> str:  # the URL carries the password
        return f"SqlDatasource(kind={self.kind!r})"


def postgres_url(connection: Any, schema: str | None = None) -> str | None:
    """The SQLAlchemy URL (psycopg2 driver) of an open psycopg2 or psycopg 3 connection, password included.

    :param schema: put first on GX's ``search_path``, as the adapter does on its own session (the
        core's statements name some of its tables unqualified).
    """
    info = getattr(connection, "info", None)
    if info is None:
        return None
    host = getattr(info, "host", None) or "localhost"
    port = getattr(info, "port", None) or 5432
    user = getattr(info, "user", None) or ""
    dbname = getattr(info, "dbname", None) or ""
    password = getattr(info, "password", None) or ""
    # GX's PostgreSQL datasource accepts the psycopg2 SQLAlchemy driver (not psycopg 3's), whichever
    # driver the adapter's own connection uses
    driver = "psycopg2"
    credentials = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    query = []
    if host.startswith("/"):  # a Unix socket directory
        query += [f"host={quote(host, safe='')}", f"port={port}"]
        address = f"/{quote(dbname, safe='')}"
    else:
        address = f"{host}:{port}/{quote(dbname, safe='')}"
    if schema:
        schema_name = '"' + schema.replace('"', '""') + '"'
        query.append("options=" + quote(f"-c search_path={schema_name},public -c TimeZone=UTC", safe=""))
    return f"postgresql+{driver}://{credentials}@{address}" + ("?" + "&".join(query) if query else "")


def sql_datasource(warehouse: Warehouse, gate: str, gx_path: str = "auto") -> SqlDatasource | None:
    """GX's SQL datasource for ``warehouse``, or None where the gate runs on pandas.

    :param gx_path: ``auto`` (SQL where proven: PostgreSQL), ``sql`` (insist: raise where there is
        none) or ``pandas`` (always the pandas path).
    :raises ValueError: ``gx_path`` unknown, or ``sql`` asked where no SQL datasource is available.
    """
    if gx_path not in GX_PATHS:
        raise ValueError(f"unknown gx_path {gx_path!r}; use one of {', '.join(GX_PATHS)}")
    if gx_path == "pandas" or gate in PANDAS_ONLY_GATES:
        return None
    datasource = None
    if warehouse.dialect == "postgres":
        url = postgres_url(getattr(warehouse, "connection", None), warehouse.schema)
        if url:
            datasource = SqlDatasource("postgres", url)
    if datasource is None and gx_path == "sql":
        raise ValueError(f"gate {gate!r}: no Great Expectations SQL datasource for a {warehouse.dialect} warehouse "
                         "here; use gx_path='pandas' (or 'auto')")
    return datasource


def age_hours_sql(query: str, as_of: dt.datetime) -> str:
    """``query`` plus ``age_hours`` = hours from its ``newest`` to ``as_of`` (the freshness gate), in SQL.

    For the SQL datasource path, which only PostgreSQL takes (see :func:`sql_datasource`); the other
    warehouses compute ages on the pandas frame (``frames.add_ages``).
    """
    seconds = f"EXTRACT(EPOCH FROM ({ts_literal(as_of)} - CAST(q.newest AS TIMESTAMP)))"
    return f"SELECT q.*, ROUND(CAST({seconds} AS NUMERIC) / 3600.0, 3) AS age_hours FROM ({query}) AS q"

"""The ``freshness`` gate's query: how recent each table of the data model, and each source's last load, is."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from airflow_segprovider.core.evaluate.customers import customer_relation_sql
from airflow_segprovider.core.sql.dialects import quote_identifier as quote
from airflow_segprovider.core.sql.dialects import quoted_table as table_ref
from airflow_segprovider.core.sql.dialects import render, text_literal, ts_literal
from airflow_segprovider.core.state.ingest import LOADS_TABLE
from airflow_segprovider.gates.queries.common import no_rows

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project


def timestamp_columns(project: Project) -> dict[str, list[str]]:
    """Table -> the timestamp columns whose maximum says how recent it is.

    Event and order tables: their timestamp column; the consent table: its ``updated_at``;
    the customer table: every attribute declared ``timestamp``.
    """
    model = project.model
    out: dict[str, list[str]] = {}

    def add(table: str, column: str) -> None:
        columns = out.setdefault(table, [])
        if column not in columns:
            columns.append(column)

    for attribute in model.customer.attributes.values():
        if attribute.type == "timestamp":
            add(model.customer.table, attribute.column)
    for source in model.events.values():
        add(source.table, source.timestamp)
    if model.consent is not None:
        add(model.consent.table, model.consent.updated_at_column)
    return out


def freshness_sql(project: Project, as_of: dt.datetime, *, dialect: str = "duckdb", schema: str | None = None,
                  include_loads: bool = False) -> str:
    """One row per table (newest timestamp at or before ``as_of``) and, with ``include_loads``, per source.

    Columns: ``kind`` (``data`` or ``load``), ``table_name``, ``timestamp_column``, ``source``,
    ``newest``, ``row_count``.

    :param include_loads: also read each declared source's latest successful load from the ingest
        ledger (only when that table exists; a source never loaded gives ``newest`` NULL).
    """
    at = ts_literal(as_of)
    parts = []
    for table, columns in timestamp_columns(project).items():
        # the customer table's timestamps as they were at as_of (point-in-time attributes)
        ref = (customer_relation_sql(project, schema, as_of) if table == project.model.customer.table
               else table_ref(table, schema))
        newest = " UNION ALL ".join(
            f"SELECT MAX({quote(c)}) AS v FROM {ref} WHERE {quote(c)} <= {at}" for c in columns)
        parts.append(
            f"SELECT 'data' AS kind, {text_literal(table)} AS table_name, "
            f"{text_literal(', '.join(columns))} AS timestamp_column, CAST(NULL AS VARCHAR) AS source, "
            f"(SELECT MAX(v) FROM ({newest}) AS n) AS newest, (SELECT COUNT(*) FROM {ref}) AS row_count")
    if include_loads:
        loads = table_ref(LOADS_TABLE, schema)
        for name, source in sorted(project.sources.items()):
            latest = (f"SELECT finished_at, rows_loaded, ROW_NUMBER() OVER (ORDER BY finished_at DESC) AS rn "
                      f"FROM {loads} WHERE source = {text_literal(name)} AND status = 'succeeded'")
            parts.append(
                f"SELECT 'load' AS kind, {text_literal(source.table)} AS table_name, "
                f"'finished_at' AS timestamp_column, {text_literal(name)} AS source, l.finished_at AS newest, "
                f"l.rows_loaded AS row_count FROM (SELECT 1 AS one) AS one LEFT JOIN ({latest}) AS l ON l.rn = 1")
    rows = " UNION ALL ".join(parts) if parts else no_rows(
        {"kind": "VARCHAR", "table_name": "VARCHAR", "timestamp_column": "VARCHAR", "source": "VARCHAR",
         "newest": "TIMESTAMP", "row_count": "BIGINT"})
    return render(rows, dialect)

"""The hybrid model's tables: the hub's profiles, its builds, its freshness and the drift reports.

``segprovider_hub_profiles`` (the default of ``hub.table``)
    one row per customer: ``customer_key``, every hub attribute and, per attribute,
    ``<attribute>__changed_at`` (when its source last changed the value), plus ``hub_built_at``.
    Each build writes ``<table>__next`` beside it and swaps it in one transaction.
``segprovider_hub_builds``
    one row per build: its ``as_of``, when it ran, how many profiles it holds and how many changed.
``segprovider_hub_freshness``
    one row per attribute: its sources' latest change and when the hub last absorbed it.
``segprovider_drift_reports``
    one row per drift monitor finding (per run, kind, name and destination).

Written once in DuckDB's dialect and rendered for the warehouse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import quote_identifier as q
from airflow_segprovider.core.sql.dialects import render

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_segprovider.core.warehouses.base import Warehouse

HUB_PROFILES = "segprovider_hub_profiles"
HUB_BUILDS = "segprovider_hub_builds"
HUB_FRESHNESS = "segprovider_hub_freshness"
DRIFT_REPORTS = "segprovider_drift_reports"
#: Every table this module names.
TABLES = (HUB_PROFILES, HUB_BUILDS, HUB_FRESHNESS, DRIFT_REPORTS)

#: The profile table's key column, and the suffix of each attribute's change-time column.
KEY = "customer_key"
CHANGED_SUFFIX = "__changed_at"

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {HUB_BUILDS} (
        build_id VARCHAR NOT NULL, as_of TIMESTAMP NOT NULL, built_at TIMESTAMP NOT NULL,
        profiles BIGINT NOT NULL, changed_profiles BIGINT NOT NULL, duration_s DOUBLE, PRIMARY KEY (build_id))""",
    f"""CREATE TABLE IF NOT EXISTS {HUB_FRESHNESS} (
        attribute VARCHAR NOT NULL, source_table VARCHAR NOT NULL, sources VARCHAR,
        source_changed_at TIMESTAMP, hub_built_at TIMESTAMP NOT NULL, build_id VARCHAR NOT NULL,
        changed_profiles BIGINT NOT NULL, PRIMARY KEY (attribute))""",
    f"""CREATE TABLE IF NOT EXISTS {DRIFT_REPORTS} (
        run_id VARCHAR NOT NULL, checked_at TIMESTAMP NOT NULL, kind VARCHAR NOT NULL, name VARCHAR NOT NULL,
        destination VARCHAR NOT NULL, expected BIGINT, reported BIGINT, drift DOUBLE, tolerance DOUBLE,
        status VARCHAR NOT NULL, detail VARCHAR, PRIMARY KEY (run_id, kind, name, destination))""",
)


def ensure_tables(warehouse: Warehouse) -> None:
    """Create the builds, freshness and drift tables when missing (the profile table is built, not ensured)."""
    for statement in _DDL:
        warehouse.execute(render(statement, warehouse.dialect))


def create_next_profiles(warehouse: Warehouse, next_table: str, select: str) -> None:
    """(Re)create the next build of the profile table, ``next_table`` (quoted), from ``select``."""
    warehouse.execute(render(f"DROP TABLE IF EXISTS {next_table}", warehouse.dialect))
    warehouse.execute(render(f"CREATE TABLE {next_table} AS {select}", warehouse.dialect))


def swap_in_profiles(warehouse: Warehouse, next_table: str, table: str, name: str,
                     drop_columns: Iterable[str]) -> None:
    """Drop the build's work columns from ``next_table`` and put it in place of ``table``.

    Run it inside the warehouse's transaction: readers see the previous build or the new one.

    :param next_table: the next build, quoted.
    :param table: the profile table, quoted.
    :param name: the profile table's unqualified name (what ``next_table`` is renamed to).
    :param drop_columns: the work columns to drop, unquoted.
    """
    for column in drop_columns:
        warehouse.execute(render(f"ALTER TABLE {next_table} DROP COLUMN {q(column)}", warehouse.dialect))
    warehouse.execute(render(f"DROP TABLE IF EXISTS {table}", warehouse.dialect))
    warehouse.execute(render(f"ALTER TABLE {next_table} RENAME TO {q(name)}", warehouse.dialect))

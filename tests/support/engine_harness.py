"""Shared plumbing of the engine tests: a data model, projects written as YAML, tables loaded into DuckDB.

Projects always go through :func:`~airflow_segprovider.core.project.loader.load_project`,
so every rule a test evaluates has passed the same validation a user's would.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import yaml

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.sql.dialects import ts_literal
from airflow_segprovider.core.state.membership import MEMBERSHIPS
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_segprovider.core.project.spec import Project

#: One attribute of every type (two of them read from a differently named column),
#: two event tables, an order table and consent with each kind of channel policy.
MODEL: dict[str, Any] = {
    "customer": {
        "table": "customers",
        "key": "customer_id",
        "attributes": {
            "name": {"type": "string"},
            "tier": {"type": "string", "column": "tier_code"},
            "score": {"type": "number"},
            "active": {"type": "boolean"},
            "birthday": {"type": "date"},
            "signup_at": {"type": "timestamp"},
            "seen_at": {"type": "timestamp", "column": "last_seen"},
        },
    },
    "event_tables": {
        "events": {
            "table": "events",
            "customer_key": "customer_id",
            "timestamp": "occurred_at",
            "type_column": "event_type",
            "event_types": ["view", "click", "buy"],
            "properties": {"revenue": "number", "channel": "string", "promo": "boolean",
                           "ship_date": "date", "seen": "timestamp"},
        },
        "app_events": {
            "table": "app_log",
            "customer_key": "cid",
            "timestamp": "ts",
            "type_column": "kind",
            "event_types": ["app_open"],
            "properties": {"screen": "string", "ms": "number"},
        },
    },
    "order_tables": {
        "orders": {
            "table": "orders",
            "customer_key": "customer_id",
            "timestamp": "ordered_at",
            "properties": {"amount": "number", "status": "string"},
        },
    },
    "consent": {
        "table": "consents",
        "customer_key": "customer_id",
        "channel_column": "channel",
        "opted_in_column": "opted_in",
        "updated_at_column": "updated_at",
        "channels": {"email": {"require_opt_in": True}, "sms": {}, "ads": {"require_opt_in": False}},
    },
}

#: Warehouse column types of :data:`MODEL`'s tables, in column order.
COLUMN_TYPES: dict[str, dict[str, str]] = {
    "customers": {"customer_id": "VARCHAR", "name": "VARCHAR", "tier_code": "VARCHAR", "score": "DOUBLE",
                  "active": "BOOLEAN", "birthday": "DATE", "signup_at": "TIMESTAMP", "last_seen": "TIMESTAMP"},
    "events": {"customer_id": "VARCHAR", "occurred_at": "TIMESTAMP", "event_type": "VARCHAR", "revenue": "DOUBLE",
               "channel": "VARCHAR", "promo": "BOOLEAN", "ship_date": "DATE", "seen": "TIMESTAMP"},
    "app_log": {"cid": "VARCHAR", "ts": "TIMESTAMP", "kind": "VARCHAR", "screen": "VARCHAR", "ms": "DOUBLE"},
    "orders": {"customer_id": "VARCHAR", "ordered_at": "TIMESTAMP", "amount": "DOUBLE", "status": "VARCHAR"},
    "consents": {"customer_id": "VARCHAR", "channel": "VARCHAR", "opted_in": "BOOLEAN", "updated_at": "TIMESTAMP"},
}

#: Destinations reaching each consent channel.
DESTINATIONS: list[dict[str, Any]] = [
    {"name": "newsletter", "kind": "mailchimp", "connection_id": "mc", "channel": "email", "identity": "name"},
    {"name": "texts", "kind": "webhook", "connection_id": "hook", "channel": "sms", "identity": "name"},
    {"name": "audience", "kind": "meta", "connection_id": "meta", "channel": "ads", "identity": "name"},
]

_ARROW_TYPES = {
    "VARCHAR": pa.string(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(), "DATE": pa.date32(),
    "TIMESTAMP": pa.timestamp("us"), "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"), "BIGINT": pa.int64(),
}


def write_project(folder: Path, segments: Sequence[Mapping[str, Any]], *, model: Mapping[str, Any] | None = None,
                  priority_groups: Sequence[Mapping[str, Any]] = (),
                  destinations: Sequence[Mapping[str, Any]] = (),
                  syncs: Sequence[Mapping[str, Any]] = ()) -> Project:
    """Write a project as YAML files into ``folder`` and load it (validation included)."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, Any]] = {
        "segprovider_project.yml": {"project": {"name": "engine_test", "version": 1}},
        "model.yml": {"model": copy.deepcopy(dict(model if model is not None else MODEL))},
        "segments.yml": {"segments": [dict(s) for s in segments]},
    }
    if priority_groups:
        files["segments.yml"]["priority_groups"] = [dict(g) for g in priority_groups]
    if destinations or syncs:
        files["destinations.yml"] = {"destinations": [dict(d) for d in destinations],
                                     "syncs": [dict(s) for s in syncs]}
    for name, document in files.items():
        (folder / name).write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return load_project(folder)


def create_tables(connection: Any, tables: Mapping[str, Sequence[Mapping[str, Any]]],
                  column_types: Mapping[str, Mapping[str, str]] = COLUMN_TYPES) -> None:
    """Create every table of ``column_types`` with exactly those types and insert ``tables``' rows."""
    for table, columns in column_types.items():
        connection.execute(f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
        rows = tables.get(table, [])
        if not rows:
            continue
        # Types without an Arrow twin here (DECIMAL, INTEGER, ...) arrive as Arrow infers them; DuckDB casts on insert.
        data = {c: [row.get(c) for row in rows] for c in columns}
        batch = pa.table({c: pa.array(values, type=_ARROW_TYPES.get(columns[c])) for c, values in data.items()})
        connection.register("_engine_test_rows", batch)
        try:
            connection.execute(f"INSERT INTO {table} SELECT * FROM _engine_test_rows")
        finally:
            connection.unregister("_engine_test_rows")


def warehouse_with(tables: Mapping[str, Sequence[Mapping[str, Any]]],
                   column_types: Mapping[str, Mapping[str, str]] = COLUMN_TYPES) -> DuckDBWarehouse:
    """A fresh in-memory DuckDB warehouse holding ``tables``."""
    warehouse = DuckDBWarehouse(":memory:")
    create_tables(warehouse.connection, tables, column_types)
    return warehouse


def stored_arms(warehouse: DuckDBWarehouse, as_of: dt.datetime) -> dict[str, dict[str, str | None]]:
    """segment -> {customer key -> arm} of the ``as_of`` snapshot, read from the membership table."""
    out: dict[str, dict[str, str | None]] = {}
    for segment, key, arm in warehouse.query(
            f"SELECT segment, customer_key, arm FROM {MEMBERSHIPS} WHERE as_of = {ts_literal(as_of)}"):
        assert key not in out.setdefault(segment, {}), f"{segment}: key {key!r} stored twice"
        out[segment][key] = arm
    return out


def engine_members(project: Project, tables: Mapping[str, Sequence[Mapping[str, Any]]], as_of: dt.datetime | str,
                   *, column_types: Mapping[str, Mapping[str, str]] = COLUMN_TYPES,
                   run_id: str = "test-run") -> dict[str, dict[str, str | None]]:
    """Evaluate ``project`` with the SQL engine over ``tables``; every segment's members and arms."""
    warehouse = warehouse_with(tables, column_types)
    try:
        result = evaluate(project, warehouse, as_of, run_id=run_id)
        arms = stored_arms(warehouse, result.as_of)
    finally:
        warehouse.close()
    return {name: arms.get(name, {}) for name in project.segments}

"""Every row the project keeps about one customer, found and deleted: the project-table half of an erasure.

Which tables hold a customer is read from the tables themselves, not listed by hand:

* every table named in :mod:`airflow_segprovider.core.state` (each module's ``TABLES``) that exists and has
  a column in :data:`~airflow_segprovider.core.state.privacy.KEY_COLUMNS` (``customer_key``): membership
  words and changes, sync state, rejected records and sync log, the distributed model's pulls, decisions,
  plan, audit and agreed state, the customer attribute history, ... A table added to the state later is
  covered the day it exists; views (``segprovider_memberships``) are skipped, their base tables are not;
* the hybrid hub's profile table (``hub.table``, named by the project, keyed by ``customer_key``);
* the data-model tables the project **loads** (a ``sources:`` entry writes them): the customer table, the
  event and order tables and the consent table, by their customer-key column, and the quarantine rows of
  their loads identified by that key. A model table the project only reads (loaded by another tool) is
  not the project's to change: :func:`external_tables` names them, and the erasure reports them.

Counts are history and stay: ``segprovider_snapshots`` and the run records keep how many members a
snapshot had and how many records a run sent, which name nobody.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import in_list, quote_identifier, quoted_table, text_literal
from airflow_segprovider.core.state.incremental import STATE as INCREMENTAL_STATE
from airflow_segprovider.core.state.ingest import QUARANTINE_TABLE
from airflow_segprovider.core.state.privacy import KEY_COLUMNS

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.warehouses.base import Warehouse


def state_table_names() -> list[str]:
    """Every name a module of :mod:`airflow_segprovider.core.state` lists in ``TABLES`` (prefixes included)."""
    import airflow_segprovider.core.state as state

    names: list[str] = []
    for info in sorted(pkgutil.iter_modules(state.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{state.__name__}.{info.name}")
        names.extend(name for name in getattr(module, "TABLES", ()) if name not in names)
    return names


def model_key_columns(project: Project) -> dict[str, str]:
    """Each data-model table and its customer-key column (customer, events and orders, consent)."""
    model = project.model
    tables = {model.customer.table: model.customer.key}
    for event in model.events.values():
        tables.setdefault(event.table, event.customer_key)
    if model.consent is not None:
        tables.setdefault(model.consent.table, model.consent.customer_key)
    return tables


def loaded_tables(project: Project) -> set[str]:
    """The model tables a source of the project writes."""
    return {source.table for source in project.sources.values()}


def external_tables(project: Project, warehouse: Warehouse) -> list[str]:
    """Model tables that exist and that the project reads but does not load: erase the customer upstream."""
    loaded = loaded_tables(project)
    return sorted(table for table in model_key_columns(project) if table not in loaded
                  and warehouse.columns(table) is not None)


def _views(warehouse: Warehouse, names: list[str]) -> set[str]:
    if not names:
        return set()
    rows = warehouse.query("SELECT table_name FROM information_schema.tables "
                           f"WHERE table_type = 'VIEW' AND LOWER(table_name) IN {in_list([n.lower() for n in names])}")
    return {str(row[0]).lower() for row in rows}


def key_tables(project: Project, warehouse: Warehouse) -> list[tuple[str, str]]:
    """``(table, key column)`` of every table the project keeps that holds a customer key, as they exist now."""
    candidates = list(state_table_names())
    hub = project.hub
    if hub is not None:
        candidates.append(hub.table)
    found: list[tuple[str, str]] = []
    views = _views(warehouse, candidates)
    for table in candidates:
        if table.lower() in views:
            continue
        columns = warehouse.columns(table)
        if not columns:
            continue
        by_lower = {name.lower(): name for name in columns}
        found += [(table, by_lower[key]) for key in KEY_COLUMNS if key in by_lower]
    loaded = loaded_tables(project)
    for table, key in model_key_columns(project).items():
        if table in loaded and warehouse.columns(table) is not None:
            found.append((table, key))
    return found


def delete_customer_rows(project: Project, warehouse: Warehouse, customer_key: str) -> dict[str, int]:
    """Delete every row of ``customer_key`` from the project's tables; rows deleted per table.

    Runs inside the caller's transaction (an erasure commits it with the tombstone, all or nothing).
    """
    deleted: dict[str, int] = {}
    key = text_literal(customer_key)
    for table, column in key_tables(project, warehouse):
        ref = quoted_table(table, warehouse.schema)
        where = f"CAST({quote_identifier(column)} AS VARCHAR) = {key}"
        count = int(warehouse.query(f"SELECT COUNT(*) FROM {ref} WHERE {where}")[0][0])
        if count:
            warehouse.execute(f"DELETE FROM {ref} WHERE {where}")
        deleted[table] = deleted.get(table, 0) + count
    deleted[QUARANTINE_TABLE] = _delete_quarantined(project, warehouse, customer_key)
    if any(deleted.values()) and warehouse.columns(INCREMENTAL_STATE) is not None:
        # the snapshots keep their counts, the person's rows are gone: an incremental run would carry the old
        # counts on (previous + added - removed); without its state, the next run is full and counts afresh
        warehouse.execute(f"DELETE FROM {quoted_table(INCREMENTAL_STATE, warehouse.schema)}")
    return deleted


def _delete_quarantined(project: Project, warehouse: Warehouse, customer_key: str) -> int:
    """The person's quarantined rows: those whose record key (``column=value``) names their customer key."""
    ref = quoted_table(QUARANTINE_TABLE, warehouse.schema)
    if warehouse.columns(QUARANTINE_TABLE) is None:
        return 0
    names = [f"{column}={customer_key}" for table, column in model_key_columns(project).items()
             if table in loaded_tables(project)]
    if not names:
        return 0
    # a row's record key is its identity columns as ``col=value`` joined by ", ": exactly the key, or first
    where = " OR ".join(f"record_key = {text_literal(name)} OR SUBSTR(record_key, 1, {len(name) + 2}) = "
                        f"{text_literal(name + ', ')}" for name in names)
    count = int(warehouse.query(f"SELECT COUNT(*) FROM {ref} WHERE {where}")[0][0])
    if count:
        warehouse.execute(f"DELETE FROM {ref} WHERE {where}")
    return count


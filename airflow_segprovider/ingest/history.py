"""Customer attribute history: a new version per changed customer, in the transaction of the load.

With ``model.customer.history: true``, every load of the customer table ends by comparing the
table with the history's open versions (:mod:`airflow_segprovider.core.state.attributes`), in
the target warehouse and in the load's transaction, the way a dbt snapshot with the ``check``
strategy on all columns does:

- a customer whose attribute values differ from its open version (NULL equal to NULL), or who is
  no longer in the table (a ``replace`` load left them out), has that version closed at the load's
  ``valid_from``;
- a customer with no open version (new, changed or back) gets one from ``valid_from``;
- an unchanged customer writes nothing.

``valid_from`` is the time the loaded values describe: the DAG passes its run's ``as_of``; the
command line, the load's start. History is written forward only: a time before the latest
change already recorded (a backfill's) becomes the load's start, or that latest change when it is
later still, so a backfill never rewrites the past it re-evaluates. The first load that keeps
history (an existing project turning it on, or a new one) writes every customer's version from
:data:`~airflow_segprovider.core.state.attributes.BEGINNING`: an ``as_of`` before it reads the first
values ingest saw, as every evaluation did before history was kept.

A failed load rolls back with its transaction: the history is left as it was.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from airflow_segprovider.core.evaluate.customers import attribute_columns
from airflow_segprovider.core.sql.dialects import quote_identifier as q
from airflow_segprovider.core.sql.dialects import quoted_table, render, text_literal, ts_literal
from airflow_segprovider.core.state.attributes import (
    BEGINNING,
    HISTORY_TABLE,
    KEY_TEXT,
    LOAD_ID,
    VALID_FROM,
    VALID_TO,
    add_column_sql,
    create_sql,
)
from airflow_segprovider.core.warehouses.base import ddl_outside_transaction
from airflow_segprovider.ingest.errors import TerminalIngestError

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.warehouses.base import Warehouse

logger = logging.getLogger(__name__)


def writes_history(project: Project, table: str) -> bool:
    """Whether a load of ``table`` writes attribute versions (the customer table, with ``history: true``)."""
    history = project.model.customer.history
    return history is not None and history.managed and table == project.model.customer.table


def _dotted(name: str, schema: str | None) -> str:
    return name if "." in name or not schema else f"{schema}.{name}"


def _kept_columns(warehouse: Warehouse, project: Project) -> list[str]:
    """The attribute columns the customer table has (an attribute no source has loaded yet is not kept)."""
    customer = project.model.customer
    existing = {c.lower() for c in (warehouse.columns(_dotted(customer.table, warehouse.schema)) or {})}
    if customer.key.lower() not in existing:
        raise TerminalIngestError(f"the customer table {customer.table!r} has no key column {customer.key!r}",
                                  source=customer.table, hint="load the customer table with its key column")
    return [column for column in attribute_columns(customer) if column.lower() in existing and column != customer.key]


def prepare(warehouse: Warehouse, project: Project) -> list[str]:
    """Create the history table, or add the attribute columns it lacks; return the attribute columns kept.

    Runs before the load's transaction where DDL cannot run inside one, else inside it.
    """
    customer = project.model.customer
    columns = _kept_columns(warehouse, project)
    history = _dotted(HISTORY_TABLE, warehouse.schema)
    present = warehouse.columns(history)
    if present is None:
        warehouse.execute(create_sql(customer.table, customer.key, columns, warehouse.schema, warehouse.dialect))
        logger.info("created the customer attribute history %s", history)
        return columns
    types = {c.lower(): t for c, t in (warehouse.columns(_dotted(customer.table, warehouse.schema)) or {}).items()}
    have = {c.lower() for c in present}
    for column in columns:
        if column.lower() not in have:  # an attribute added to the model: its past is unknown (NULL)
            warehouse.execute(add_column_sql(column, types[column.lower()], warehouse.schema))
    return columns


def record_versions(warehouse: Warehouse, project: Project, load_id: str, valid_from: dt.datetime,
                    started_at: dt.datetime) -> tuple[int, int]:
    """Close the changed customers' versions and open their new ones; return ``(closed, opened)`` (closed:
    the versions that end at this load's time).

    :param valid_from: when the loaded values became valid (naive UTC).
    :param started_at: the load's start, used instead of a ``valid_from`` before the latest recorded change.
    """
    customer = project.model.customer
    if ddl_outside_transaction(warehouse.dialect):  # prepared before the load's transaction
        columns = _kept_columns(warehouse, project)
    else:
        columns = prepare(warehouse, project)
    history = quoted_table(HISTORY_TABLE, warehouse.schema)
    customers = quoted_table(customer.table, warehouse.schema)
    latest = warehouse.query(render(f"SELECT COUNT(*), MAX(GREATEST({q(VALID_FROM)}, "
                                    f"COALESCE({q(VALID_TO)}, {q(VALID_FROM)}))) FROM {history}",
                                    warehouse.dialect))[0]
    if latest[0] == 0:
        at = BEGINNING  # the first load with history: the first known values hold since the beginning
    else:
        at = valid_from
        recorded = latest[1]
        if recorded is not None and at < recorded:
            at = max(started_at, recorded)
            logger.info("attribute history: %s is before its latest change (%s); this load's versions are valid "
                        "from %s", valid_from, recorded, at)
    key = q(customer.key)
    same = " AND ".join([f"c.{key} = h.{key}",
                         *(f"c.{q(column)} IS NOT DISTINCT FROM h.{q(column)}" for column in columns)])
    # written directly and counted afterwards by what they wrote: counting first would compare the whole
    # table twice (benchmarks/attribute_history.py)
    warehouse.execute(render(f"UPDATE {history} AS h SET {q(VALID_TO)} = {ts_literal(at)} "
                             f"WHERE h.{q(VALID_TO)} IS NULL AND NOT EXISTS "
                             f"(SELECT 1 FROM {customers} AS c WHERE {same})", warehouse.dialect))
    kept = [customer.key, *columns]
    targets = ([KEY_TEXT] if customer.key != KEY_TEXT else []) + kept + [VALID_FROM, VALID_TO, LOAD_ID]
    values = ([f"CAST(c.{key} AS VARCHAR)"] if customer.key != KEY_TEXT else []) + [f"c.{q(c)}" for c in kept]
    values += [ts_literal(at), "CAST(NULL AS TIMESTAMP)", text_literal(load_id)]
    missing = (f"c.{key} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {history} AS h "
               f"WHERE h.{q(VALID_TO)} IS NULL AND h.{key} = c.{key})")
    warehouse.execute(render(f"INSERT INTO {history} ({', '.join(q(t) for t in targets)}) "
                             f"SELECT {', '.join(values)} FROM {customers} AS c WHERE {missing}", warehouse.dialect))
    closed, opened = warehouse.query(render(
        f"SELECT COUNT(CASE WHEN {q(VALID_TO)} = {ts_literal(at)} AND {q(LOAD_ID)} <> {text_literal(load_id)} "
        f"THEN 1 END), COUNT(CASE WHEN {q(LOAD_ID)} = {text_literal(load_id)} THEN 1 END) FROM {history}",
        warehouse.dialect))[0]
    closed, opened = int(closed), int(opened)
    if closed or opened:
        logger.info("attribute history: %d version(s) closed, %d opened, valid from %s", closed, opened, at)
    return closed, opened

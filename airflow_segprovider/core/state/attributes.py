"""The customer attributes' history: one row per customer and version (slowly changing dimension, type 2).

``segprovider_customer_history`` (:data:`HISTORY_TABLE`; kept when the data model says
``model.customer.history: true``)
    ``customer_key`` (the key as text, as every table of the project stores it), the customer
    table's key and attribute columns under their own names and types, ``valid_from`` (inclusive),
    ``valid_to`` (exclusive; NULL for the current version) and ``load_id`` (the ingest load that
    wrote the version). Ingest writes it in the transaction of each load of the customer table
    (:mod:`airflow_segprovider.ingest.history`); the evaluation reads the rows valid at its
    ``as_of`` (:func:`airflow_segprovider.core.evaluate.customers.customer_relation`).

The table is created from the customer table (``CREATE TABLE ... AS SELECT ... WHERE 1 = 0``), so
each attribute column keeps the customer table's own type in every warehouse; a column the
customer table gains later is added with its type (:func:`add_column_sql`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import quote_identifier as q
from airflow_segprovider.core.sql.dialects import quoted_table, render

if TYPE_CHECKING:
    from collections.abc import Sequence

HISTORY_TABLE = "segprovider_customer_history"
#: Every table this module names.
TABLES = (HISTORY_TABLE,)

#: The managed table's own columns (the key and attribute columns keep the customer table's names).
KEY_TEXT = "customer_key"
VALID_FROM = "valid_from"
VALID_TO = "valid_to"
LOAD_ID = "load_id"
#: The ``valid_from`` of the versions the first load with history writes: the history's beginning.
#: An ``as_of`` before a customer's first load reads the first values ingest saw (what an evaluation
#: read before history was kept), not nothing. 1900-01-01 is the earliest ``--as-of`` the CLI accepts.
BEGINNING = dt.datetime(1900, 1, 1)


def create_sql(customer_table: str, key: str, columns: Sequence[str], schema: str | None, dialect: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` the managed history, typed after ``customer_table``.

    :param key: the customer table's key column.
    :param columns: the attribute columns it keeps (the customer table's names).
    """
    projections = [f"CAST(c.{q(key)} AS VARCHAR) AS {q(KEY_TEXT)}"] if key != KEY_TEXT else []
    projections += [f"c.{q(name)}" for name in (key, *columns)]
    projections += [f"CAST(NULL AS TIMESTAMP) AS {q(VALID_FROM)}", f"CAST(NULL AS TIMESTAMP) AS {q(VALID_TO)}",
                    f"CAST(NULL AS VARCHAR) AS {q(LOAD_ID)}"]
    return render(f"CREATE TABLE IF NOT EXISTS {quoted_table(HISTORY_TABLE, schema)} AS "
                  f"SELECT {', '.join(projections)} FROM {quoted_table(customer_table, schema)} AS c WHERE 1 = 0",
                  dialect)


def add_column_sql(column: str, type_sql: str, schema: str | None) -> str:
    """Add an attribute column the customer table has and the history lacks (``type_sql``: the warehouse's
    own spelling of the customer table's type, used as it is)."""
    return f"ALTER TABLE {quoted_table(HISTORY_TABLE, schema)} ADD COLUMN {q(column)} {type_sql}"

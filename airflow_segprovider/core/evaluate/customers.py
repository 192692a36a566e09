"""The customer relation every reader of customer attributes goes through.

One function names where the customer attributes valid at an ``as_of`` are read from: the
compiler, explain, the sync's identities and mapped fields, the sync's safety read-back, the
hub, the gates and the distributed model all read customers through it.

Without attribute history (``model.customer.history`` absent) it is the customer table itself:
its current values, whatever the ``as_of``. With history, it is the versions valid at ``as_of``
(``valid_from <= as_of < valid_to``, an open version's ``valid_to`` being NULL), in the spirit of
dbt snapshots: re-evaluating a past ``as_of`` after attributes changed reads the values of then,
so a backfill reproduces the snapshots the original runs wrote. ``as_of=None`` always means the
current values (the customer table).

The relation is built as a sqlglot tree, so it transpiles to every dialect; readers that write
their SQL as DuckDB text take :func:`customer_relation_sql` and render the whole statement.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import to_sql

if TYPE_CHECKING:
    from sqlglot import exp

    from airflow_segprovider.core.project.spec import CustomerEntity, Project

#: Alias of the history table inside the relation's subquery.
_HISTORY_ALIAS = "h"


def attribute_columns(customer: CustomerEntity) -> list[str]:
    """The customer table's attribute columns, once each, in declaration order (two attributes may share one)."""
    return list(dict.fromkeys(attribute.column for attribute in customer.attributes.values()))


def keeps_history(project: Project) -> bool:
    """Whether the project reads customer attributes point in time (``model.customer.history``)."""
    return project.model.customer.history is not None


def customer_source_table(project: Project, as_of: dt.datetime | None) -> str:
    """The table :func:`customer_relation` reads at ``as_of`` (the history's, or the customer table)."""
    customer = project.model.customer
    return customer.history.table if customer.history is not None and as_of is not None else customer.table


def _naive_utc(as_of: dt.datetime) -> dt.datetime:
    return as_of.astimezone(dt.timezone.utc).replace(tzinfo=None) if as_of.tzinfo is not None else as_of


def valid_at(project: Project, as_of: dt.datetime, table: str | None = _HISTORY_ALIAS) -> exp.Expression:
    """The condition that a history row (of ``table``) is the version valid at ``as_of``."""
    from sqlglot import exp  # noqa: F811 - loaded when a query is built: naming a gate loads no data library

    from airflow_segprovider.core.sql.expressions import and_all, col, literal

    history = project.model.customer.history
    assert history is not None, "valid_at needs model.customer.history"
    at = literal(_naive_utc(as_of))
    valid_to = col(history.valid_to, table)
    return and_all([exp.LTE(this=col(history.valid_from, table), expression=at),
                    exp.Paren(this=exp.Or(this=exp.Is(this=valid_to, expression=exp.Null()),
                                          expression=exp.GT(this=valid_to.copy(), expression=at.copy())))])


def customer_relation(project: Project, schema: str | None, as_of: dt.datetime | None,
                      alias: str | None = "c") -> exp.Expression:
    """The customers with the attribute values valid at ``as_of`` (naive UTC; None: the current values).

    A relation with the customer table's key and attribute columns (with history: only those; without:
    the customer table itself), usable in a ``FROM`` clause under ``alias``.
    """
    from sqlglot import exp  # noqa: F811 - loaded when a query is built: naming a gate loads no data library

    from airflow_segprovider.core.sql.expressions import col, ident, table_ref

    customer = project.model.customer
    if customer.history is None or as_of is None:
        return table_ref(customer.table, schema, alias=alias)
    columns = dict.fromkeys([customer.key, *attribute_columns(customer)])
    select = (exp.select(*(col(name, _HISTORY_ALIAS) for name in columns))
              .from_(table_ref(customer.history.table, schema, alias=_HISTORY_ALIAS))
              .where(valid_at(project, as_of)))
    return exp.Subquery(this=select, alias=exp.TableAlias(this=ident(alias or customer.table.split(".")[-1])))


def customer_relation_sql(project: Project, schema: str | None, as_of: dt.datetime | None,
                          alias: str | None = "c") -> str:
    """:func:`customer_relation` as DuckDB SQL text, for statements written as text and rendered for the
    warehouse afterwards (:func:`airflow_segprovider.core.sql.dialects.render`)."""
    return to_sql(customer_relation(project, schema, as_of, alias), "duckdb")

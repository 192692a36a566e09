"""Spoke segments evaluated centrally: a spoke's rule as SQL over the hub's profile table.

:func:`spoke_count_sql` evaluates a spoke segment's rule centrally, on the hub's values of the
profiles the spoke acknowledged; the drift monitor compares it with the count the spoke reports
for the same rule written in its own segment language (see
:mod:`airflow_segprovider.destinations.spokes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_segprovider.core.hybrid.hub import require_hub
from airflow_segprovider.core.sql.dialects import quote_identifier as q
from airflow_segprovider.core.sql.dialects import quoted_table, text_literal, ts_literal
from airflow_segprovider.core.state.hybrid import KEY
from airflow_segprovider.core.state.sync import STATE

if TYPE_CHECKING:
    from airflow_segprovider.core.project.hybrid import Hub, SpokeSegment
    from airflow_segprovider.core.project.rules import AttributeCondition
    from airflow_segprovider.core.project.spec import Project


def _condition_sql(node: AttributeCondition, column: str, value_type: str) -> str:
    op, value = node.predicate.op, node.predicate.value
    if op == "is_null":
        return f"{column} IS NULL" + (" OR CAST({0} AS VARCHAR) = ''".format(column) if value_type == "string" else "")
    if op == "is_not_null":
        return f"{column} IS NOT NULL" + (f" AND CAST({column} AS VARCHAR) <> ''" if value_type == "string" else "")
    if value_type == "string":
        text = str(value).lower()
        lowered = f"LOWER({column})"
        if op == "contains":
            return f"STRPOS({lowered}, {text_literal(text)}) > 0"
        if op == "starts_with":
            return f"STARTS_WITH({lowered}, {text_literal(text)})"
        return f"{lowered} {'=' if op == 'eq' else '<>'} {text_literal(text)}"
    if value_type == "boolean":
        return f"{column} {'=' if op == 'eq' else '<>'} {'TRUE' if value else 'FALSE'}"
    symbol = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
    if value_type == "date":
        return f"CAST({column} AS DATE) {symbol} DATE '{value.isoformat()}'"
    if value_type == "timestamp":
        return f"{column} {symbol} {ts_literal(value)}"
    return f"{column} {symbol} {value!r}"


def spoke_rule_sql(spoke: SpokeSegment, hub: Hub, alias: str = "h") -> str:
    """The spoke's rule as a SQL predicate over the hub's profile table."""
    match, conditions = spoke.conditions()
    parts = [f"({_condition_sql(c, f'{alias}.{q(c.attribute)}', hub.attributes[c.attribute].type)})"
             for c in conditions]
    return "(" + (" AND " if match == "all" else " OR ").join(parts) + ")"


def spoke_count_sql(project: Project, spoke: SpokeSegment, schema: str | None) -> str:
    """How many profiles the spoke should count: those it acknowledged, matching the rule on the hub's values."""
    hub = require_hub(project)
    sync_id = hub.push[spoke.destination].sync_id
    return (f"SELECT COUNT(*) FROM {quoted_table(hub.table, schema)} AS h JOIN {STATE} AS s "
            f"ON s.customer_key = h.{KEY} AND s.sync_id = {text_literal(sync_id)} AND s.in_destination "
            f"WHERE {spoke_rule_sql(spoke, hub)}")

"""The SQL of a segment's rule: its condition tree and each predicate, over the ``base`` CTE's columns.

Rules use two-valued logic: a comparison with a missing (NULL) value is false,
so ``not`` of it is true; ``is_null`` selects missing values explicitly.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlglot import exp

from airflow_segprovider.core.evaluate.aggregates import AggregateKey, CompileState
from airflow_segprovider.core.project.rules import (
    AllOf,
    AnyOf,
    AttributeCondition,
    Condition,
    Not,
    Predicate,
    SegmentCondition,
)
from airflow_segprovider.core.sql import dialects
from airflow_segprovider.core.sql.expressions import and_all, col, false_if_null, literal, or_any

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project


class ConditionSql:
    """SQL of one segment's rule tree over the columns of the ``base`` CTE."""

    def __init__(self, project: Project, dialect: str, state: CompileState, segment: str,
                 node_columns: dict[tuple[str, int], str] | None) -> None:
        self.project = project
        self.dialect = dialect
        self.state = state
        self.segment = segment
        self.node_columns = node_columns
        self.index = 0
        self.explained: list[exp.Expression] = []  # one outcome column per node, in explain mode

    def build(self, node: Condition) -> exp.Expression:
        position = self.index
        self.index += 1
        if isinstance(node, AllOf):
            sql = exp.Paren(this=and_all([self.build(child) for child in node.children]))
        elif isinstance(node, AnyOf):
            sql = exp.Paren(this=or_any([self.build(child) for child in node.children]))
        elif isinstance(node, Not):
            sql = exp.Not(this=self.build(node.child))
        elif isinstance(node, SegmentCondition):
            flag: exp.Expression = col(f"m__{node.segment}")
            sql = exp.Not(this=flag) if node.negate else flag
        elif isinstance(node, AttributeCondition):
            attribute = self.project.model.customer.attributes[node.attribute]
            sql = false_if_null(predicate_sql(self.dialect, col(f"a__{node.attribute}"), node.predicate,
                                              attribute.type, self.state.as_of))
        else:
            column = self.state.aggregates[AggregateKey(node.event, node.aggregate, node.property, node.within,
                                                        node.where)]
            value_type = "timestamp" if node.aggregate in ("first", "last") else "number"
            sql = false_if_null(predicate_sql(self.dialect, col(column), node.predicate, value_type,
                                              self.state.as_of))
        if self.node_columns is not None:
            name = f"n__{self.segment}__{position}"
            self.node_columns[(self.segment, position)] = name
            self.explained.append(exp.alias_(sql.copy(), name, quoted=True))
        return sql


def predicate_sql(dialect: str, value: exp.Expression, predicate: Predicate, value_type: str,
                   as_of: dt.datetime) -> exp.Expression:
    """``value <op> literal``; may be NULL for a NULL value (callers coalesce to false)."""
    op, v = predicate.op, predicate.value
    if op == "is_null":
        return exp.Is(this=value, expression=exp.null())
    if op == "is_not_null":
        return exp.Not(this=exp.Is(this=value, expression=exp.null()))
    if value_type == "string":
        value = dialects.byte_order(dialect, value)
    if op in ("within_last", "more_than_ago"):
        lower: dt.date | dt.datetime = as_of - v
        upper: dt.date | dt.datetime = as_of
        if value_type == "date":  # dates compare at day granularity
            lower, upper = lower.date(), as_of.date()  # type: ignore[union-attr]
        if op == "more_than_ago":
            return exp.LT(this=value, expression=literal(lower))
        return exp.And(this=exp.GTE(this=value, expression=literal(lower)),
                       expression=exp.LTE(this=value.copy(), expression=literal(upper)))
    if op in ("in", "not_in"):
        test = exp.In(this=value, expressions=[literal(item) for item in v])
        return exp.Not(this=test) if op == "not_in" else test
    if op == "between":
        return exp.Between(this=value, low=literal(v[0]), high=literal(v[1]))
    if op == "contains":
        return exp.GT(this=exp.StrPosition(this=value, substr=literal(v)), expression=exp.Literal.number(0))
    if op == "starts_with":
        return exp.StartsWith(this=value, expression=literal(v))
    if op == "matches":
        return dialects.regex_search(dialect, value, v)
    comparison = {"eq": exp.EQ, "ne": exp.NEQ, "lt": exp.LT, "lte": exp.LTE, "gt": exp.GT, "gte": exp.GTE}[op]
    return comparison(this=value, expression=literal(v))

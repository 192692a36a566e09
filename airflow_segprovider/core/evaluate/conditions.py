"""The SQL of a segment's rule: its condition tree and each predicate, over the ``base`` CTE's columns.

Rules use two-valued logic: a comparison with a missing (NULL) value is false,
so ``not`` of it is true; ``is_null`` selects missing values explicitly.

Numbers are exact decimals (:mod:`~airflow_segprovider.core.sql.numbers`) compared with exact decimal
literals. An average is compared without dividing: ``avg >= v`` is ``sum >= v * count``, exact in
every warehouse, where ``AVG`` of a decimal is a DOUBLE in DuckDB, 9 places in BigQuery and more
elsewhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from airflow_segprovider.core.evaluate.aggregates import AggregateKey, CompileState
from airflow_segprovider.core.evaluate.columns import attribute_column, count_column, member_column, node_column
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
from airflow_segprovider.core.sql.numbers import number_literal

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
            flag: exp.Expression = col(member_column(node.segment))
            sql = exp.Not(this=flag) if node.negate else flag
        elif isinstance(node, AttributeCondition):
            attribute = self.project.model.customer.attributes[node.attribute]
            sql = false_if_null(predicate_sql(self.dialect, col(attribute_column(node.attribute)), node.predicate,
                                              attribute.type, self.state.as_of))
        else:
            column = self.state.aggregates[AggregateKey(node.event, node.aggregate, node.property, node.within,
                                                        node.where)]
            value_type = "timestamp" if node.aggregate in ("first", "last") else "number"
            if node.aggregate == "avg":
                sql = false_if_null(average_sql(col(column), col(count_column(column)), node.predicate))
            else:
                sql = false_if_null(predicate_sql(self.dialect, col(column), node.predicate, value_type,
                                                  self.state.as_of))
        if self.node_columns is not None:
            name = node_column(self.segment, position)
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
    if value_type == "number":
        return _number_predicate(value, op, v, lambda item: number_literal(item))
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


def average_sql(total: exp.Expression, count: exp.Expression, predicate: Predicate) -> exp.Expression:
    """``avg <op> v`` as ``sum <op> v * count``: exact, no division. An average over no value is missing
    (its sum is NULL), so only ``is_null`` holds for it."""
    if predicate.op == "is_null":
        return exp.Is(this=total, expression=exp.null())
    if predicate.op == "is_not_null":
        return exp.Not(this=exp.Is(this=total, expression=exp.null()))
    return _number_predicate(total, predicate.op, predicate.value,
                             lambda item: exp.Mul(this=number_literal(item), expression=count.copy()))


def _number_predicate(value: exp.Expression, op: str, v: Any, bound: Callable[[Any], exp.Expression]) -> exp.Expression:
    """A number comparison against exact decimal literals (``bound`` writes each one)."""
    if op in ("in", "not_in"):
        test = or_any([exp.EQ(this=value.copy(), expression=bound(item)) for item in v])
        return exp.Not(this=exp.Paren(this=test)) if op == "not_in" else exp.Paren(this=test)
    if op == "between":
        return exp.And(this=exp.GTE(this=value.copy(), expression=bound(v[0])),
                       expression=exp.LTE(this=value.copy(), expression=bound(v[1])))
    comparison = {"eq": exp.EQ, "ne": exp.NEQ, "lt": exp.LT, "lte": exp.LTE, "gt": exp.GT, "gte": exp.GTE}[op]
    return comparison(this=value, expression=bound(v))

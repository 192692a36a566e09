"""Why is this customer (not) in this segment? Answered by the same engine that evaluates.

:func:`explain` compiles the project restricted to one customer with every rule
node's outcome and the observed values as extra columns, runs it in the
warehouse, and renders the rule tree annotated with them.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.errors import TerminalEvaluationError
from airflow_segprovider.core.evaluate.aggregates import AggregateKey
from airflow_segprovider.core.evaluate.columns import (
    arm_column,
    attribute_column,
    bucket_column,
    consent_column,
    count_column,
    member_column,
    rule_column,
)
from airflow_segprovider.core.evaluate.compiler import SegmentCompiler
from airflow_segprovider.core.evaluate.describe import condition_text
from airflow_segprovider.core.evaluate.engine import check_sources, parse_as_of
from airflow_segprovider.core.project.rules import (
    AllOf,
    AnyOf,
    AttributeCondition,
    Condition,
    EventCondition,
    Not,
    SegmentCondition,
)
from airflow_segprovider.core.project.spec import Project

if TYPE_CHECKING:
    from airflow_segprovider.core.warehouses.base import Warehouse


@dataclass
class Explanation:
    segment: str
    customer: str
    as_of: dt.datetime
    member: bool
    arm: str | None
    lines: list[str]

    def text(self) -> str:
        return "\n".join(self.lines)


def _show(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, decimal.Decimal):
        # warehouses return the same exact sum with different scales (0E-9, 0, 0.000): show the number
        return format(value.normalize(), "f")
    return repr(value)


def explain(project: Project, warehouse: Warehouse, segment: str, customer: str,
            as_of: str | dt.datetime | dt.date) -> Explanation:
    """Explain ``customer``'s membership of ``segment`` at ``as_of``.

    :raises EvaluationError: unknown segment or customer, or a source problem.
    """
    if segment not in project.segments:
        raise TerminalEvaluationError(f"unknown segment {segment!r}; segments: {', '.join(project.segments)}")
    at = parse_as_of(as_of)
    # every table the segment and what it depends on read, checked before anything runs (a missing one is
    # named with the segments needing it, not as the warehouse's raw error)
    check_sources(project, warehouse, _closure(project, segment))
    compiled = SegmentCompiler(project, warehouse.dialect, warehouse.schema).compile(
        at, segments=[segment], customers=[_typed_key(project, warehouse, customer)], explain=True)
    rows = warehouse.query_records(compiled.sql(pretty=False))
    if not rows:
        raise TerminalEvaluationError(f"customer {customer!r} not found in {project.model.customer.table}."
                              f"{project.model.customer.key}"
                              + (f" at {at.isoformat(sep=' ')} (attribute history: no version valid then)"
                                 if project.model.customer.history else ""))
    row = rows[0]
    seg = project.segments[segment]
    member = bool(row[member_column(segment)])
    lines = [f"customer {customer} {'IS' if member else 'is NOT'} in segment {segment} at {at.isoformat(sep=' ')}"]
    lines.append(f"rule: {'holds' if row[rule_column(segment)] else 'does not hold'}")
    lines += _tree(seg.rule, segment, row, compiled, [0], 1)
    consent = project.model.consent
    for channel in seg.suppress_channels:
        answer = row.get(consent_column(channel))
        policy = consent.channels[channel] if consent else None
        if answer is None:
            verdict = ("suppressed: no consent answer and the channel requires opt-in"
                       if policy and policy.require_opt_in else "allowed: no consent answer, opt-in not required")
        else:
            verdict = "allowed: latest answer is opted in" if answer == 1 else "SUPPRESSED: latest answer is opted out"
        lines.append(f"consent {channel}: {verdict}")
    for higher in seg.higher_priority:
        if row.get(member_column(higher)):
            lines.append(f"priority group {seg.priority_group}: taken by higher-priority segment {higher}")
            break
    else:
        if seg.priority_group:
            lines.append(f"priority group {seg.priority_group}: no higher-priority segment took this customer")
    arm = row.get(arm_column(segment)) if member else None
    if seg.split:
        lines.append(f"split (salt {seg.split.salt!r}): bucket {row.get(bucket_column(segment))} of 10000"
                     + (f" -> arm {arm}" if member else ""))
    return Explanation(segment, customer, at, member, arm, lines)


def _closure(project: Project, segment: str) -> list[str]:
    """``segment`` and every segment it depends on, directly or not."""
    found, stack = set(), [segment]
    while stack:
        name = stack.pop()
        if name not in found:
            found.add(name)
            stack.extend(project.dependencies(name))
    return [name for name in project.evaluation_order() if name in found]


def _typed_key(project: Project, warehouse: Warehouse, customer: str) -> str | int:
    """``customer`` typed as the customer table stores its key: an ``int`` for an integer key.

    The key is then compared with each table's column as stored, so the warehouse prunes by it (a
    cast of the column to text would read every row of every table).

    :raises EvaluationError: an integer key and a ``customer`` that is not an integer.
    """
    model = project.model.customer
    columns = {name.lower(): kind for name, kind in (warehouse.columns(model.table) or {}).items()}
    kind = columns.get(model.key.lower(), "")
    if not _INTEGER_TYPE.match(kind.upper()):
        return customer
    if not re.fullmatch(r"[+-]?[0-9]+", customer.strip()):
        raise TerminalEvaluationError(f"customer {customer!r} not found in {model.table}.{model.key}: "
                                      f"its keys are integers ({kind})")
    return int(customer.strip())


_INTEGER_TYPE = re.compile(r"^(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|"
                           r"INT2|INT4|INT8|INT64|NUMBER\(\d+,\s*0\)|NUMBER$)")


def _tree(node: Condition, segment: str, row: dict[str, Any], compiled, counter: list[int], depth: int) -> list[str]:
    position = counter[0]
    counter[0] += 1
    outcome = row.get(compiled.node_columns.get((segment, position), ""), None)
    mark = "✓" if outcome else "✗"
    text = condition_text(node)
    observed = ""
    if isinstance(node, AttributeCondition):
        observed = f"  [{node.attribute} = {_show(row.get(attribute_column(node.attribute)))}]"
    elif isinstance(node, EventCondition):
        column = compiled.aggregates[AggregateKey(node.event, node.aggregate, node.property, node.within, node.where)]
        value = row.get(column)
        if node.aggregate == "avg" and value is not None:  # kept as sum and count (see conditions.average_sql)
            value = (decimal.Decimal(value) / decimal.Decimal(row[count_column(column)])).quantize(
                decimal.Decimal(1).scaleb(-9), rounding=decimal.ROUND_HALF_EVEN)
        observed = f"  [observed {node.aggregate}: {_show(value)}]"
    elif isinstance(node, SegmentCondition):
        observed = f"  [member of {node.segment}: {'yes' if row.get(member_column(node.segment)) else 'no'}]"
    lines = ["  " * depth + f"{mark} {text}{observed}"]
    if isinstance(node, (AllOf, AnyOf)):
        for child in node.children:
            lines += _tree(child, segment, row, compiled, counter, depth + 1)
    elif isinstance(node, Not):
        lines += _tree(node.child, segment, row, compiled, counter, depth + 1)
    return lines

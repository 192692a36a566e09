"""Plain-text rendering of a project and its rule trees, for ``segprovider describe`` and ``explain``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow_segprovider.core.project.rules import (
    AllOf,
    AnyOf,
    AttributeCondition,
    Condition,
    EventCondition,
    Not,
    Predicate,
    SegmentCondition,
)
from airflow_segprovider.core.project.spec import Project

_OP_TEXT = {
    "eq": "=", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "in": "in", "not_in": "not in",
    "between": "between", "is_null": "is null", "is_not_null": "is not null", "contains": "contains",
    "starts_with": "starts with", "matches": "matches", "within_last": "within the last",
    "more_than_ago": "more than ... ago:",
}


def _value_text(value: Any) -> str:
    if isinstance(value, dt.timedelta):
        days, seconds = value.days, value.seconds
        if seconds == 0:
            return f"{days}d"
        return f"{value.total_seconds() / 3600:g}h"
    if isinstance(value, tuple):
        return "[" + ", ".join(_value_text(v) for v in value) + "]"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return repr(value)


def predicate_text(predicate: Predicate) -> str:
    if predicate.op == "more_than_ago":
        return f"more than {_value_text(predicate.value)} ago"
    if predicate.op in ("is_null", "is_not_null"):
        return _OP_TEXT[predicate.op]
    if predicate.op == "between":
        low, high = predicate.value
        return f"between {_value_text(low)} and {_value_text(high)}"
    return f"{_OP_TEXT[predicate.op]} {_value_text(predicate.value)}"


def condition_text(condition: Condition) -> str:
    """One line for a leaf (or the connective of an inner node)."""
    if isinstance(condition, AllOf):
        return "all of"
    if isinstance(condition, AnyOf):
        return "any of"
    if isinstance(condition, Not):
        return "not"
    if isinstance(condition, SegmentCondition):
        return f"{'not in' if condition.negate else 'in'} segment {condition.segment}"
    if isinstance(condition, AttributeCondition):
        return f"{condition.attribute} {predicate_text(condition.predicate)}"
    assert isinstance(condition, EventCondition)
    subject = condition.aggregate + ("" if condition.property is None else f"({condition.property})")
    subject += f" of {condition.event}"
    if condition.within is not None:
        subject += f" in the last {_value_text(condition.within)}"
    if condition.where:
        subject += " where " + " and ".join(f"{f.property} {predicate_text(f.predicate)}" for f in condition.where)
    return f"{subject} {predicate_text(condition.predicate)}"


def describe_rule(condition: Condition, indent: int = 0) -> list[str]:
    pad = "  " * indent
    lines = [pad + condition_text(condition)]
    if isinstance(condition, (AllOf, AnyOf)):
        for child in condition.children:
            lines.extend(describe_rule(child, indent + 1))
    elif isinstance(condition, Not):
        lines.extend(describe_rule(condition.child, indent + 1))
    return lines


def describe_project(project: Project) -> list[str]:
    lines = [f"Project {project.name}: {len(project.segments)} segments, {len(project.destinations)} destinations, "
             f"{len(project.syncs)} syncs (warehouse: {project.warehouse.kind})"]
    if project.description:
        lines.append(project.description)
    syncs_by_segment: dict[str, list[str]] = {}
    for sync in project.syncs:
        target = sync.destination + (f" [arm {sync.arm}]" if sync.arm else "")
        syncs_by_segment.setdefault(sync.segment, []).append(f"{target} ({sync.mode}, {sync.schedule})")
    for name in project.evaluation_order():
        segment = project.segments[name]
        lines += ["", f"segment {name}" + (f": {segment.description}" if segment.description else "")]
        lines += ["    " + line for line in describe_rule(segment.rule)]
        deps = sorted(project.dependencies(name))
        if deps:
            lines.append(f"  depends on: {', '.join(deps)}")
        if segment.priority_group:
            above = ", ".join(segment.higher_priority) or "nothing (highest priority)"
            lines.append(f"  priority group {segment.priority_group}: yields to {above}")
        if segment.suppress_channels:
            lines.append(f"  suppressed when opted out of: {', '.join(segment.suppress_channels)}")
        if segment.split:
            arms = ", ".join(f"{arm.name} {arm.percent:g}%" for arm in segment.split.arms)
            lines.append(f"  split (salt {segment.split.salt!r}): {arms}")
        lines.append(f"  syncs to: {'; '.join(syncs_by_segment.get(name, [])) or '(none)'}")
        policy = project.reconcile.get(name)
        if policy is not None:  # one owner per segment: the centralized DAG never pushes a reconciled one
            where = f" ({policy.loc})" if str(policy.loc) else ""
            lines.append(f"  owned by: distributed model (segments_distributed), reconcile policy "
                         f"{policy.policy}{where}")
        elif name in syncs_by_segment:
            lines.append("  owned by: centralized model (segments_centralized)")
    lines += ["", "destinations:"]
    for dest in project.destinations.values():
        mapping = ", ".join(f"{k}<-{v}" for k, v in dest.field_mapping.items()) or "(identity only)"
        lines.append(f"  {dest.name}: {dest.kind} via connection {dest.connection_id!r}, channel {dest.channel}, "
                     f"identity {dest.identity}, fields {mapping}")
    return lines

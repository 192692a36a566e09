"""Segments and their rules: the rule tree a segment's membership is decided by, and its split.

A rule is a tree of :data:`Condition` nodes: conditions on a customer attribute, aggregates of
events, references to other segments, combined with ``all``/``any``/``not``. Every value in it
is already typed (see :mod:`airflow_segprovider.core.project.predicates`); the compiler turns
the tree into SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from airflow_segprovider.core.errors import Location

Aggregate = Literal["count", "sum", "min", "max", "avg", "first", "last"]

#: Operators valid for each value type. Relative-time operators compare with ``as_of``.
OPERATORS_BY_TYPE: dict[str, frozenset[str]] = {
    "string": frozenset({"eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte", "between",
                         "is_null", "is_not_null", "contains", "starts_with", "matches"}),
    "number": frozenset({"eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte", "between",
                         "is_null", "is_not_null"}),
    "boolean": frozenset({"eq", "ne", "is_null", "is_not_null"}),
    "date": frozenset({"eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte", "between",
                       "is_null", "is_not_null", "within_last", "more_than_ago"}),
    "timestamp": frozenset({"eq", "ne", "in", "not_in", "lt", "lte", "gt", "gte", "between",
                            "is_null", "is_not_null", "within_last", "more_than_ago"}),
}
NULL_OPS = frozenset({"is_null", "is_not_null"})
LIST_OPS = frozenset({"in", "not_in"})
RELATIVE_OPS = frozenset({"within_last", "more_than_ago"})
NUMERIC_AGGREGATES = frozenset({"sum", "min", "max", "avg"})
TIME_AGGREGATES = frozenset({"first", "last"})


@dataclass(frozen=True)
class Predicate:
    """A comparison with a typed value; ``value`` is already parsed (durations as timedelta)."""

    op: str
    value: Any = None


@dataclass(frozen=True)
class AttributeCondition:
    attribute: str
    predicate: Predicate
    loc: Location = field(compare=False, default=Location(""))


@dataclass(frozen=True)
class PropertyFilter:
    property: str
    predicate: Predicate


@dataclass(frozen=True)
class EventCondition:
    event: str
    aggregate: Aggregate
    predicate: Predicate
    property: str | None = None
    within: timedelta | None = None
    where: tuple[PropertyFilter, ...] = ()
    loc: Location = field(compare=False, default=Location(""))


@dataclass(frozen=True)
class SegmentCondition:
    segment: str
    negate: bool = False
    loc: Location = field(compare=False, default=Location(""))


@dataclass(frozen=True)
class AllOf:
    children: tuple[Condition, ...]
    loc: Location = field(compare=False, default=Location(""))


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Condition, ...]
    loc: Location = field(compare=False, default=Location(""))


@dataclass(frozen=True)
class Not:
    child: Condition
    loc: Location = field(compare=False, default=Location(""))


Condition = AttributeCondition | EventCondition | SegmentCondition | AllOf | AnyOf | Not


def iter_conditions(condition: Condition):
    """Yield every node of a rule tree, depth first."""
    yield condition
    if isinstance(condition, (AllOf, AnyOf)):
        for child in condition.children:
            yield from iter_conditions(child)
    elif isinstance(condition, Not):
        yield from iter_conditions(condition.child)


def referenced_segments(condition: Condition) -> set[str]:
    return {node.segment for node in iter_conditions(condition) if isinstance(node, SegmentCondition)}


@dataclass(frozen=True)
class SplitArm:
    name: str
    percent: float


@dataclass(frozen=True)
class Split:
    salt: str
    arms: tuple[SplitArm, ...]

    def bucket_bounds(self) -> list[tuple[str, int, int]]:
        """Arms as half-open ranges of the 10,000 hash buckets: ``[(arm, low, high), ...]``."""
        bounds, low = [], 0
        for arm in self.arms:
            high = low + round(arm.percent * 100)
            bounds.append((arm.name, low, high))
            low = high
        return bounds


@dataclass(frozen=True)
class Segment:
    name: str
    rule: Condition
    description: str = ""
    owner: str = ""
    tags: tuple[str, ...] = ()
    split: Split | None = None
    suppress_channels: tuple[str, ...] = ()  # declared channels plus those of the destinations it syncs to
    priority_group: str | None = None
    higher_priority: tuple[str, ...] = ()  # segments of its group that win over it, highest first
    loc: Location = field(compare=False, default=Location(""))


@dataclass(frozen=True)
class PriorityGroup:
    name: str
    segments: tuple[str, ...]
    description: str = ""

"""A plain-Python evaluator of the segments language: the oracle the SQL engine is checked against.

It is written from ``docs/segments-language.md`` and the data classes of
``airflow_segprovider/core/project/spec.py`` only, never from the compiler, so that a
misreading of the language in one is not copied into the other. It favours
being obviously right over being fast: every rule is evaluated customer by
customer over rows held in memory.

Rows are dictionaries keyed by column name. Values use Python's types: ``str``,
``int``/``float``, ``bool``, :class:`datetime.date` and :class:`datetime.datetime`
(naive means UTC, aware ones are converted to UTC), ``None`` for missing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.project.rules import (
    AllOf,
    AnyOf,
    AttributeCondition,
    EventCondition,
    Not,
    SegmentCondition,
)

if TYPE_CHECKING:
    from airflow_segprovider.core.project.rules import Condition, Predicate, Split
    from airflow_segprovider.core.project.spec import EventSource, Project

Row = Mapping[str, Any]
Tables = Mapping[str, Sequence[Row]]

BUCKETS = 10_000


def utc_naive(value: dt.datetime) -> dt.datetime:
    """The UTC wall time of ``value``; naive values already are UTC."""
    if value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def _typed(value_type: str, value: Any) -> Any:
    """A warehouse value as the language sees it: timestamps in UTC, dates as dates."""
    if value is None:
        return None
    if value_type == "timestamp" and isinstance(value, dt.datetime):
        return utc_naive(value)
    if value_type == "date" and isinstance(value, dt.datetime):
        return value.date()
    return value


def predicate_holds(value_type: str, value: Any, predicate: Predicate, as_of: dt.datetime) -> bool:
    """Whether ``value`` (of ``value_type``) satisfies ``predicate`` at ``as_of``.

    Two-valued logic: a missing value fails every operator except ``is_null``.
    """
    op, expected = predicate.op, predicate.value
    value = _typed(value_type, value)
    if op == "is_null":
        return value is None
    if op == "is_not_null":
        return value is not None
    if value is None:
        return False
    if op in ("within_last", "more_than_ago"):
        low, high = as_of - expected, as_of
        if value_type == "date":  # whole days: the calendar dates of the two bounds
            low, high = low.date(), high.date()
        return low <= value <= high if op == "within_last" else value < low
    if op == "eq":
        return value == expected
    if op == "ne":
        return value != expected
    if op == "lt":
        return value < expected
    if op == "lte":
        return value <= expected
    if op == "gt":
        return value > expected
    if op == "gte":
        return value >= expected
    if op == "in":
        return value in expected
    if op == "not_in":
        return value not in expected
    if op == "between":
        low, high = expected
        return low <= value <= high
    if op == "contains":
        return expected in value
    if op == "starts_with":
        return value.startswith(expected)
    if op == "matches":
        return re.search(end_of_text_anchors(expected), value) is not None
    raise ValueError(f"unknown operator {op!r}")


def end_of_text_anchors(pattern: str) -> str:
    """``pattern`` with every ``$`` anchor written ``\\Z``.

    The language's ``$`` is the end of the text; Python's also matches before a trailing newline.
    """
    out, index, class_start = [], 0, None
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            out.append(pattern[index:index + 2])
            index += 2
            continue
        if class_start is None:
            if char == "[":
                class_start = index + 1 + (pattern[index + 1:index + 2] == "^")
            out.append(r"\Z" if char == "$" else char)
        else:
            if char == "]" and index > class_start:  # a ']' first in a class is a literal
                class_start = None
            out.append(char)
        index += 1
    return "".join(out)


def split_bucket(salt: str, key: str) -> int:
    """The hash bucket of ``key``: first 8 hex digits of md5(salt:key), modulo 10,000."""
    return int(hashlib.md5(f"{salt}:{key}".encode()).hexdigest()[:8], 16) % BUCKETS


def split_arm(split: Split, key: str) -> str:
    """The arm whose consecutive range of buckets holds ``key``'s bucket."""
    bucket, low = split_bucket(split.salt, key), 0
    for arm in split.arms:
        high = low + round(arm.percent * 100)
        if low <= bucket < high:
            return arm.name
        low = high
    raise AssertionError(f"arms of split {split.salt!r} do not cover bucket {bucket}")


def _aggregate(aggregate: str, values: list[Any]) -> Any:
    """Aggregate the (already filtered) occurrences' values; ``values`` holds timestamps for count/first/last."""
    if aggregate == "count":
        return len(values)
    present = [v for v in values if v is not None]
    if aggregate == "sum":
        return sum(present) if present else 0
    if not present:
        return None
    if aggregate in ("min", "first"):
        return min(present)
    if aggregate in ("max", "last"):
        return max(present)
    if aggregate == "avg":
        return sum(present) / len(present)
    raise ValueError(f"unknown aggregate {aggregate!r}")


class _Evaluation:
    """One evaluation of a project over in-memory tables at one ``as_of``."""

    def __init__(self, project: Project, tables: Tables, as_of: dt.datetime) -> None:
        self.project = project
        self.tables = tables
        self.as_of = utc_naive(as_of)
        model = project.model
        customer = model.customer
        self.customers: dict[str, Row] = {}
        for row in tables.get(customer.table, ()):
            key = row.get(customer.key)
            if key is not None:
                self.customers[str(key)] = row
        self._occurrences: dict[str, dict[str, list[Row]]] = {}
        self.final: dict[str, set[str]] = {}
        self.consent = self._latest_consent()

    # events --------------------------------------------------------------------------------
    def occurrences(self, source: EventSource) -> dict[str, list[Row]]:
        """Rows of ``source`` per customer key, visible at ``as_of`` (timestamp present and ≤ as_of)."""
        if source.name not in self._occurrences:
            by_key: dict[str, list[Row]] = defaultdict(list)
            for row in self.tables.get(source.table, ()):
                key, at = row.get(source.customer_key), _typed("timestamp", row.get(source.timestamp))
                if key is None or at is None or at > self.as_of:
                    continue
                if source.type_column is not None and row.get(source.type_column) != source.type_value:
                    continue
                by_key[str(key)].append(row)
            self._occurrences[source.name] = by_key
        return self._occurrences[source.name]

    def event_value(self, condition: EventCondition, key: str) -> Any:
        source = self.project.model.events[condition.event]
        matching = []
        for row in self.occurrences(source).get(key, []):
            at = _typed("timestamp", row.get(source.timestamp))
            if condition.within is not None and at < self.as_of - condition.within:
                continue
            if all(predicate_holds(source.properties[f.property], row.get(f.property), f.predicate, self.as_of)
                   for f in condition.where):
                matching.append(row)
        if condition.aggregate in ("count", "first", "last"):
            values = [_typed("timestamp", row.get(source.timestamp)) for row in matching]
        else:
            values = [row.get(condition.property) for row in matching]
        return _aggregate(condition.aggregate, values)

    # rules ---------------------------------------------------------------------------------
    def holds(self, condition: Condition, key: str) -> bool:
        if isinstance(condition, AllOf):
            return all(self.holds(child, key) for child in condition.children)
        if isinstance(condition, AnyOf):
            return any(self.holds(child, key) for child in condition.children)
        if isinstance(condition, Not):
            return not self.holds(condition.child, key)
        if isinstance(condition, SegmentCondition):
            member = key in self.final_members(condition.segment)
            return not member if condition.negate else member
        if isinstance(condition, AttributeCondition):
            attribute = self.project.model.customer.attributes[condition.attribute]
            value = self.customers[key].get(attribute.column)
            return predicate_holds(attribute.type, value, condition.predicate, self.as_of)
        if isinstance(condition, EventCondition):
            value_type = "timestamp" if condition.aggregate in ("first", "last") else "number"
            return predicate_holds(value_type, self.event_value(condition, key), condition.predicate, self.as_of)
        raise TypeError(f"unknown rule node {condition!r}")

    # consent -------------------------------------------------------------------------------
    def _latest_consent(self) -> dict[tuple[str, str], bool | None]:
        """(customer, channel) -> opted_in of the latest answer at or before ``as_of``.

        At equal ``updated_at`` the opt-out wins, then the opt-in, then a missing answer.
        """
        consent = self.project.model.consent
        if consent is None:
            return {}
        rank = {False: 0, True: 1, None: 2}
        best: dict[tuple[str, str], tuple[dt.datetime, int, bool | None]] = {}
        for row in self.tables.get(consent.table, ()):
            key, channel = row.get(consent.customer_key), row.get(consent.channel_column)
            at = _typed("timestamp", row.get(consent.updated_at_column))
            if key is None or channel is None or at is None or at > self.as_of:
                continue
            opted_in = row.get(consent.opted_in_column)
            candidate = (at, rank[opted_in], opted_in)
            current = best.get((str(key), channel))
            if current is None or at > current[0] or (at == current[0] and candidate[1] < current[1]):
                best[(str(key), channel)] = candidate
        return {pair: answer for pair, (_, _, answer) in best.items()}

    def channels(self, segment: str) -> set[str]:
        """Declared channels plus the channel of every destination the segment is synced to."""
        project = self.project
        channels = set(project.segments[segment].suppress_channels)
        for sync in project.syncs:
            if sync.segment == segment:
                channels.add(project.destinations[sync.destination].channel)
        return channels

    def allowed(self, segment: str, key: str) -> bool:
        consent = self.project.model.consent
        if consent is None:
            return True
        for channel in self.channels(segment):
            answer = self.consent.get((key, channel))
            if answer is None:
                if consent.channels[channel].require_opt_in:
                    return False
            elif answer is False:
                return False
        return True

    # final membership ----------------------------------------------------------------------
    def higher_priority(self, segment: str) -> list[str]:
        for group in self.project.priority_groups.values():
            if segment in group.segments:
                return [s for s in group.segments[: group.segments.index(segment)] if s in self.project.segments]
        return []

    def final_members(self, segment: str) -> set[str]:
        if segment not in self.final:
            definition = self.project.segments[segment]
            beaten: set[str] = set()
            for higher in self.higher_priority(segment):
                beaten |= self.final_members(higher)
            self.final[segment] = {
                key for key in self.customers
                if key not in beaten and self.holds(definition.rule, key) and self.allowed(segment, key)
            }
        return self.final[segment]

    def arms(self, segment: str) -> dict[str, str | None]:
        split = self.project.segments[segment].split
        members = self.final_members(segment)
        return {key: split_arm(split, key) if split else None for key in members}


def reference_members(project: Project, tables: Tables, as_of: dt.datetime,
                      segments: Iterable[str] | None = None) -> dict[str, dict[str, str | None]]:
    """Final members of every segment (or of ``segments``) and their split arm.

    :param project: a loaded, validated project.
    :param tables: warehouse table name -> rows (dicts keyed by column name).
    :param as_of: evaluation time; naive means UTC.
    :returns: segment -> {customer key as text -> arm, or None for a segment without split}.
    """
    evaluation = _Evaluation(project, tables, as_of)
    names = list(project.segments) if segments is None else list(segments)
    return {name: evaluation.arms(name) for name in names}

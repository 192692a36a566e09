"""Typed values of a rule: each condition's operator and value checked against the value type.

A rule's values are written as YAML scalars; a :class:`~airflow_segprovider.core.project.rules.Predicate`
holds them parsed (dates, timestamps as naive UTC, durations as timedelta), so the compiler and the
evaluators never see text where a date is meant.

YAML 1.1, which project files are read with, turns unquoted ``yes``/``NO``/``on``/``off`` into booleans
and ``01234`` into a number; a text value that arrives so is rejected with a hint to quote it, never
read back as text, since the original spelling (``NO``, ``no``, ``off``?) is lost by then.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from airflow_segprovider.core.project.durations import parse_duration
from airflow_segprovider.core.project.regex import check_portable_regex
from airflow_segprovider.core.project.rules import LIST_OPS, NULL_OPS, OPERATORS_BY_TYPE, RELATIVE_OPS, Predicate
from airflow_segprovider.core.sql.numbers import check_number


def _parse_timestamp(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def _parse_scalar(value_type: str, value: Any) -> Any:
    """Typed value for ``value_type`` or ValueError saying what was expected."""
    if value_type == "string":
        if isinstance(value, bool):
            raise ValueError(f"expected text, got the boolean {value!r}: YAML reads unquoted yes/no/on/off/"
                             "true/false (any case) as booleans; quote the text, e.g. 'NO'")
        if isinstance(value, (int, float)):
            raise ValueError(f"expected text, got the number {value!r}: quote the text, e.g. '01234' "
                             "(YAML reads unquoted digits as a number, and a leading 0 as octal)")
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {value!r}")
        return value
    if value_type == "number":
        if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value.strip()):
            raise ValueError(f"expected a number, got the text {value!r}: YAML 1.1 reads an exponent only with "
                             "a dot and a sign (1.0e+3); write the number out, e.g. 1000")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        check_number(value)  # finite, below 10^15, at most 9 decimals
        return value
    if value_type == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if value_type == "date":
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(f"expected a date as YYYY-MM-DD, got {value!r}")
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a calendar date ({exc})") from None
    if value_type == "timestamp":
        if not isinstance(value, str):
            raise ValueError(f"expected an ISO 8601 timestamp, got {value!r}")
        try:
            return _parse_timestamp(value)
        except ValueError:
            raise ValueError(f"expected an ISO 8601 timestamp such as 2026-01-31T08:00:00Z, got {value!r}") from None
    raise AssertionError(value_type)


def parse_predicate(value_type: str, op: str, raw: Any, has_value: bool) -> Predicate:
    """Check ``op`` and ``raw`` against ``value_type`` and return a typed :class:`Predicate`.

    :raises ValueError: with a message naming what is wrong; the caller adds the location.
    """
    if op not in OPERATORS_BY_TYPE[value_type]:
        valid = ", ".join(sorted(OPERATORS_BY_TYPE[value_type]))
        raise OperatorError(f"operator {op!r} is not valid for a {value_type} value", f"use one of: {valid}")
    if op in NULL_OPS:
        if has_value:
            raise ValueError(f"operator {op!r} takes no value")
        return Predicate(op)
    if not has_value:
        raise ValueError(f"operator {op!r} needs a value")
    if op in RELATIVE_OPS:
        return Predicate(op, parse_duration(raw))
    if op in LIST_OPS:
        if not isinstance(raw, list) or not raw:
            raise ValueError(f"operator {op!r} needs a non-empty list of values")
        return Predicate(op, tuple(_parse_scalar(value_type, item) for item in raw))
    if op == "between":
        if not isinstance(raw, list) or len(raw) != 2:
            raise ValueError("operator 'between' needs a list of two values: [low, high]")
        low, high = (_parse_scalar(value_type, item) for item in raw)
        if low > high:
            raise ValueError(f"'between' bounds are reversed: {raw[0]!r} is greater than {raw[1]!r}")
        return Predicate(op, (low, high))
    if isinstance(raw, list):
        raise ValueError(f"operator {op!r} takes one value, not a list")
    if op == "matches":
        if not isinstance(raw, str):
            raise ValueError(f"expected a regular expression as text, got {raw!r}")
        check_portable_regex(raw)
    return Predicate(op, _parse_scalar(value_type, raw))


class OperatorError(ValueError):
    """An operator the value type does not have; ``hint`` lists the ones it has."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint

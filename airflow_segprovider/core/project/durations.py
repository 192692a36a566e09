"""Fixed-length durations used by relative-time rules (``30d``, ``12h``, ``2w``).

Months and years are deliberately not accepted: their length depends on the
calendar and each warehouse dialect does calendar arithmetic differently. A
fixed number of seconds means the same window on DuckDB, PostgreSQL, Snowflake,
BigQuery and in Python.

A duration is at most :data:`MAX_DURATION` (100 years): ``as_of`` minus a window stays a valid
date for every ``as_of`` the CLI accepts (from 1900-01-01), and no marketing window reaches further.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*(m|h|d|w)\s*$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_DURATION = timedelta(days=36500)
MAX_DURATION_TEXT = "36500d (100 years)"


def parse_duration(text: object) -> timedelta:
    """Parse ``"30d"``-style text into a :class:`~datetime.timedelta`.

    :param text: a positive whole number followed by ``m`` (minutes), ``h``, ``d`` or ``w``, at most
        :data:`MAX_DURATION`.
    :raises ValueError: with a message that says what is accepted.
    """
    if not isinstance(text, str):
        # ValueError, not TypeError: every caller reports a ValueError as a located SEG048
        raise ValueError(f"expected a duration such as '30d', got {text!r}")  # noqa: TRY004
    shown = repr(text) if len(text) <= 40 else repr(text[:37]) + "..."
    match = _DURATION.match(text)
    digits = match.group(1).lstrip("0") if match else ""
    if match is None or not digits:
        raise ValueError(
            f"{shown} is not a duration; write a positive whole number and a unit: "
            "m (minutes), h (hours), d (days) or w (weeks), e.g. '30d' or '365d'"
        )
    # (a number of more than 12 digits exceeds the limit in any unit; it is not even read)
    seconds = int(digits) * _UNIT_SECONDS[match.group(2)] if len(digits) <= 12 else None
    if seconds is None or seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{shown} is longer than the longest window: at most {MAX_DURATION_TEXT}, "
                         "i.e. 5214w, 876000h or 52560000m")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """``value`` as the project language writes it: the largest of days, hours or minutes that divides it.

    Days rather than weeks (``14d`` reads better than ``2w`` in a message); what no minute divides is
    rounded up to the minute, the language's smallest unit.
    """
    seconds = int(value.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{-(-seconds // 60)}m"

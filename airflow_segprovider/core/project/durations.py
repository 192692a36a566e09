"""Fixed-length durations used by relative-time rules (``30d``, ``12h``, ``2w``).

Months and years are deliberately not accepted: their length depends on the
calendar and each warehouse dialect does calendar arithmetic differently. A
fixed number of seconds means the same window on DuckDB, PostgreSQL, Snowflake,
BigQuery and in Python.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d{1,6})\s*(m|h|d|w)\s*$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: object) -> timedelta:
    """Parse ``"30d"``-style text into a :class:`~datetime.timedelta`.

    :param text: a positive whole number followed by ``m`` (minutes), ``h``, ``d`` or ``w``.
    :raises ValueError: with a message that says what is accepted.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a duration such as '30d', got {text!r}")
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"{text!r} is not a duration; write a positive whole number and a unit: "
            "m (minutes), h (hours), d (days) or w (weeks), e.g. '30d' or '365d'"
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])

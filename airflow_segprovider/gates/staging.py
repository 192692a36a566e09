"""Stage what destinations report they hold, for the ``cross_system_counts`` gate.

The reports go to ``segprovider_destination_counts`` (its columns and DDL:
:mod:`airflow_segprovider.core.state.gates`), one row per report. History is kept;
the gate reads the latest report of its phase and ``as_of``.

A report is the destination's own notion of its size (:class:`~airflow_segprovider.core.destination.ReportedCount`):
for Meta the approximate range of the people it *matched*, the lowest match rate the destination is held to,
the match rate it observed and whether it is still applying uploads. All of it is staged, so the gate holds
the count to the same bounds as the drift monitor and shows the match rate of an ad platform.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.destination import ReportedCount
from airflow_segprovider.core.sql.dialects import quoted_table, render, text_literal, ts_literal
from airflow_segprovider.core.state.gates import DESTINATION_COUNTS, ensure_counts_table
from airflow_segprovider.gates.queries import PHASES, GateConfigError

if TYPE_CHECKING:
    from airflow_segprovider.core.warehouses.base import Warehouse

__all__ = ["ensure_counts_table", "stage_destination_counts"]


def stage_destination_counts(warehouse: Warehouse, counts: Iterable[Mapping[str, Any]], *, phase: str,
                             as_of: dt.datetime, reported_at: dt.datetime | None = None) -> int:
    """Append the reported counts (creating the table if missing); returns the number of rows written.

    :param counts: ``{"sync_id", "destination", "reported_count"}`` per sync; ``reported_count`` is the
        destination's :class:`~airflow_segprovider.core.destination.ReportedCount` (what ``reported_count()``
        answers), an exact int, or None when the destination cannot report one.
    :param phase: ``before`` or ``after`` the sync.
    :param as_of: the run's evaluation time; the gate of that run reads only these rows.
    :param reported_at: when the destinations were asked (default: now, UTC).
    """
    if phase not in PHASES:
        raise GateConfigError(f"unknown phase {phase!r}; phases: {', '.join(PHASES)}")
    from airflow_segprovider.core.evaluate.engine import parse_as_of

    at = parse_as_of(as_of)
    when = reported_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = []
    for count in counts:
        missing = {"sync_id", "destination", "reported_count"} - set(count)
        if missing:
            raise GateConfigError(f"a staged count needs {', '.join(sorted(missing))}: got {dict(count)!r}")
        reported = _reported(count)
        if reported is None:
            measured = "NULL, NULL, NULL, NULL, NULL, NULL"
        else:
            rate = "NULL" if reported.match_rate is None else repr(float(reported.match_rate))
            measured = (f"{reported.value}, {reported.lower}, {reported.upper}, {float(reported.min_match_rate)!r}, "
                        f"{rate}, {'TRUE' if reported.pending else 'FALSE'}")
        rows.append(
            f"({text_literal(str(count['sync_id']))}, {text_literal(str(count['destination']))}, "
            f"{measured}, {ts_literal(when)}, {text_literal(phase)}, {ts_literal(at)})")
    if not rows:
        ensure_counts_table(warehouse)
        return 0
    with warehouse.transaction():
        ensure_counts_table(warehouse)
        warehouse.execute(render(
            f"INSERT INTO {quoted_table(DESTINATION_COUNTS, warehouse.schema)} "
            "(sync_id, destination, reported_count, reported_lower, reported_upper, min_match_rate, match_rate, "
            f"pending, reported_at, phase, as_of) VALUES {', '.join(rows)}",
            warehouse.dialect))
    return len(rows)


def _reported(count: Mapping[str, Any]) -> ReportedCount | None:
    """The staged count's :class:`ReportedCount` (an int is an exact count).

    :raises GateConfigError: it is neither (named with the sync).
    """
    reported = count["reported_count"]
    if reported is None or isinstance(reported, ReportedCount):
        return reported
    if isinstance(reported, int) and not isinstance(reported, bool):
        return ReportedCount.exact(reported)
    raise GateConfigError(f"sync {count['sync_id']!r}: reported_count must be an int, a ReportedCount or None, "
                          f"got {reported!r}")

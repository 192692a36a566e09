"""Stage what destinations report they hold, for the ``cross_system_counts`` gate.

The reports go to ``segprovider_destination_counts`` (its columns and DDL:
:mod:`airflow_segprovider.core.state.gates`), one row per report. History is kept;
the gate reads the latest report of its phase and ``as_of``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.sql.dialects import quoted_table, render, text_literal, ts_literal
from airflow_segprovider.core.state.gates import DESTINATION_COUNTS, ensure_counts_table
from airflow_segprovider.gates.queries import PHASES, GateConfigError

if TYPE_CHECKING:
    from airflow_segprovider.core.warehouses.base import Warehouse

__all__ = ["ensure_counts_table", "stage_destination_counts"]


def stage_destination_counts(warehouse: Warehouse, counts: Iterable[Mapping[str, Any]], *, phase: str,
                             as_of: dt.datetime, reported_at: dt.datetime | None = None) -> int:
    """Append the reported counts (creating the table if missing); returns the number of rows written.

    :param counts: ``{"sync_id", "destination", "reported_count"}`` per sync; ``reported_count``
        may be None when the destination cannot report one.
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
        reported = count["reported_count"]
        rows.append(
            f"({text_literal(str(count['sync_id']))}, {text_literal(str(count['destination']))}, "
            f"{'NULL' if reported is None else int(reported)}, {ts_literal(when)}, {text_literal(phase)}, "
            f"{ts_literal(at)})")
    if not rows:
        ensure_counts_table(warehouse)
        return 0
    with warehouse.transaction():
        ensure_counts_table(warehouse)
        warehouse.execute(render(
            f"INSERT INTO {quoted_table(DESTINATION_COUNTS, warehouse.schema)} "
            f"(sync_id, destination, reported_count, reported_at, phase, as_of) VALUES {', '.join(rows)}",
            warehouse.dialect))
    return len(rows)

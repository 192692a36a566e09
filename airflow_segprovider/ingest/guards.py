"""Guards against exports that would silently damage the warehouse: an empty or sharply shrunken
``replace`` source, and rows dated in the future.

Both were found by trying the ingest as a careless upstream system would (issue #17): a
customers export that came back with its header only emptied the customers table, and every
segment evaluated to 0; one event dated 2999-01-01 moved an incremental source's watermark to
2999, after which every load read 0 rows, silently.

* **Shrink.** A ``replace`` load that would leave the table empty (unless the source sets
  ``allow_empty``), or with fewer than ``1 - max_shrink_fraction`` of its rows, is refused with a
  :class:`~.errors.TerminalIngestError` before it commits: the table keeps its rows. ``allow_shrink``
  (the CLI's ``--allow-shrink``, the operator's ``allow_shrink``) lets one run through.
* **Future dates.** A row whose date (an event's or order's timestamp, a consent's
  ``updated_at``) or incremental value is later than the load time plus the source's
  ``future_tolerance`` is quarantined with :func:`future_reason`. The watermark is taken from
  the other rows only, and a watermark stored beyond that limit (by a load before this guard) is
  not used to filter: the load falls back to the latest earlier watermark within it.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from airflow_segprovider.ingest.errors import TerminalIngestError

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Source

logger = logging.getLogger(__name__)

def duration_text(value: dt.timedelta) -> str:
    """``value`` as the project language writes it (``1d``, ``12h``, ``90m``)."""
    from airflow_segprovider.core.project.durations import format_duration

    return format_duration(value)


def future_limit(now: dt.datetime, source: Source) -> dt.datetime:
    """The latest date a row of ``source`` loaded at ``now`` may carry (naive UTC, as the tables store it)."""
    if now.tzinfo is not None:
        now = now.astimezone(dt.UTC).replace(tzinfo=None)
    return now + source.future_tolerance


def future_reason(source: Source) -> str:
    """The quarantine reason of a row dated beyond :func:`future_limit`."""
    return f"in the future: later than the load time plus future_tolerance ({duration_text(source.future_tolerance)})"


def beyond_sql(text_or_timestamp: str, limit: str) -> str:
    """DuckDB condition, never NULL: the value (a timestamp, or text holding one) is later than ``limit``.

    Text that is no timestamp (a numeric watermark) is never beyond it.
    """
    return f"COALESCE(TRY_CAST(TRY_CAST({text_or_timestamp} AS TIMESTAMPTZ) AS TIMESTAMP) > {limit}, false)"


def check_shrink(source: Source, table: str, previous_rows: int, new_rows: int, quarantined: int, *,
                 allow_shrink: bool) -> None:
    """Refuse a ``replace`` load that would leave ``table`` empty or shrunken past the source's limit.

    :param previous_rows: rows the table held before the load.
    :param new_rows: rows the load would leave in it.
    :param quarantined: rows of the load quarantined instead (named in the message: often the cause).
    :param allow_shrink: the run's override; the refusal is then only logged.
    :raises TerminalIngestError: naming the source, both counts and how to override.
    """
    if source.mode != "replace" or previous_rows == 0 or new_rows >= previous_rows:
        return
    fraction = 1 - new_rows / previous_rows
    if new_rows == 0 and not source.allow_empty:
        why, setting = "the source has no rows to load", "set 'allow_empty: true' on the source"
    elif new_rows > 0 and fraction > source.max_shrink_fraction:
        why = (f"{fraction:.0%} fewer, more than the source's max_shrink_fraction "
               f"{source.max_shrink_fraction:g} allows")
        setting = "raise the source's 'max_shrink_fraction'"
    else:
        return
    message = (f"refusing to replace table {table!r}: it holds {previous_rows} rows and this load would leave "
               f"{new_rows} rows ({why}")
    message += f"; {quarantined} more rows were quarantined)" if quarantined else ")"
    if allow_shrink:
        logger.warning("source %s: %s; loading it anyway (allow_shrink)", source.name,
                       message.replace("refusing to replace", "replacing"))
        return
    raise TerminalIngestError(
        message + "; nothing was changed", source=source.name,
        hint="check the export; if it is right, load it once with allow_shrink (CLI: 'segprovider ingest "
             f"--allow-shrink --source {source.name}'; operator: allow_shrink=True), or {setting}")

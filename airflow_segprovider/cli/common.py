"""What every ``segprovider`` command shares: loading the project, opening the warehouse, reading ``--as-of``.

Arguments are checked where argparse reads them (``type=`` functions below): a bad value ends the
command as a usage error that names the argument and what it accepts, before anything is opened.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from airflow_segprovider.core.errors import TerminalError

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

#: ``as_of`` values the CLI accepts. Windows reach back at most 100 years (see durations.py), so the
#: earliest bound keeps every ``as_of - window`` a valid date, and nothing real needs a later one.
AS_OF_MIN = dt.datetime(1900, 1, 1)
AS_OF_MAX = dt.datetime(2999, 12, 31, 23, 59, 59, 999999)
AS_OF_RANGE = f"{AS_OF_MIN:%Y-%m-%d} to {AS_OF_MAX:%Y-%m-%d}"

AS_OF_HELP = f"evaluation time, ISO 8601 (UTC unless an offset is given; {AS_OF_RANGE}); default: today 00:00 UTC"
DB_HELP = "DuckDB warehouse file (default: the project's warehouse.path, relative to the project folder)"
WAIT_HELP = ("when another process holds the DuckDB warehouse, retry opening it for up to SECONDS "
             "(default 0: fail at once and name the process)")


class AddCommand(Protocol):
    """Adds one sub-command: ``command(name, handler, help_text, aliases=())`` returns its parser."""

    def __call__(self, name: str, handler: Callable[[argparse.Namespace], int], help_text: str,
                 aliases: Sequence[str] = ()) -> argparse.ArgumentParser: ...


def load(path: str) -> Project:
    """The validated project in ``path`` (raises :class:`ProjectValidationError` with every issue)."""
    from airflow_segprovider.core.project.loader import load_project

    return load_project(path)


def require_segments(project: Project, names: Sequence[str], option: str) -> None:
    """:raises TerminalError: naming ``option`` and each of ``names`` the project does not declare."""
    from airflow_segprovider.core.project.items import did_you_mean

    unknown = [name for name in names if name not in project.segments]
    if unknown:
        raise TerminalError(f"{option}: unknown segment {', '.join(map(repr, unknown))}; "
                            + did_you_mean(unknown[0], project.segments, "segments"))


def open_warehouse(project: Project | None, db: str | None, wait_for_lock: float = 0.0) -> DuckDBWarehouse:
    """The embedded DuckDB warehouse: ``--db``, else the project's ``warehouse.path`` (relative to the project).

    :param wait_for_lock: seconds to keep retrying while another process holds the file's lock.
    :raises WarehouseInUseError: another process still holds it after ``wait_for_lock`` seconds.
    :raises WarehouseFileError: the path is a folder, not a DuckDB file, or cannot be opened.
    """
    from pathlib import Path

    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

    if db is None:
        if project is None:
            raise TerminalError("give --db PATH or --project PROJECT to locate the DuckDB warehouse")
        if project.warehouse.kind != "duckdb":
            raise TerminalError(
                f"project {project.name!r} uses a {project.warehouse.kind} warehouse; the CLI runs on the embedded "
                "DuckDB warehouse (pass --db PATH), deployments run through the Airflow operators")
        db = str(Path(project.root) / project.warehouse.path)
    return DuckDBWarehouse(db, schema=project.warehouse.schema if project else "main", lock_wait_s=wait_for_lock)


def add_db_arguments(parser: argparse.ArgumentParser, db_help: str = DB_HELP) -> None:
    """``--db`` and ``--wait-for-lock``: where the DuckDB warehouse is, and how long to wait for it."""
    parser.add_argument("--db", type=path_arg, help=db_help)
    parser.add_argument("--wait-for-lock", type=seconds_arg, default=0.0, metavar="SECONDS", help=WAIT_HELP)


def as_of_arg(value: str | dt.datetime | None) -> dt.datetime:
    """``--as-of`` as a naive UTC timestamp (already checked by :func:`as_of_type`); default: today 00:00 UTC."""
    if value is None:  # default: the start of the current UTC day, so repeated runs in a day agree
        today = dt.datetime.now(dt.UTC).date()
        return dt.datetime(today.year, today.month, today.day)
    return value if isinstance(value, dt.datetime) else as_of_type(value)


def as_of_type(text: str) -> dt.datetime:
    """argparse ``type=`` of ``--as-of``: ISO 8601, read as UTC, within :data:`AS_OF_RANGE`."""
    from airflow_segprovider.core.errors import SegproviderError
    from airflow_segprovider.core.evaluate.engine import parse_as_of

    try:
        parsed = parse_as_of(text)
    except (SegproviderError, OverflowError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not AS_OF_MIN <= parsed <= AS_OF_MAX:
        raise argparse.ArgumentTypeError(f"{text!r} is outside the supported range {AS_OF_RANGE} (UTC)")
    return parsed


def path_arg(text: str) -> str:
    """argparse ``type=`` of a file path: not empty (DuckDB would open an empty path as a throwaway database)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a file path")
    return text


def int_at_least(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """argparse ``type=`` of a whole number ``>= minimum`` (and ``<= maximum`` when given)."""
    bounds = f">= {minimum:,}" + (f" and <= {maximum:,}" if maximum is not None else "")

    def parse(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give one {bounds}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{text!r} is out of range; give a whole number {bounds}")
        return value

    parse.__name__ = f"whole number {bounds}"  # what argparse names in its own messages
    return parse


def number_between(minimum: float, maximum: float) -> Callable[[str], float]:
    """argparse ``type=`` of a finite number within ``[minimum, maximum]`` (nan and inf refused)."""
    bounds = f"between {minimum:g} and {maximum:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; give one {bounds}") from None
        if not math.isfinite(value) or not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{text!r} is out of range; give a finite number {bounds}")
        return value

    parse.__name__ = f"number {bounds}"
    return parse


#: ``--wait-for-lock SECONDS``: a day at most, so a typo cannot block a shell for years.
seconds_arg = number_between(0, 86_400)

"""What every ``segprovider`` command shares: loading the project, opening the warehouse, reading ``--as-of``."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from airflow_segprovider.core.errors import TerminalError

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2

AS_OF_HELP = "evaluation time, ISO 8601 (UTC unless an offset is given); default: today 00:00 UTC"
DB_HELP = "DuckDB warehouse file (default: the project's warehouse.path, relative to the project folder)"


class AddCommand(Protocol):
    """Adds one sub-command: ``command(name, handler, help_text, aliases=())`` returns its parser."""

    def __call__(self, name: str, handler: Callable[[argparse.Namespace], int], help_text: str,
                 aliases: Sequence[str] = ()) -> argparse.ArgumentParser: ...


def load(path: str) -> Project:
    """The validated project in ``path`` (raises :class:`ProjectValidationError` with every issue)."""
    from airflow_segprovider.core.project.loader import load_project

    return load_project(path)


def open_warehouse(project: Project | None, db: str | None) -> DuckDBWarehouse:
    """The embedded DuckDB warehouse: ``--db``, else the project's ``warehouse.path`` (relative to the project)."""
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
    return DuckDBWarehouse(db, schema=project.warehouse.schema if project else "main")


def as_of_arg(text: str | None):
    """``--as-of`` as a UTC timestamp; default: the start of the current UTC day."""
    import datetime as dt

    from airflow_segprovider.core.evaluate.engine import parse_as_of

    if text is None:  # default: the start of the current UTC day, so repeated runs in a day agree
        today = dt.datetime.now(dt.timezone.utc).date()
        return dt.datetime(today.year, today.month, today.day)
    return parse_as_of(text)

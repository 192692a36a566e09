"""``segprovider ingest``: load a project's sources into its DuckDB warehouse from the command line.

REST sources read their connection from ``AIRFLOW_CONN_<CONNECTION_ID>`` (JSON or URI, as
Airflow does).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from airflow_segprovider.cli.common import add_db_arguments, open_warehouse
from airflow_segprovider.core.errors import SegproviderError, TerminalError

if TYPE_CHECKING:
    from airflow_segprovider.cli.common import AddCommand


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", help="the segments project folder")
    add_db_arguments(parser)
    parser.add_argument("--source", action="append", dest="sources", metavar="NAME",
                        help="load only this source (repeatable; default: every source)")
    parser.add_argument("--files-root", help="folder relative file paths start from (default: the project folder)")
    parser.add_argument("--allow-shrink", action="store_true",
                        help="load a replace source even when it would empty its table or shrink it by more than "
                             "the source's max_shrink_fraction")


def run(args: argparse.Namespace, out: Callable[[str], object] = print) -> int:
    """Load the sources; print one line per source. Exit code 0 when all succeeded, 1 otherwise."""
    from airflow_segprovider.core.project.loader import load_project
    from airflow_segprovider.ingest.loader import ingest_all

    try:
        project = load_project(args.project)
        unknown = sorted(set(args.sources or ()) - set(project.sources))
        if unknown:
            raise TerminalError(f"--source: unknown source(s): {', '.join(unknown)}; the project declares: "
                                f"{', '.join(project.sources) or '(none)'}")
        warehouse = open_warehouse(project, args.db, args.wait_for_lock)
        try:
            results = ingest_all(project, warehouse, sources=args.sources, files_root=args.files_root,
                                 allow_shrink=args.allow_shrink)
        finally:
            warehouse.close()
    except SegproviderError as exc:
        out(f"error: {exc}")
        return 1
    for result in results:
        out(("OK     " if result.succeeded else "FAILED ") + result.summary())
    return 0 if all(result.succeeded for result in results) else 1



def cmd_ingest(args: argparse.Namespace) -> int:
    return run(args)


def register(command: AddCommand) -> None:
    """Add this group's command to the ``segprovider`` parser."""
    p = command("ingest", cmd_ingest, "Load the project's sources (files, warehouse tables, REST APIs) into the "
                "warehouse, typed by the data model; bad rows are quarantined with their reason.")
    add_arguments(p)

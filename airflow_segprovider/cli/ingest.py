"""``segprovider ingest``: load a project's sources into its DuckDB warehouse from the command line.

The ``segprovider`` CLI mounts it with :func:`add_arguments` and :func:`run`;
``python -m airflow_segprovider.ingest PROJECT`` runs it alone. REST sources read
their connection from ``AIRFLOW_CONN_<CONNECTION_ID>`` (JSON or URI, as Airflow does).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from airflow_segprovider.core.errors import SegproviderError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", help="the segments project folder")
    parser.add_argument("--db", help="DuckDB warehouse file (default: the project's warehouse.path, "
                                     "relative to the project folder)")
    parser.add_argument("--source", action="append", dest="sources", metavar="NAME",
                        help="load only this source (repeatable; default: every source)")
    parser.add_argument("--files-root", help="folder relative file paths start from (default: the project folder)")


def run(args: argparse.Namespace, out: Callable[[str], object] = print) -> int:
    """Load the sources; print one line per source. Exit code 0 when all succeeded, 1 otherwise."""
    from airflow_segprovider.core.project.loader import load_project
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.ingest.loader import ingest_all

    try:
        project = load_project(args.project)
        unknown = sorted(set(args.sources or ()) - set(project.sources))
        if unknown:
            raise SegproviderError(f"unknown source(s): {', '.join(unknown)}; the project declares: "
                                   f"{', '.join(project.sources) or '(none)'}")
        if args.db is None and project.warehouse.kind != "duckdb":
            raise SegproviderError(f"project {project.name!r} uses a {project.warehouse.kind} warehouse; "
                                   "pass --db PATH to ingest into a DuckDB file")
        db = args.db or str(Path(project.root) / project.warehouse.path)
        warehouse = DuckDBWarehouse(db, schema=project.warehouse.schema)
        try:
            results = ingest_all(project, warehouse, sources=args.sources, files_root=args.files_root)
        finally:
            warehouse.close()
    except SegproviderError as exc:
        out(f"error: {exc}")
        return 1
    for result in results:
        out(("OK     " if result.succeeded else "FAILED ") + result.summary())
    return 0 if all(result.succeeded for result in results) else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_segprovider.ingest", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

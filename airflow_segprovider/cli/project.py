"""``segprovider validate``, ``describe`` and ``compile``: read a project without touching a warehouse."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from airflow_segprovider.cli.common import AS_OF_HELP, EXIT_OK, as_of_arg, as_of_type, load, require_segments

if TYPE_CHECKING:
    from airflow_segprovider.cli.common import AddCommand


def cmd_validate(args: argparse.Namespace) -> int:
    project = load(args.project)
    print(f"OK: project {project.name!r} is valid: {len(project.segments)} segments, "
          f"{len(project.destinations)} destinations, {len(project.syncs)} syncs.")
    return EXIT_OK


def cmd_describe(args: argparse.Namespace) -> int:
    from airflow_segprovider.core.evaluate.describe import describe_project

    print("\n".join(describe_project(load(args.project))))
    return EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    from airflow_segprovider.core.evaluate.compiler import SegmentCompiler

    project = load(args.project)
    require_segments(project, [args.segment] if args.segment else [], "--segment")
    compiled = SegmentCompiler(project, args.dialect, project.warehouse.schema).compile(
        as_of_arg(args.as_of), segments=[args.segment] if args.segment else None)
    print(compiled.sql(pretty=True) + ";")
    return EXIT_OK


def register(command: AddCommand) -> None:
    """Add this group's commands to the ``segprovider`` parser."""
    p = command("validate", cmd_validate, "Validate a segments project and report every error with file and line.")
    p.add_argument("project", help="folder holding the project's YAML files")
    p = command("describe", cmd_describe, "Print the segments, their rules, dependencies and destinations.")
    p.add_argument("project", help="folder holding the project's YAML files")
    p = command("compile", cmd_compile, "Print the SQL that evaluates the project's segments.")
    p.add_argument("project")
    p.add_argument("--segment", help="only this segment and what it depends on")
    p.add_argument("--as-of", type=as_of_type, help=AS_OF_HELP)
    p.add_argument("--dialect", default="duckdb", choices=["duckdb", "postgres", "snowflake", "bigquery"])

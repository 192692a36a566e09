"""The ``segprovider`` command line: validate, describe, compile, evaluate and sync a segments project.

Every sub-command exits 0 on success and non-zero with a readable message on
failure; no traceback reaches the user for a problem in their project or data.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Callable, Sequence

from airflow_segprovider.core.errors import ProjectValidationError, SegproviderError

if TYPE_CHECKING:
    from airflow_segprovider.core.spec import Project

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _load(path: str) -> Project:
    from airflow_segprovider.core.project import load_project

    return load_project(path)


def cmd_validate(args: argparse.Namespace) -> int:
    project = _load(args.project)
    print(f"OK: project {project.name!r} is valid: {len(project.segments)} segments, "
          f"{len(project.destinations)} destinations, {len(project.syncs)} syncs.")
    return EXIT_OK


def cmd_describe(args: argparse.Namespace) -> int:
    from airflow_segprovider.core.describe import describe_project

    print("\n".join(describe_project(_load(args.project))))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segprovider",
        description="One segmentation logic for marketing data: validate, evaluate and sync a segments project.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    p = command("validate", cmd_validate, "Validate a segments project and report every error with file and line.")
    p.add_argument("project", help="folder holding the project's YAML files")
    p = command("describe", cmd_describe, "Print the segments, their rules, dependencies and destinations.")
    p.add_argument("project", help="folder holding the project's YAML files")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ProjectValidationError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_ERROR
    except SegproviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The ``segprovider`` command line: validate, describe, compile, evaluate and sync a segments project.

Each command group lives in its own module (:mod:`.project`, :mod:`.evaluate`, :mod:`.ingest`,
:mod:`.sync`, :mod:`.suppress`, :mod:`.forget`, :mod:`.distributed`, :mod:`.sandbox`, :mod:`.land`,
:mod:`.demo`) and adds its commands here
through ``register``. Every sub-command exits 0 on success and non-zero with a readable message on
failure; no traceback reaches the user for a problem in their project or data.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from airflow_segprovider.cli import (
    demo,
    distributed,
    evaluate,
    forget,
    ingest,
    land,
    project,
    sandbox,
    suppress,
    sync,
    sync_log,
)
from airflow_segprovider.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, AddCommand
from airflow_segprovider.core.errors import ProjectValidationError, SegproviderError

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "AddCommand", "build_parser", "main"]

#: The command groups, in the order ``segprovider --help`` lists them.
GROUPS = (project, evaluate, ingest, sync, sync_log, suppress, forget, distributed, sandbox, land, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segprovider",
        description="One segmentation logic for marketing data: validate, evaluate and sync a segments project.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str,
                aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, aliases=list(aliases))
        p.set_defaults(handler=handler)
        return p

    for group in GROUPS:
        group.register(command)
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

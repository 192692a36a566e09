"""``segprovider suppress add|remove|list``: the project-level suppression list every sync honours.

A suppressed customer key or identity (an e-mail address) is never sent by any sync, attribute push or
reconcile, and a destination that holds it removes it at the next run, in every mode (``add_only``
included), never held back by the removal guards or a failed gate.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from airflow_segprovider.cli.common import EXIT_OK, add_db_arguments, load, open_warehouse
from airflow_segprovider.core.errors import TerminalError

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_segprovider.cli.common import AddCommand
    from airflow_segprovider.core.warehouses.base import Warehouse


def _warehouse(args: argparse.Namespace):
    project = load(args.project) if args.project else None
    return open_warehouse(project, args.db, args.wait_for_lock)


def _target(args: argparse.Namespace) -> dict[str, str | None]:
    if args.customer is None and args.identity is None:
        raise TerminalError("give --customer KEY, --identity EMAIL, or both")
    for flag, value in (("--customer", args.customer), ("--identity", args.identity)):
        if value is not None and not value.strip():
            raise TerminalError(f"{flag} is empty: give the value to suppress")
    if getattr(args, "reason", "x").strip() == "":
        raise TerminalError("--reason is empty: say why (recorded with the entry)")
    return {"customer_key": args.customer, "identity": args.identity}


def _change(args: argparse.Namespace, change: Callable[[Warehouse, dict[str, str | None]], bool], *,
            changed: str, unchanged: str) -> int:
    """Check the entry's arguments (before opening the warehouse), apply ``change`` to the list and print
    ``changed`` or ``unchanged`` as it says."""
    target = _target(args)
    warehouse = _warehouse(args)
    try:
        done = change(warehouse, target)
    finally:
        warehouse.close()
    print(changed if done else unchanged)
    return EXIT_OK


def cmd_add(args: argparse.Namespace) -> int:
    from airflow_segprovider.core.privacy import add_suppression

    return _change(args, lambda warehouse, target: add_suppression(
        warehouse, **target, reason=args.reason, added_by=f"cli:{args.added_by}"),
        changed="suppressed", unchanged="already suppressed")


def cmd_remove(args: argparse.Namespace) -> int:
    from airflow_segprovider.core.privacy import remove_suppression

    return _change(args, lambda warehouse, target: remove_suppression(warehouse, **target),
                   changed="removed from the suppression list", unchanged="not on the suppression list")


def cmd_list(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from airflow_segprovider.core.privacy import list_suppressions

    warehouse = _warehouse(args)
    try:
        entries = list_suppressions(warehouse)
    finally:
        warehouse.close()
    if args.json:
        print(json.dumps([asdict(entry) for entry in entries], indent=2, default=str))
        return EXIT_OK
    if not entries:
        print("the suppression list is empty")
    for entry in entries:
        print(f"{entry.added_at:%Y-%m-%d %H:%M}  customer={entry.customer_key or '-'}  identity={entry.identity or '-'}"
              f"  by {entry.added_by}: {entry.reason}")
    return EXIT_OK


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", help="the segments project (locates the DuckDB warehouse unless --db is given)")
    add_db_arguments(parser)


def register(command: AddCommand) -> None:
    """Add this group's command to the ``segprovider`` parser."""
    p = command("suppress", lambda args: args.suppress_handler(args),
                "Add to, remove from or list the project's suppression list: suppressed customers or addresses "
                "are never sent, and removed from every destination at the next sync, in every mode.")
    sub = p.add_subparsers(dest="suppress_command", required=True, metavar="ACTION")
    for name, handler, text in (("add", cmd_add, "suppress a customer key and/or an identity"),
                                ("remove", cmd_remove, "take an entry off the list (the segments decide again)")):
        q = sub.add_parser(name, help=text, description=text)
        q.set_defaults(suppress_handler=handler)
        q.add_argument("--customer", metavar="KEY", help="the customer key, as the customer table holds it")
        q.add_argument("--identity", metavar="EMAIL", help="an identity (e-mail address), matched case-insensitively")
        if name == "add":
            q.add_argument("--reason", required=True, help="why (recorded with the entry)")
            q.add_argument("--added-by", default=os.environ.get("USER") or "unknown", metavar="WHO",
                           help="who asked (default: $USER)")
        _common(q)
    q = sub.add_parser("list", help="print the list, oldest first", description="print the list, oldest first")
    q.set_defaults(suppress_handler=cmd_list)
    q.add_argument("--json", action="store_true", help="print JSON")
    _common(q)

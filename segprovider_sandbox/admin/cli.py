"""``python -m segprovider_sandbox.admin``: seed and hand-edit a sandbox's state file from a shell.

``segprovider sandbox <operation>`` forwards here in a subprocess (the provider never imports the
sandbox). The file may be in use by a running sandbox: every edit is one short SQLite transaction
in WAL mode, which waits for the server's writer (up to the store's busy timeout) and is served on
the server's next request. Problems print one line naming the argument at fault and exit 1.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from segprovider_sandbox.admin.directory import (
    AUDIENCE,
    LIST_VENDORS,
    AdminError,
    all_lists,
    find_list,
    list_members,
    member_counts,
)
from segprovider_sandbox.admin.edits import change_members, set_attribute, set_status
from segprovider_sandbox.mailchimp.members import STATUSES
from segprovider_sandbox.store import EXAMPLE_META_AUDIENCE_ID, SandboxState

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

#: The state file the sandbox uses when started without ``--db`` (the server's default).
DEFAULT_DB = "segprovider-sandbox.db"
EXIT_OK, EXIT_ERROR = 0, 1


def build_parser() -> argparse.ArgumentParser:
    """The operations' parser; ``segprovider sandbox`` declares the same operations and arguments."""
    parser = argparse.ArgumentParser(prog="segprovider sandbox",
                                     description="Seed and hand-edit the destination sandbox's state.")
    sub = parser.add_subparsers(dest="operation", required=True, metavar="OPERATION")

    def operation(name: str, handler: Callable[[SandboxState, argparse.Namespace], list[str]],
                  help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--db", default=DEFAULT_DB, help="the sandbox's SQLite state file (default: %(default)s)")
        p.set_defaults(handler=handler, creates_db=name == "seed")
        return p

    operation("seed", _seed, "create every list, segment, audience, merge field and property the example project uses")
    p = operation("lists", _lists, "print every list, segment and audience with its member count")
    p.add_argument("--vendor", choices=LIST_VENDORS, help="only this vendor's")
    p = operation("members", _members, "print a list's members (Meta: their SHA-256 hashes)")
    p.add_argument("list", metavar="LIST", help="id or name of a list, segment or audience")
    p.add_argument("--vendor", choices=LIST_VENDORS, help="the vendor, when LIST's name is not unique")
    for name, verb in (("add-member", "add people to"), ("remove-member", "remove people from")):
        p = operation(name, _add if name == "add-member" else _remove,
                      f"{verb} a list, static segment or audience, as a person would in the vendor's UI")
        p.add_argument("vendor", metavar="VENDOR", choices=LIST_VENDORS, help=" | ".join(LIST_VENDORS))
        p.add_argument("list", metavar="LIST", help="id or name of the list, segment or audience")
        p.add_argument("emails", metavar="EMAIL", nargs="+", help="email addresses")
    p = operation("set-attribute", _set_attribute,
                  "set a Mailchimp merge field or a HubSpot contact property of one person ('' clears it)")
    p.add_argument("vendor", metavar="VENDOR", choices=("mailchimp", "hubspot"), help="mailchimp | hubspot")
    p.add_argument("email", metavar="EMAIL")
    p.add_argument("field", metavar="FIELD", help="merge tag (Mailchimp) or property name (HubSpot)")
    p.add_argument("value", metavar="VALUE")
    p.add_argument("--list", dest="audience", metavar="AUDIENCE",
                   help="Mailchimp: the member's audience, when several have it")
    p = operation("set-status", _set_status,
                  "set a Mailchimp member's status, as an unsubscribe link, a bounce or a confirmation would")
    p.add_argument("vendor", metavar="VENDOR", choices=("mailchimp",), help="mailchimp")
    p.add_argument("list", metavar="LIST", help="the audience's id or name")
    p.add_argument("email", metavar="EMAIL")
    p.add_argument("status", metavar="STATUS", choices=STATUSES, help=" | ".join(STATUSES))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one operation.

    :param argv: the arguments, without the program name.
    :returns: 0 on success, 1 with one line on stderr when the operation cannot be done, 2 for bad usage.
    """
    args = build_parser().parse_args(argv)
    try:
        state = _open(args.db, create=args.creates_db)
    except AdminError as exc:
        print(f"segprovider sandbox {args.operation}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        for line in args.handler(state, args):
            print(line)
    except AdminError as exc:
        print(f"segprovider sandbox {args.operation}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except sqlite3.Error as exc:  # a locked or damaged file: say which, without a traceback
        print(f"segprovider sandbox {args.operation}: --db {args.db}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        state.close()
    return EXIT_OK


def _open(db: str, *, create: bool) -> SandboxState:
    path = Path(db)
    if not create and not path.is_file():
        raise AdminError(f"--db {db}: no sandbox state file there; create it with `segprovider sandbox seed --db {db}` "
                         "or by starting the sandbox with that --db")
    if create and not path.parent.is_dir():
        raise AdminError(f"--db {db}: folder {path.parent} does not exist")
    try:
        return SandboxState(path)
    except sqlite3.Error as exc:
        raise AdminError(f"--db {db}: not a sandbox state file ({exc})") from exc


def _seed(state: SandboxState, args: argparse.Namespace) -> list[str]:
    fixtures = state.seed_example_project()
    summary = (f"seeded {state.db_path}: Mailchimp audience {fixtures.mailchimp_list_id}, HubSpot lists "
               f"{fixtures.hubspot_list_id} and {fixtures.reconciled_hubspot_list_id}, Meta audiences "
               f"{fixtures.meta_audience_id} and {EXAMPLE_META_AUDIENCE_ID}; "
               f"`segprovider sandbox lists --db {args.db}` shows them all")
    return [summary]


def _lists(state: SandboxState, args: argparse.Namespace) -> list[str]:
    rows = [("VENDOR", "KIND", "ID", "NAME", "IN", "MEMBERS")]
    for item in all_lists(state, args.vendor):
        counts = member_counts(state, item)
        total = str(sum(counts.values()))
        if item.kind == AUDIENCE and counts:
            total += " (" + ", ".join(f"{status} {n}" for status, n in sorted(counts.items())) + ")"
        rows.append((item.vendor, item.kind, item.id, item.name, item.parent, total))
    if len(rows) == 1:
        return ["no lists: run `segprovider sandbox seed` or sync to the sandbox first"]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]


def _members(state: SandboxState, args: argparse.Namespace) -> list[str]:
    item = find_list(state, args.vendor, args.list)
    return [f"{member.key}\t{member.status}" if member.status else member.key for member in list_members(state, item)]


def _add(state: SandboxState, args: argparse.Namespace) -> list[str]:
    return change_members(state, args.vendor, args.list, args.emails, True)


def _remove(state: SandboxState, args: argparse.Namespace) -> list[str]:
    return change_members(state, args.vendor, args.list, args.emails, False)


def _set_attribute(state: SandboxState, args: argparse.Namespace) -> list[str]:
    return [set_attribute(state, args.vendor, args.email, args.field, args.value, args.audience)]


def _set_status(state: SandboxState, args: argparse.Namespace) -> list[str]:
    return [set_status(state, args.list, args.email, args.status)]

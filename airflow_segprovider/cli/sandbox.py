"""``segprovider sandbox``: run the local destination sandbox (fake vendor APIs) in a process of its own.

The sandbox is a development tool shipped beside the provider as the top-level package
``segprovider_sandbox``; the provider never imports it. This command and ``segprovider demo`` start it
as a subprocess (``python -m segprovider_sandbox``), so its options are declared here too: ``--help``
lists them and a wrong one is refused before anything starts.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from airflow_segprovider.cli.common import EXIT_USAGE
from airflow_segprovider.core.errors import TerminalError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from airflow_segprovider.cli.common import AddCommand

#: The module that runs the sandbox server in the foreground.
SANDBOX_MODULE = "segprovider_sandbox"


@dataclass(frozen=True)
class SandboxProcess:
    """A sandbox started by :func:`sandbox_process`: its process and base URL."""

    process: subprocess.Popen
    url: str


def sandbox_arguments(*, host: str | None = None, port: int | None = None, db: str | Path | None = None,
                      config: str | Path | None = None, seed: bool = False) -> list[str]:
    """The sandbox's own command-line options for the given settings (None: the sandbox's default)."""
    argv: list[str] = []
    for flag, value in (("--host", host), ("--port", port), ("--db", db), ("--config", config)):
        if value is not None:
            argv += [flag, str(value)]
    return argv + (["--seed"] if seed else [])


@contextlib.contextmanager
def sandbox_process(db: str | Path, *, config: str | Path | None = None, seed: bool = False,
                    timeout: float = 60.0) -> Iterator[SandboxProcess]:
    """Start the sandbox on a free loopback port with its state in ``db``; stop it on exit.

    :param config: the sandbox's JSON config file (credentials, faults).
    :param seed: create the example project's lists, segments and audiences.
    :param timeout: seconds to wait for the sandbox to start.
    :raises SegproviderError: when the sandbox does not start, with what it printed.
    """
    command = [sys.executable, "-m", SANDBOX_MODULE,
               *sandbox_arguments(port=0, db=db, config=config, seed=seed)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        printed: list[str] = []
        url = None
        for line in process.stdout:  # the URL comes first; with --seed the seeding line is last
            printed.append(line.rstrip())
            match = re.search(r" on (http://\S+)", line)
            if match and url is None:
                url = match.group(1)
            if url and (not seed or _is_seeded_line(line)):
                break
        if url is None or (seed and not any(_is_seeded_line(line) for line in printed)):
            process.kill()
            raise TerminalError("the destination sandbox did not start: " + " | ".join(printed[-5:]))
        # keep reading what it prints after start-up, or a full pipe would stall its request handling
        threading.Thread(target=_drain, args=(process.stdout,), name="sandbox-output", daemon=True).start()
        yield SandboxProcess(process, url)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _is_seeded_line(line: str) -> bool:
    # the line's start, not "seeded" anywhere: the first line shows the --db path, which may contain the word
    return line.lstrip().startswith("seeded:")


def _drain(stream: IO[str]) -> None:
    with contextlib.suppress(ValueError, OSError):
        for _ in stream:
            pass


#: The module that seeds and edits a sandbox's state file (``segprovider sandbox OPERATION``).
ADMIN_MODULE = "segprovider_sandbox.admin"
LIST_VENDORS = ("mailchimp", "hubspot", "meta")
MAILCHIMP_STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
DB_HELP = "the sandbox's SQLite state file, also while a sandbox serves it (default: segprovider-sandbox.db)"


@dataclass(frozen=True)
class Operand:
    """One argument of an editing operation, declared once: the parser is built from it and so is the argument
    list forwarded to ``python -m segprovider_sandbox.admin``.

    :param name: the positional's name (``list``) or the option's flag (``--vendor``).
    :param help: its help.
    :param metavar: how ``--help`` shows it.
    :param dest: where the parsed value goes (default: from the name).
    """

    name: str
    help: str
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    nargs: str | None = None
    dest: str | None = None

    @property
    def is_option(self) -> bool:
        return self.name.startswith("--")

    @property
    def attribute(self) -> str:
        return self.dest or self.name.lstrip("-").replace("-", "_")


def _vendor(*choices: str) -> Operand:
    return Operand("vendor", " | ".join(choices), "VENDOR", choices)


_LIST = Operand("list", "id or name of a list, static segment or audience", "LIST")
_EMAIL = Operand("email", "email address", "EMAIL")
_EMAILS = Operand("emails", "email addresses", "EMAIL", nargs="+")
_VENDOR_OPTION = Operand("--vendor", "only this vendor's lists (needed when a name is not unique)", None, LIST_VENDORS)

#: The editing operations: name -> (help, operands); each also takes ``--db FILE``.
OPERATIONS: dict[str, tuple[str, tuple[Operand, ...]]] = {
    "seed": (("Create every list, segment, audience, merge field and contact property the example project uses "
              "(idempotent)."), ()),
    "lists": ("Print every list, segment and audience with its member count.", (_VENDOR_OPTION,)),
    "members": ("Print the members of a list (Meta: their SHA-256 hashes).", (_LIST, _VENDOR_OPTION)),
    "add-member": (("Add people to a list, static segment or audience, as a person would in the vendor's UI "
                    "(Mailchimp members are created subscribed)."), (_vendor(*LIST_VENDORS), _LIST, _EMAILS)),
    "remove-member": (("Remove people from a list, static segment or audience (from a Mailchimp audience: "
                       "with their tags)."), (_vendor(*LIST_VENDORS), _LIST, _EMAILS)),
    "set-attribute": ("Set a Mailchimp merge field or a HubSpot contact property of one person ('' clears it).",
                      (_vendor("mailchimp", "hubspot"), _EMAIL,
                       Operand("field", "merge tag (Mailchimp) or property name (HubSpot)", "FIELD"),
                       Operand("value", "the value", "VALUE"),
                       Operand("--list", "Mailchimp: the member's audience, when several have it", "AUDIENCE",
                               dest="audience"))),
    "set-status": ("Set a Mailchimp member's status, as an unsubscribe link, a bounce or a confirmation would.",
                   (_vendor("mailchimp"), Operand("list", "the audience's id or name", "LIST"), _EMAIL,
                    Operand("status", " | ".join(MAILCHIMP_STATUSES), "STATUS", MAILCHIMP_STATUSES))),
}


def admin_arguments(args: argparse.Namespace) -> list[str]:
    """The arguments of ``python -m segprovider_sandbox.admin`` for a parsed ``segprovider sandbox OPERATION``."""
    _, operands = OPERATIONS[args.operation]
    argv = [args.operation]
    for operand in operands:
        value = getattr(args, operand.attribute)
        if operand.is_option:
            argv += [] if value is None else [operand.name, str(value)]
        else:
            argv += [str(item) for item in value] if isinstance(value, list) else [str(value)]
    if getattr(args, "db", None) is not None:
        argv += ["--db", str(args.db)]
    return argv


def cmd_sandbox(args: argparse.Namespace) -> int:
    if args.operation is not None:
        serving = [flag for flag, value in (("--host", args.host), ("--port", args.port), ("--config", args.config),
                                            ("--seed", args.seed)) if value not in (None, False)]
        if serving:
            print(f"segprovider sandbox {args.operation}: {', '.join(serving)}: serving options, not for an "
                  "operation (serve with `segprovider sandbox` alone)", file=sys.stderr)
            return EXIT_USAGE
        # -X utf8: member lists print addresses as stored, whatever the terminal's locale
        return subprocess.call([sys.executable, "-X", "utf8", "-m", ADMIN_MODULE, *admin_arguments(args)])
    argv: Sequence[str] = sandbox_arguments(host=args.host, port=args.port, db=args.db, config=args.config,
                                            seed=args.seed)
    try:
        return subprocess.call([sys.executable, "-m", SANDBOX_MODULE, *argv])
    except KeyboardInterrupt:  # the child got the same Ctrl-C and stops by itself
        return 130


def register(command: AddCommand) -> None:
    """Add this group's command to the ``segprovider`` parser: serving, or one operation on the sandbox's state."""
    p = command("sandbox", cmd_sandbox, "Run the local destination sandbox (Mailchimp, HubSpot, Meta, webhook) "
                "in the foreground, on loopback, until interrupted; or, with an OPERATION, seed and edit its state.")
    p.add_argument("--host", help="interface to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port, 0 for any (default: 8765)")
    p.add_argument("--db", help="SQLite state file (default: segprovider-sandbox.db)")
    p.add_argument("--config", help="JSON config file: credentials, faults, seed")
    p.add_argument("--seed", action="store_true",
                   help="create every list, segment and audience the example project syncs to")
    operations = p.add_subparsers(dest="operation", metavar="OPERATION",
                                  help="with no OPERATION: serve; otherwise one of these (see OPERATION --help)")
    for name, (help_text, operands) in OPERATIONS.items():
        op = operations.add_parser(name, help=help_text, description=help_text)
        for operand in operands:
            kwargs: dict = {"help": operand.help, "metavar": operand.metavar, "choices": operand.choices}
            if operand.nargs:
                kwargs["nargs"] = operand.nargs
            if operand.is_option:
                kwargs["dest"] = operand.attribute
            op.add_argument(operand.name, **kwargs)
        # SUPPRESS: an operation's --db, when left out, keeps the one given before the operation's name
        op.add_argument("--db", default=argparse.SUPPRESS, help=DB_HELP)

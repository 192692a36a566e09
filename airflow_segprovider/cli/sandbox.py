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
            if url and (not seed or "seeded" in line):
                break
        if url is None or (seed and not any("seeded" in line for line in printed)):
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


def _drain(stream: IO[str]) -> None:
    with contextlib.suppress(ValueError, OSError):
        for _ in stream:
            pass


def cmd_sandbox(args: argparse.Namespace) -> int:
    argv: Sequence[str] = sandbox_arguments(host=args.host, port=args.port, db=args.db, config=args.config,
                                            seed=args.seed)
    try:
        return subprocess.call([sys.executable, "-m", SANDBOX_MODULE, *argv])
    except KeyboardInterrupt:  # the child got the same Ctrl-C and stops by itself
        return 130


def register(command: AddCommand) -> None:
    """Add this group's command to the ``segprovider`` parser."""
    p = command("sandbox", cmd_sandbox, "Run the local destination sandbox (Mailchimp, HubSpot, Meta, webhook) "
                "in the foreground, on loopback, until interrupted.")
    p.add_argument("--host", help="interface to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port, 0 for any (default: 8765)")
    p.add_argument("--db", help="SQLite state file (default: segprovider-sandbox.db)")
    p.add_argument("--config", help="JSON config file: credentials, faults, seed")
    p.add_argument("--seed", action="store_true",
                   help="create every list, segment and audience the example project syncs to")

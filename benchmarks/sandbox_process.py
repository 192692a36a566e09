"""The destination sandbox in a process of its own, for the benchmarks that send to it.

A separate process keeps the server off the measured client's interpreter (and its GIL), as a
real vendor API would be.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def sandbox_process(db: Path, *options: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """Start ``python -m segprovider_sandbox`` on a free port with state in ``db``.

    :param options: more command-line options (``--config FILE``, ``--seed``).
    :returns: the process and the sandbox's base URL; the process is stopped on exit.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "segprovider_sandbox", "--port", "0", "--db", str(db), *options],
        stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"on (http://\S+)", first)
        if match is None:
            raise SystemExit(f"the sandbox did not start: {first!r}")
        if "--seed" in options:
            for line in process.stdout:  # the seeding line is the last one printed at start-up
                if "seeded" in line:
                    break
        yield process, match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)

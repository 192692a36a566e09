"""``python -m segprovider_sandbox.admin``: one seeding or editing operation on a sandbox state file."""

from __future__ import annotations

import sys

from segprovider_sandbox.admin.cli import main

raise SystemExit(main(sys.argv[1:]))

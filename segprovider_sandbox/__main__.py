"""``python -m segprovider_sandbox``: run the sandbox in the foreground."""

from __future__ import annotations

import sys

from segprovider_sandbox.server import main

raise SystemExit(main(sys.argv[1:]))

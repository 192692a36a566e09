"""``python -m airflow_segprovider.sandbox``: run the sandbox in the foreground."""

from __future__ import annotations

import sys

from airflow_segprovider.sandbox.server import main

raise SystemExit(main(sys.argv[1:]))

"""Make the shared test helpers importable: ``tests/`` (reference evaluator) and ``tests/engine``
(the random project and data strategies the differential tests reuse)."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parents[1]
for _folder in (str(_TESTS), str(_TESTS / "engine")):
    if _folder not in sys.path:
        sys.path.insert(0, _folder)

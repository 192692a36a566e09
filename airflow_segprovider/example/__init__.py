"""The example segments project and its synthetic data, shipped inside the package.

One copy of the project lives here, so ``segprovider demo`` works from an installed wheel and the
repository's ``dags/`` files build their DAGs from the same files the tests read.
"""

from __future__ import annotations

from pathlib import Path

#: The example project's folder (read only: copy it before landing files or editing it).
EXAMPLE_PROJECT = Path(__file__).resolve().parent / "segments_project"

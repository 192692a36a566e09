"""The gates' Great Expectations suites: where they are found, and their parameters (thresholds).

One suite per gate, ``<gate>.json``, in ``$SEGPROVIDER_EXPECTATIONS_DIR``, the project's
``expectations/`` folder, or the suites shipped with the package. A suite declares its
runtime parameters with their defaults in ``meta.parameters``; a run may override them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_segprovider.gates.queries import GateConfigError, check_gate

SUITE_DIR_ENV = "SEGPROVIDER_EXPECTATIONS_DIR"


def default_suite_dir() -> Path:
    """``$SEGPROVIDER_EXPECTATIONS_DIR``, else the suites shipped with the package or beside it."""
    if os.environ.get(SUITE_DIR_ENV):
        return Path(os.environ[SUITE_DIR_ENV])
    here = Path(__file__).resolve()
    for candidate in (here.parent / "expectations", here.parents[2] / "expectations"):
        if candidate.is_dir():
            return candidate
    return Path("expectations")


def load_suite(gate: str, suite_dir: str | Path | None = None) -> dict[str, Any]:
    """The suite JSON of ``gate`` as a dict.

    :raises GateConfigError: the file is missing or not a suite.
    """
    check_gate(gate)
    path = Path(suite_dir if suite_dir is not None else default_suite_dir()) / f"{gate}.json"
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GateConfigError(f"no expectation suite for gate {gate!r} at {path}; set {SUITE_DIR_ENV} or pass "
                              "suite_dir to the folder holding <gate>.json") from None
    except json.JSONDecodeError as exc:
        raise GateConfigError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    if not isinstance(suite, dict) or not isinstance(suite.get("expectations"), list):
        raise GateConfigError(f"{path}: not an expectation suite (needs a list of 'expectations')")
    suite.setdefault("name", gate)
    return suite


def suite_parameters(suite: Mapping[str, Any]) -> dict[str, Any]:
    """The suite's runtime parameters with their defaults (``meta.parameters``)."""
    declared = (suite.get("meta") or {}).get("parameters") or {}
    return {name: (spec or {}).get("default") for name, spec in declared.items()}


def resolve_parameters(gate: str, suite: Mapping[str, Any], parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with ``parameters``.

    :raises GateConfigError: a parameter the suite does not declare (a typo would silently keep the default).
    """
    values = suite_parameters(suite)
    unknown = sorted(set(parameters or {}) - set(values))
    if unknown:
        raise GateConfigError(f"gate {gate!r} has no parameter {', '.join(map(repr, unknown))}; its parameters: "
                              f"{', '.join(sorted(values)) or 'none'}")
    for name, value in (parameters or {}).items():
        values[name] = _threshold(gate, name, value)
    return values


def _threshold(gate: str, name: str, value: Any) -> float | int | None:
    """A number (or None); numeric text, as templated Airflow arguments give, is read as a number."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none", "null"):
            return None
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                pass
    raise GateConfigError(f"gate {gate!r}: parameter {name!r} must be a number or null, got {value!r}")

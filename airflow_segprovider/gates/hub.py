"""Great Expectations gates of the hybrid model's attribute hub: ``hub_freshness`` and ``hub_types``.

The frames come from the pure core (:func:`~airflow_segprovider.core.hybrid.freshness.freshness_rows`,
:func:`~airflow_segprovider.core.hybrid.types.type_checks`); the suites are ``expectations/hub_*.json``,
validated like every other gate, so a failure reads the same in logs, XCom and alerts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_segprovider.gates.queries import HUB_GATES, GateConfigError

if TYPE_CHECKING:
    from airflow_segprovider.core.destination import FieldType
    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.warehouses.base import Warehouse
    from airflow_segprovider.gates.results import GateResult


def hub_gate_frame(gate: str, project: Project, warehouse: Warehouse, as_of: dt.datetime,
                   field_types: Mapping[str, Mapping[str, FieldType]] | None = None):
    """The frame ``gate`` validates: one row per attribute and source, or per attribute and pushed field."""
    import pandas as pd

    from airflow_segprovider.core.hybrid.freshness import freshness_rows
    from airflow_segprovider.core.hybrid.types import type_checks

    if gate == "hub_freshness":
        return pd.DataFrame(freshness_rows(project, warehouse, as_of))
    if gate == "hub_types":
        return pd.DataFrame(type_checks(project, warehouse, field_types or {}))
    raise GateConfigError(f"unknown hub gate {gate!r}; hub gates: {', '.join(HUB_GATES)}")


def evaluate_hub_gate(gate: str, project: Project, warehouse: Warehouse, as_of: dt.datetime, *,
                      field_types: Mapping[str, Mapping[str, FieldType]] | None = None,
                      docs_dir: str | Path | None = None, **parameters: Any) -> GateResult:
    """Validate one hub gate; ``max_age_hours`` defaults to the hub's ``max_source_age``."""
    from airflow_segprovider.core.hybrid.hub import require_hub
    from airflow_segprovider.gates.results import GateBatch
    from airflow_segprovider.gates.runner import run_gate_batches

    hub = require_hub(project)
    if gate == "hub_freshness" and "max_age_hours" not in parameters and hub.max_source_age is not None:
        parameters["max_age_hours"] = hub.max_source_age.total_seconds() / 3600
    frame = hub_gate_frame(gate, project, warehouse, as_of, field_types)
    return run_gate_batches(gate, [GateBatch(gate, frame, parameters)], docs_dir=docs_dir, as_of=as_of)

"""Data-quality gates: Great Expectations suites run on small query results before any sync.

Five gates, one suite each in ``expectations/<gate>.json``: ``freshness``, ``types``,
``segment_size``, ``consent`` and ``cross_system_counts``. Each gate's query runs in
the warehouse (:mod:`.queries`); its rows are validated as a pandas DataFrame
(:mod:`.runner`, against the suites of :mod:`.suites`; :mod:`.evaluation` does both for
a project). This package does not import Airflow, and imports Great
Expectations only when a gate runs.
"""

from __future__ import annotations

from airflow_segprovider.core.state.gates import ensure_counts_table
from airflow_segprovider.gates.evaluation import evaluate_gate
from airflow_segprovider.gates.frames import query_frame
from airflow_segprovider.gates.queries import GATES, SYNC_GATES, GateConfigError
from airflow_segprovider.gates.results import FailedExpectation, GateBatch, GateFailed, GateResult
from airflow_segprovider.gates.runner import run_gate, run_gate_batches
from airflow_segprovider.gates.staging import stage_destination_counts
from airflow_segprovider.gates.suites import load_suite

__all__ = [
    "GATES",
    "SYNC_GATES",
    "FailedExpectation",
    "GateBatch",
    "GateConfigError",
    "GateFailed",
    "GateResult",
    "ensure_counts_table",
    "evaluate_gate",
    "load_suite",
    "query_frame",
    "run_gate",
    "run_gate_batches",
    "stage_destination_counts",
]

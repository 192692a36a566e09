"""Drift monitor for every model: centralized syncs and hybrid spoke segments against what the tools report.

Built from the example segments project next to this file. It reads destinations and the warehouse and
changes nothing; past tolerance it fails and ``segprovider_alerts`` is notified.
"""

from __future__ import annotations

from pathlib import Path

from airflow_segprovider.dag_factory_hybrid import build_drift_monitor_dag

PROJECT = Path(__file__).resolve().parent / "segments_project"

dag = build_drift_monitor_dag(PROJECT, dag_id="segments_drift_monitor")

"""Drift monitor for every model: centralized syncs and hybrid spoke segments against what the tools report.

Built from the example segments project shipped in the package (``airflow_segprovider.example``). It reads destinations and the warehouse and
changes nothing; past tolerance it fails and ``segprovider_alerts`` is notified.
"""

from __future__ import annotations

from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.factory.monitor import build_drift_monitor_dag

PROJECT = EXAMPLE_PROJECT

dag = build_drift_monitor_dag(PROJECT, dag_id="segments_drift_monitor")

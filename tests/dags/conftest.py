"""Fixtures for DAG tests; the world they build lives in ``support.dag_world``."""

from __future__ import annotations

from support.dag_world import airflow_db, world  # noqa: F401  (pytest fixtures)

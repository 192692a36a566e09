"""Fixtures for DAG tests; the world they build lives in ``dag_world``."""

from __future__ import annotations

from dag_world import airflow_db, world  # noqa: F401  (pytest fixtures)

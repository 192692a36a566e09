"""Fixtures for the DAG tests of every model; the worlds they build live in ``support.dag_world`` and
``support.hybrid_world``."""

from __future__ import annotations

import pytest

from support.dag_world import airflow_db, world  # noqa: F401  (pytest fixtures)
from support.hybrid_world import make_world


@pytest.fixture
def hybrid_world(tmp_path, airflow_db, monkeypatch):  # noqa: F811
    built, stop = make_world(tmp_path, monkeypatch)
    yield built
    stop()

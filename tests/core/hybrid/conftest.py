"""Fixtures for the hybrid-model tests; the world they build lives in ``support.hybrid_world``."""

from __future__ import annotations

import pytest
from support.hybrid_world import airflow_db, make_world  # noqa: F401  (pytest fixture)


@pytest.fixture
def hybrid_world(tmp_path, airflow_db, monkeypatch):  # noqa: F811
    world, stop = make_world(tmp_path, monkeypatch)
    yield world
    stop()

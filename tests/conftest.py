"""Shared fixtures: the example segments project, and a disposable copy of it to break."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

EXAMPLE_PROJECT = Path(__file__).resolve().parents[1] / "dags" / "segments_project"


def pytest_configure(config: pytest.Config) -> None:
    """Give every test process its own Airflow home, before anything imports Airflow.

    Tests that import Airflow in-process (hooks, operators, ``dag.test()``) then never read or
    write the developer's ``~/airflow``; set ``SEGPROVIDER_TEST_AIRFLOW_HOME`` to reuse one.
    """
    home = os.environ.get("SEGPROVIDER_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="segprovider-airflow-")
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")


@pytest.fixture
def example_project() -> Path:
    """The example project shipped in ``dags/segments_project`` (read only)."""
    return EXAMPLE_PROJECT


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A fresh copy of the example project in ``tmp_path``, for a test to edit."""
    root = tmp_path / "project"
    shutil.copytree(EXAMPLE_PROJECT, root, ignore=shutil.ignore_patterns("landing"))
    return root

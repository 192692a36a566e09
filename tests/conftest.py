"""Shared fixtures: the example segments project, and a disposable copy of it to break."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from airflow_segprovider.example import EXAMPLE_PROJECT


def _isolate_airflow() -> None:
    """Give every test process its own Airflow home, before anything imports Airflow.

    Runs when this file is imported: pytest imports the conftest files of the given paths (parents
    first) *before* calling any ``pytest_configure``, and some of them import Airflow, whose
    configuration is fixed at import. Tests that use Airflow in-process (hooks, operators,
    ``dag.test()``) then never read or write ``~/airflow``; ``SEGPROVIDER_TEST_AIRFLOW_HOME`` reuses one.
    """
    home = os.environ.get("SEGPROVIDER_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="segprovider-airflow-")
    os.environ["AIRFLOW_HOME"] = home
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    # Airflow resolves its DAG bundle folder once per process: DAG tests write their DAG files here.
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(home) / "dags")
    (Path(home) / "dags").mkdir(exist_ok=True)


_isolate_airflow()


@pytest.fixture
def example_project() -> Path:
    """The example project shipped in ``airflow_segprovider/example/segments_project`` (read only)."""
    return EXAMPLE_PROJECT


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A fresh copy of the example project in ``tmp_path``, for a test to edit."""
    root = tmp_path / "project"
    shutil.copytree(EXAMPLE_PROJECT, root, ignore=shutil.ignore_patterns("landing"))
    return root

"""Shared fixtures: the example segments project, and a disposable copy of it to break."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

EXAMPLE_PROJECT = Path(__file__).resolve().parents[1] / "dags" / "segments_project"


@pytest.fixture
def example_project() -> Path:
    """The example project shipped in ``dags/segments_project`` (read only)."""
    return EXAMPLE_PROJECT


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A fresh copy of the example project in ``tmp_path``, for a test to edit."""
    root = tmp_path / "project"
    shutil.copytree(EXAMPLE_PROJECT, root)
    return root

"""Fixtures for the gate tests: a DuckDB warehouse with generated data and two evaluated snapshots.

The data is generated and evaluated once per session; each test gets its own copy of the
database file, so a test can break the data without affecting the others.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.example.generate import generate

PROJECT_DIR = EXAMPLE_PROJECT
DAY_1 = dt.datetime(2026, 11, 23)
DAY_2 = dt.datetime(2026, 11, 24)  # the generated data's newest timestamps are just before this


@pytest.fixture(scope="session")
def project():
    return load_project(PROJECT_DIR)


@pytest.fixture(scope="session")
def evaluated_db(tmp_path_factory, project) -> Path:
    path = tmp_path_factory.mktemp("gates") / "warehouse.duckdb"
    warehouse = DuckDBWarehouse(path)
    generate(warehouse, 2000)
    evaluate(project, warehouse, DAY_1, run_id="day_1")
    evaluate(project, warehouse, DAY_2, run_id="day_2")
    warehouse.execute("CHECKPOINT")
    warehouse.close()
    return path


@pytest.fixture
def warehouse(tmp_path, evaluated_db):
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(evaluated_db, copy)
    warehouse = DuckDBWarehouse(copy)
    yield warehouse
    warehouse.close()

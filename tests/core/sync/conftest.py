"""Fixtures for sync-engine tests: a DuckDB warehouse with evaluated snapshots, and the sandbox on loopback."""

from __future__ import annotations

import pytest
from support.sync_constants import DAY_1, DAY_2, FAST_RETRIES, PROJECT_DIR

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.example.generate import generate
from segprovider_sandbox import (
    DEFAULT_HUBSPOT_TOKEN,
    DEFAULT_MAILCHIMP_API_KEY,
    DEFAULT_META_ACCESS_TOKEN,
    serve,
)


@pytest.fixture(scope="session")
def project():
    return load_project(PROJECT_DIR)


@pytest.fixture
def warehouse(tmp_path, project):
    warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    generate(warehouse, 3000, seed=7)
    evaluate(project, warehouse, DAY_1, run_id="day_1")
    evaluate(project, warehouse, DAY_2, run_id="day_2")
    yield warehouse
    warehouse.close()


@pytest.fixture
def sandbox(tmp_path):
    with serve(db_path=tmp_path / "sandbox.db") as running:
        fixtures = running.state.seed_demo_fixtures()
        running.state.seed_meta_audience("23850000000000002", fixtures.meta_ad_account_id, "high_intent")
        running.fixtures = fixtures
        yield running


@pytest.fixture
def connections(sandbox):
    """The Airflow connections of the example project's destinations, pointed at the sandbox."""
    return {
        "mailchimp_newsletter": {"host": f"{sandbox.url}/3.0", "password": DEFAULT_MAILCHIMP_API_KEY,
                                 "extra": FAST_RETRIES},
        "hubspot_crm": {"host": sandbox.url, "password": DEFAULT_HUBSPOT_TOKEN, "extra": FAST_RETRIES},
        "meta_ads": {"host": sandbox.url, "password": DEFAULT_META_ACCESS_TOKEN, "extra": FAST_RETRIES},
    }

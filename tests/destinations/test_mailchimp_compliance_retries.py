"""A final Mailchimp refusal is recorded once and exhausted at once: the engine's part (issue 16, item 3).

The connector marks compliance and forgotten-contact refusals ``retryable`` false
(:class:`~airflow_segprovider.destinations.mailchimp.FinalRejection`). The sync engine's rejected-records
table counts attempts per key and stops sending a key once ``attempts >= max_attempts``, or at once when
its refusal was final (column ``final``).
"""

from __future__ import annotations

import pytest

from airflow_segprovider.core.destination import RejectedRecord
from airflow_segprovider.core.project.spec import Sync
from airflow_segprovider.core.state.sync import ensure_tables
from airflow_segprovider.core.sync.plan import plan_queries
from airflow_segprovider.core.sync.record import record_rejections, rejected_records
from airflow_segprovider.destinations.mailchimp import COMPLIANCE_STATE, FinalRejection

MAX_ATTEMPTS = 3


@pytest.fixture
def warehouse(tmp_path):
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

    wh = DuckDBWarehouse(str(tmp_path / "warehouse.duckdb"))
    ensure_tables(wh)
    yield wh
    wh.close()


def exhausted_after_one_run(warehouse) -> set[str]:
    from airflow_segprovider.core.project.loader import load_project
    from airflow_segprovider.example import EXAMPLE_PROJECT

    sync = Sync(segment="vip", destination="mailchimp_newsletter", mode="mirror")
    destination = load_project(EXAMPLE_PROJECT).destinations["mailchimp_newsletter"]
    record_rejections(warehouse, sync.id, "add", [
        FinalRejection("bounced", COMPLIANCE_STATE, "bounced@example.com is in a compliance state ..."),
        RejectedRecord("typo", "ERROR_GENERIC", "looks fake or invalid"),
    ], "run-1")
    assert {row[0]: row[2] for row in rejected_records(warehouse, sync.id)} == {
        "bounced": COMPLIANCE_STATE, "typo": "ERROR_GENERIC"}  # recorded with its own code
    queries = plan_queries(sync, destination, "SELECT 1", MAX_ATTEMPTS, warehouse.dialect)
    return {row[0] for row in warehouse.query(queries["exhausted"])}


def test_an_ordinary_refusal_is_retried_on_later_runs(warehouse):
    assert "typo" not in exhausted_after_one_run(warehouse)


def test_a_final_refusal_is_exhausted_after_its_first_run(warehouse):
    assert "bounced" in exhausted_after_one_run(warehouse)

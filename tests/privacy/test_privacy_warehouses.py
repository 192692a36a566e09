"""Suppression and erasure of the project tables on DuckDB and PostgreSQL (the same statements, rendered)."""

from __future__ import annotations

import pytest

from airflow_segprovider.core.privacy import add_suppression, forget, list_suppressions, remove_suppression
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.state import sync as sync_state
from airflow_segprovider.core.state.privacy import ERASURES, SUPPRESSIONS, TOMBSTONES, salted_hash
from airflow_segprovider.example import EXAMPLE_PROJECT
from support.warehouse_matrix import open_warehouse

pytestmark = pytest.mark.integration

SALT = "warehouse-matrix-salt-0123456789"


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_forget_deletes_one_customer_from_the_state_and_leaves_a_tombstone(kind):
    project = load_project(EXAMPLE_PROJECT)
    with open_warehouse(kind) as warehouse:
        sync_state.ensure_tables(warehouse)
        for key in ("7", "8"):
            warehouse.execute(f"INSERT INTO {sync_state.STATE} VALUES ('vip__mailchimp_newsletter', '{key}', NULL, "
                              f"'h', NULL, TRUE, 'segprovider', TIMESTAMP '2026-11-24 00:00:00', 'r1')")
            warehouse.execute(f"INSERT INTO {sync_state.LOG} VALUES ('vip__mailchimp_newsletter', 'r1', '{key}', "
                              "'add', 'h', 'accepted', NULL, NULL, TIMESTAMP '2026-11-24 00:00:00')")
        add_suppression(warehouse, customer_key="8", reason="request", added_by="test")

        [result] = forget(project, warehouse, ["7"], clients=lambda sync: pytest.fail("nothing to send"),
                          salt=SALT, requested_by="test")

        assert result.status == "erased" and result.destinations == []
        # the pending block (a suppression row) is replaced by the tombstone in the same transaction
        assert result.tables == {sync_state.STATE: 1, sync_state.LOG: 1, SUPPRESSIONS: 1}
        assert warehouse.query(f"SELECT customer_key FROM {sync_state.STATE}") == [("8",)]
        assert warehouse.query(f"SELECT customer_key FROM {sync_state.LOG}") == [("8",)]
        assert warehouse.query(f"SELECT key_hash FROM {TOMBSTONES}") == [(salted_hash(SALT, "7"),)]
        assert warehouse.query(f"SELECT target, status FROM {ERASURES}") == [("project_tables", "erased")]
        assert [s.customer_key for s in list_suppressions(warehouse)] == ["8"]
        assert remove_suppression(warehouse, customer_key="8") == 1

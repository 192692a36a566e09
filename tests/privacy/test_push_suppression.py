"""The hybrid model's attribute push honours the suppression list: a suppressed customer is never pushed, and
one pushed before is not updated again (the push itself never removes anyone from a spoke; a suppression used to
fail it there); forgetting a pushed customer deletes them from the spoke and the hub. DuckDB hub, Mailchimp sandbox
over loopback HTTP."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.example import EXAMPLE_PROJECT

pytestmark = [pytest.mark.integration]

LIST_ID = "a1b2c3d4e5"
AS_OF = dt.datetime(2026, 11, 24)


def test_a_push_never_sends_a_suppressed_customer(tmp_path) -> None:
    from airflow_segprovider.core.hybrid.build import HubBuilder
    from airflow_segprovider.core.hybrid.push import AttributePushEngine, push_sync
    from airflow_segprovider.core.privacy import add_suppression, forget
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.destinations.connection import build_client
    from airflow_segprovider.destinations.spokes import PUSH_CONFIG, PushClient, field_types, push_overrides
    from airflow_segprovider.ingest import ledger
    from segprovider_sandbox import DEFAULT_MAILCHIMP_API_KEY, serve

    project = load_project(EXAMPLE_PROJECT)
    wh = DuckDBWarehouse(str(tmp_path / "warehouse.duckdb"))
    wh.execute("CREATE TABLE customers (customer_id BIGINT PRIMARY KEY, email VARCHAR, first_name VARCHAR, "
               "country VARCHAR, lifetime_value DOUBLE)")
    wh.execute("INSERT INTO customers VALUES (1, 'ann@example.com', 'Ann', 'DE', 2500.5), "
               "(2, 'bob@example.com', 'Bob', 'FR', 120), (3, 'cy@example.com', 'Cy', 'DE', 3000)")
    wh.execute("CREATE TABLE events (customer_id BIGINT, occurred_at TIMESTAMP, event_type VARCHAR)")
    wh.execute("CREATE TABLE consents (customer_id BIGINT, channel VARCHAR, opted_in BOOLEAN, updated_at TIMESTAMP)")
    wh.execute("INSERT INTO consents VALUES (1, 'email', TRUE, '2026-01-01'), (2, 'email', TRUE, '2026-01-01'), "
               "(3, 'email', TRUE, '2026-01-01')")
    ledger.ensure_tables(wh)
    loaded = dt.datetime(2026, 11, 23, 6, 0)
    for source, table in (("crm_customers", "customers"), ("web_events", "events"), ("consent_log", "consents")):
        ledger.record_load(wh, {"source": source, "table_name": table, "load_id": uuid.uuid4().hex, "mode": "upsert",
                                "status": "succeeded", "started_at": loaded, "finished_at": loaded, "rows_read": 3,
                                "rows_loaded": 3, "rows_quarantined": 0, "units": 1, "watermark": None, "error": None})
    add_suppression(wh, customer_key="1", reason="customer request", added_by="test")
    add_suppression(wh, identity=" CY@Example.com", reason="complaint", added_by="test")

    with serve(db_path=tmp_path / "sandbox.db") as sandbox:
        sandbox.state.seed_demo_fixtures()
        connection = {"conn_type": "segprovider_mailchimp", "host": f"{sandbox.url}/3.0",
                      "password": DEFAULT_MAILCHIMP_API_KEY}

        def push(as_of: dt.datetime):
            assert HubBuilder(project, wh).build(as_of).profiles == 3
            sync = push_sync(project.hub.push["mailchimp_newsletter"])
            client = PushClient(build_client(project, sync, connection, PUSH_CONFIG["mailchimp"]))
            try:
                engine = AttributePushEngine(project, wh, "mailchimp_newsletter", field_types(client.client))
                return engine.run_push(client, as_of)
            finally:
                client.close()

        first = push(AS_OF)
        assert (first.status, first.succeeded["add"], first.plan.suppressed) == ("succeeded", 1, 2)
        assert sandbox.state.mailchimp_member(LIST_ID, "ann@example.com") is None
        assert sandbox.state.mailchimp_member(LIST_ID, "cy@example.com") is None
        assert sandbox.state.mailchimp_member(LIST_ID, "bob@example.com")["merge_fields"]["FNAME"] == "Bob"

        # Bob, pushed before, is suppressed and then renamed: the push neither fails nor sends him again
        add_suppression(wh, customer_key="2", reason="customer request", added_by="test")
        wh.execute("UPDATE customers SET first_name = 'Robert' WHERE customer_id = 2")
        wh.execute("UPDATE segprovider_source_loads SET finished_at = TIMESTAMP '2026-11-24 06:00:00'")
        second = push(AS_OF + dt.timedelta(days=1))
        assert second.status == "succeeded", second.error
        assert (second.succeeded["add"], second.succeeded["change"]) == (0, 0)
        assert sandbox.state.mailchimp_member(LIST_ID, "bob@example.com")["merge_fields"]["FNAME"] == "Bob"

        # forgetting Bob reaches the spoke the push sent him to (a push's connector, built with its own settings)
        [result] = forget(project, wh, ["2"], salt="push-test-salt-0123456789", requested_by="test",
                          clients=lambda sync: build_client(project, sync, connection, push_overrides(project, sync)))
        assert (result.status, [o.sync_id for o in result.destinations]) == ("erased", ["hub__mailchimp_newsletter"])
        assert sandbox.state.mailchimp_member(LIST_ID, "bob@example.com") is None
        assert wh.query(f"SELECT COUNT(*) FROM {project.hub.table} WHERE customer_key = '2'")[0][0] == 0
    wh.close()

"""The hybrid model's attribute push never changes anyone's subscription status (issue 16, item 2).

The push path of ``segments_hybrid`` end to end on DuckDB: the hub built from the source tables,
:class:`AttributePushEngine` over a :class:`PushClient` around the Mailchimp connector, the
Mailchimp sandbox on loopback. A contact the audience holds as ``pending`` stays pending (no
double opt-in skipped), one who unsubscribed through the API stays unsubscribed, a new consenting
customer is created with the destination's ``member_status``, and a customer without consent is
never sent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest
import requests

from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.example import EXAMPLE_PROJECT

pytestmark = [pytest.mark.integration]

LIST_ID = "a1b2c3d4e5"
AS_OF = dt.datetime(2026, 11, 24)


def record_load(warehouse, source: str, table: str, at: dt.datetime, rows: int) -> None:
    from airflow_segprovider.ingest import ledger

    ledger.ensure_tables(warehouse)
    ledger.record_load(warehouse, {"source": source, "table_name": table, "load_id": uuid.uuid4().hex,
                                   "mode": "upsert", "status": "succeeded", "started_at": at, "finished_at": at,
                                   "rows_read": rows, "rows_loaded": rows, "rows_quarantined": 0, "units": 1,
                                   "watermark": None, "error": None})


def put_member(url: str, api_key: str, email: str, **body) -> None:
    from airflow_segprovider.destinations.mailchimp import subscriber_hash

    answer = requests.put(f"{url}/3.0/lists/{LIST_ID}/members/{subscriber_hash(email)}",
                          json={"email_address": email, **body}, auth=("any", api_key), timeout=10)
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("member_status", ["subscribed", "pending"])
def test_a_push_keeps_every_existing_status_and_gives_new_contacts_the_consented_one(tmp_path, member_status) -> None:
    from airflow_segprovider.core.hybrid.build import HubBuilder
    from airflow_segprovider.core.hybrid.push import AttributePushEngine, push_sync
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.destinations.connection import build_client
    from airflow_segprovider.destinations.spokes import PUSH_CONFIG, PushClient, field_types
    from segprovider_sandbox import DEFAULT_MAILCHIMP_API_KEY, serve

    project = load_project(EXAMPLE_PROJECT)
    newsletter = project.destinations["mailchimp_newsletter"]
    newsletter = dataclasses.replace(newsletter, config={**newsletter.config, "member_status": member_status})
    project = dataclasses.replace(project, destinations={**project.destinations, "mailchimp_newsletter": newsletter})

    wh = DuckDBWarehouse(str(tmp_path / "warehouse.duckdb"))
    wh.execute("CREATE TABLE customers (customer_id BIGINT PRIMARY KEY, email VARCHAR, first_name VARCHAR, "
               "country VARCHAR, lifetime_value DOUBLE)")
    wh.execute("INSERT INTO customers VALUES (1, 'ann@example.com', 'Ann', 'DE', 2500.5), "
               "(2, 'bob@example.com', 'Bob', 'FR', 120), (3, 'cy@example.com', 'Cy', 'DE', 3000), "
               "(4, 'dee@example.com', 'Dee', 'NL', 10)")
    wh.execute("CREATE TABLE events (customer_id BIGINT, occurred_at TIMESTAMP, event_type VARCHAR)")
    wh.execute("INSERT INTO events VALUES (1, '2026-11-20 09:00', 'purchase')")
    wh.execute("CREATE TABLE consents (customer_id BIGINT, channel VARCHAR, opted_in BOOLEAN, updated_at TIMESTAMP)")
    wh.execute("INSERT INTO consents VALUES (1, 'email', TRUE, '2026-01-01'), (2, 'email', TRUE, '2026-01-01'), "
               "(3, 'email', TRUE, '2026-01-01'), (4, 'email', FALSE, '2026-06-01')")
    loaded = dt.datetime(2026, 11, 23, 6, 0)
    for source, table in (("crm_customers", "customers"), ("web_events", "events"), ("consent_log", "consents")):
        record_load(wh, source, table, loaded, 4)
    assert HubBuilder(project, wh).build(AS_OF).profiles == 4

    with serve(db_path=tmp_path / "sandbox.db") as sandbox:
        sandbox.state.seed_demo_fixtures()
        put_member(sandbox.url, DEFAULT_MAILCHIMP_API_KEY, "ann@example.com", status_if_new="pending")
        put_member(sandbox.url, DEFAULT_MAILCHIMP_API_KEY, "bob@example.com", status_if_new="subscribed")
        put_member(sandbox.url, DEFAULT_MAILCHIMP_API_KEY, "bob@example.com", status="unsubscribed")

        connection = {"conn_type": "segprovider_mailchimp", "host": f"{sandbox.url}/3.0",
                      "password": DEFAULT_MAILCHIMP_API_KEY}
        push = project.hub.push["mailchimp_newsletter"]
        client = PushClient(build_client(project, push_sync(push), connection, PUSH_CONFIG["mailchimp"]))
        try:
            engine = AttributePushEngine(project, wh, "mailchimp_newsletter", field_types(client.client))
            record = engine.run_push(client, AS_OF)
        finally:
            client.close()

        assert record.status == "succeeded", record.error
        assert record.succeeded["add"] == 3 and record.failed["add"] == 0  # Dee withdrew consent: never pushed
        status = {email: sandbox.state.mailchimp_member(LIST_ID, email) for email in
                  ("ann@example.com", "bob@example.com", "cy@example.com", "dee@example.com")}
        assert status["ann@example.com"]["status"] == "pending"
        assert status["bob@example.com"]["status"] == "unsubscribed"
        assert status["cy@example.com"]["status"] == member_status
        assert status["dee@example.com"] is None
        # the push did its job: attributes arrived for everyone, whatever their status
        assert status["ann@example.com"]["merge_fields"]["LTV"] == 2500.5
        assert status["bob@example.com"]["merge_fields"]["FNAME"] == "Bob"
    wh.close()

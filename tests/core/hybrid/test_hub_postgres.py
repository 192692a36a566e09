"""The hub on the real PostgreSQL server: build, per-attribute freshness, typed push of changes only, drift count.

The hub's SQL is written once and rendered for PostgreSQL; the warehouse is the
``PostgresWarehouse`` adapter in a schema of its own (dropped afterwards), the spoke is the
Mailchimp sandbox over loopback HTTP.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from pathlib import Path

import pytest

from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.example import EXAMPLE_PROJECT
from support.postgres import postgres_warehouse

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
LIST_ID = "a1b2c3d4e5"
AS_OF = dt.datetime(2026, 11, 24)


@pytest.fixture
def pg_warehouse():
    with postgres_warehouse() as warehouse:
        yield warehouse


def record_load(warehouse, source: str, table: str, at: dt.datetime, rows: int) -> None:
    from airflow_segprovider.ingest import ledger

    ledger.ensure_tables(warehouse)
    ledger.record_load(warehouse, {"source": source, "table_name": table, "load_id": uuid.uuid4().hex,
                                   "mode": "upsert", "status": "succeeded", "started_at": at, "finished_at": at,
                                   "rows_read": rows, "rows_loaded": rows, "rows_quarantined": 0, "units": 1,
                                   "watermark": None, "error": None})


def test_the_hub_builds_pushes_only_changes_and_counts_like_the_spoke_on_postgres(pg_warehouse, tmp_path) -> None:
    from airflow_segprovider.core.hybrid.build import HubBuilder
    from airflow_segprovider.core.hybrid.errors import WireTypeError
    from airflow_segprovider.core.hybrid.push import AttributePushEngine, push_sync
    from airflow_segprovider.core.hybrid.spokes import spoke_count_sql
    from airflow_segprovider.core.hybrid.types import type_checks
    from airflow_segprovider.destinations.connection import build_client
    from airflow_segprovider.destinations.spoke_segments import deploy_spoke_segment, spoke_segment_count
    from airflow_segprovider.destinations.spokes import PUSH_CONFIG, PushClient, field_types
    from segprovider_sandbox import DEFAULT_MAILCHIMP_API_KEY, serve

    project = load_project(EXAMPLE_PROJECT)
    wh = pg_warehouse
    wh.execute("CREATE TABLE customers (customer_id BIGINT PRIMARY KEY, email VARCHAR, first_name VARCHAR, "
               "country VARCHAR, lifetime_value DOUBLE PRECISION)")
    wh.execute("INSERT INTO customers VALUES (1, 'ann@example.com', 'Ann', 'DE', 2500.5), "
               "(2, 'bob@example.com', 'Bob', 'FR', 120), (3, 'cy@example.com', 'Cy', 'DE', 3000), "
               "(4, 'dee@example.com', 'Dee', 'NL', 10)")
    wh.execute("CREATE TABLE events (customer_id BIGINT, occurred_at TIMESTAMP, event_type VARCHAR)")
    wh.execute("INSERT INTO events VALUES (1, '2026-11-02 10:00', 'purchase'), (1, '2026-11-20 09:00', 'purchase'), "
               "(2, '2026-10-05 12:00', 'purchase'), (3, '2026-11-01 08:00', 'page_view')")
    wh.execute("CREATE TABLE consents (customer_id BIGINT, channel VARCHAR, opted_in BOOLEAN, updated_at TIMESTAMP)")
    wh.execute("INSERT INTO consents VALUES (1, 'email', TRUE, '2026-01-01'), (2, 'email', TRUE, '2026-01-01'), "
               "(3, 'email', TRUE, '2026-01-01'), (4, 'email', TRUE, '2026-01-01'), (4, 'email', FALSE, '2026-06-01')")
    first_load = dt.datetime(2026, 11, 23, 6, 0)
    for source, table in (("crm_customers", "customers"), ("web_events", "events"), ("consent_log", "consents")):
        record_load(wh, source, table, first_load, 4)

    build = HubBuilder(project, wh).build(AS_OF)
    assert build.profiles == 4 and build.changed_profiles == 4
    profiles = {r["customer_key"]: r for r in wh.query_records(
        f'SELECT * FROM "{wh.schema}".segprovider_hub_profiles')}
    assert profiles["1"]["last_purchase_date"] == dt.date(2026, 11, 20)
    assert profiles["3"]["last_purchase_date"] is None and profiles["4"]["email_opt_in"] is False
    assert profiles["1"]["lifetime_value__changed_at"] == first_load

    with serve(db_path=tmp_path / "sandbox.db") as sandbox:
        sandbox.state.seed_demo_fixtures()
        connection = {"conn_type": "segprovider_mailchimp", "host": f"{sandbox.url}/3.0",
                      "password": DEFAULT_MAILCHIMP_API_KEY}
        push = project.hub.push["mailchimp_newsletter"]
        client = PushClient(build_client(project, push_sync(push), connection, PUSH_CONFIG["mailchimp"]))
        types = field_types(client.client)
        assert all(r["compatible"] for r in type_checks(project, wh, {"mailchimp_newsletter": types})), \
            [r for r in type_checks(project, wh, {"mailchimp_newsletter": types}) if not r["compatible"]]
        engine = AttributePushEngine(project, wh, "mailchimp_newsletter", types)
        record = engine.run_push(client, AS_OF)
        assert record.succeeded["add"] == 3  # Dee withdrew consent: never pushed
        ann = sandbox.state.mailchimp_member(LIST_ID, "ann@example.com")["merge_fields"]
        assert ann["LTV"] == 2500.5 and ann["LASTBUY"] == "11/20/2026"  # a number; the field's date format
        assert sandbox.state.mailchimp_member(LIST_ID, "dee@example.com") is None

        spoke = project.spoke_segments["mc_high_value"]
        deploy_spoke_segment(client.client, project.hub, spoke)
        central = wh.query(spoke_count_sql(project, spoke, wh.schema))[0][0]
        assert central == spoke_segment_count(client.client, spoke) == 2

        # the source changes one customer: only that value's freshness moves, only that profile is sent
        wh.execute("UPDATE customers SET lifetime_value = 40 WHERE customer_id = 3")
        second_load = dt.datetime(2026, 11, 24, 6, 0)
        record_load(wh, "crm_customers", "customers", second_load, 1)
        rebuild = HubBuilder(project, wh).build(AS_OF + dt.timedelta(hours=7))
        assert rebuild.changed_profiles == 1 and rebuild.changed_by_attribute["lifetime_value"] == 1
        changed = dict(wh.query(f'SELECT customer_key, lifetime_value__changed_at FROM '
                                f'"{wh.schema}".segprovider_hub_profiles'))
        assert changed["3"] == second_load and changed["1"] == first_load
        before = len(sandbox.state.requests("mailchimp"))
        record = engine.run_push(client, AS_OF + dt.timedelta(hours=7))
        assert (record.succeeded["add"], record.succeeded["change"]) == (0, 1)
        sent = [json.loads(r.body)["members"] for r in sandbox.state.requests("mailchimp")[before:]
                if r.method == "POST" and r.path == f"/3.0/lists/{LIST_ID}"]
        assert [[m["email_address"] for m in batch] for batch in sent] == [["cy@example.com"]]
        assert spoke_segment_count(client.client, spoke) == wh.query(
            spoke_count_sql(project, spoke, wh.schema))[0][0] == 1

        # a value the destination field's type cannot take stops the push, naming destination, customer, field
        wh.execute("UPDATE customers SET lifetime_value = 41 WHERE customer_id = 3")
        HubBuilder(project, wh).build(AS_OF + dt.timedelta(hours=8))
        as_date = {**types, "LTV": dataclasses.replace(types["LTV"], type="date")}
        before = len(sandbox.state.requests("mailchimp"))
        with pytest.raises(WireTypeError, match=r"push to mailchimp_newsletter, customer 3: field 'LTV'.*not a date"):
            AttributePushEngine(project, wh, "mailchimp_newsletter", as_date).run_push(
                client, AS_OF + dt.timedelta(hours=8))
        assert not [r for r in sandbox.state.requests("mailchimp")[before:] if r.method == "POST"]
        client.close()

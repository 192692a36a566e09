"""Batches in flight by default: enough to keep a connector's connections busy.

Mailchimp allows 10 simultaneous connections per API key
(https://mailchimp.com/developer/marketing/docs/fundamentals/#api-limits) and a batch is two calls (the batch
subscribe, then the segment's members_to_add), between which the batch's thread holds no connection: with only
as many batches in flight as connections (or the engine's former default of 4), connections sit idle. A sync
with default options keeps twice the key's connections in batches; the per-key cap still holds the
connections at 10.
"""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.sync import SyncEngine, SyncOptions
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.destinations.connection import build_client
from segprovider_sandbox import DEFAULT_MAILCHIMP_API_KEY, DemoFixtures, SandboxConfig, VendorFaults, serve

pytestmark = pytest.mark.integration

AS_OF = dt.datetime(2026, 11, 24)


def one_segment_project(folder, fixtures: DemoFixtures):
    folder.mkdir()
    project = {
        "project": {"name": "in_flight", "version": 1},
        "model": {"customer": {"table": "customers", "key": "customer_id",
                               "attributes": {"email": {"type": "string"}}},
                  "consent": {"table": "consents", "customer_key": "customer_id", "channel_column": "channel",
                              "opted_in_column": "opted_in", "updated_at_column": "updated_at",
                              "channels": {"email": {"require_opt_in": False}}}},
        "segments": [{"name": "everyone", "rule": {"attribute": "email", "op": "is_not_null"}}],
        "destinations": [{"name": "mailchimp_newsletter", "kind": "mailchimp", "connection_id": "mc",
                          "channel": "email", "identity": "email",
                          "config": {"list_id": fixtures.mailchimp_list_id, "membership": "static_segment"}}],
        "syncs": [{"segment": "everyone", "destination": "mailchimp_newsletter", "mode": "mirror",
                   "target": {"segment_name": fixtures.mailchimp_segment_name}}],
    }
    (folder / "project.yml").write_text(json.dumps(project))  # JSON is YAML
    return load_project(folder)


def test_a_sync_with_default_options_keeps_every_mailchimp_connection_busy(tmp_path):
    fixtures = DemoFixtures()
    project = one_segment_project(tmp_path / "project", fixtures)
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    warehouse.execute("CREATE TABLE customers AS SELECT range AS customer_id, 'user' || range || '@example.com' "
                      "AS email FROM range(10000)")
    warehouse.execute("CREATE TABLE consents (customer_id BIGINT, channel VARCHAR, opted_in BOOLEAN, "
                      "updated_at TIMESTAMP)")
    evaluate(project, warehouse, AS_OF, run_id="in-flight")
    slow = VendorFaults(slow_rate=1.0, slow_seconds=0.2)  # a fixed service time, as the benchmark states one
    with serve(db_path=tmp_path / "sandbox.db", config=SandboxConfig(faults={"mailchimp": slow})) as sandbox:
        sandbox.state.seed_demo_fixtures()
        in_flight, most, lock = [0], [0], threading.Lock()
        process = sandbox.app.process

        def counted(request):
            with lock:
                in_flight[0] += 1
                most[0] = max(most[0], in_flight[0])
            try:
                return process(request)
            finally:
                with lock:
                    in_flight[0] -= 1

        sandbox.app.process = counted
        sync = project.syncs[0]
        client = build_client(project, sync, {"host": f"{sandbox.url}/3.0", "password": DEFAULT_MAILCHIMP_API_KEY})
        try:
            record = SyncEngine(project, warehouse).run(sync, client, AS_OF, options=SyncOptions())
        finally:
            client.close()
            warehouse.close()
    assert record.succeeded["add"] == 10_000
    assert most[0] == 10  # every connection the key allows, and never an 11th

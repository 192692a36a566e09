"""The sync engine's state, rejected-records and run tables on PostgreSQL, Snowflake (fakesnow) and
the SQL the engine writes for BigQuery (executed transpiled to DuckDB; the loads and upserts there
are DuckDB's, not the BigQuery adapter's).

The example project is evaluated in the warehouse, then synced to the destination sandbox over
loopback HTTP: the destination ends up holding exactly the consented members, a second run sends
nothing, the next day sends only the diff, and the state tables in the warehouse say so.
"""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.sql.dialects import render
from airflow_segprovider.core.state.sync import RUNS, STATE
from airflow_segprovider.core.sync import SyncEngine, SyncOptions
from airflow_segprovider.destinations.connection import build_client
from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.example.generate import generate
from segprovider_sandbox import DEFAULT_HUBSPOT_TOKEN, DEFAULT_MAILCHIMP_API_KEY, serve
from support.warehouse_matrix import copy_tables, open_warehouse

pytestmark = pytest.mark.integration

PROJECT_DIR = EXAMPLE_PROJECT
DAY_1 = dt.datetime(2026, 8, 1)  # months apart, so the second day has a real diff
DAY_2 = dt.datetime(2026, 11, 24)
FAST_RETRIES = {"backoff_base": 0.01, "backoff_max": 0.05, "max_attempts": 6}


@pytest.fixture(scope="module")
def project():
    return load_project(PROJECT_DIR)


@pytest.fixture(scope="module")
def source():
    with open_warehouse("duckdb") as duck:
        generate(duck, 500, seed=5)
        yield duck


@pytest.fixture(params=["postgres", "snowflake", "bigquery_sql"])
def warehouse(request, project, source):
    with open_warehouse(request.param) as opened:
        copy_tables(source, opened, ["customers", "events", "orders", "consents"])
        evaluate(project, opened, DAY_1, run_id="day_1")
        evaluate(project, opened, DAY_2, run_id="day_2")
        yield opened


@pytest.fixture
def sandbox(tmp_path):
    with serve(db_path=tmp_path / "sandbox.db") as running:
        running.fixtures = running.state.seed_demo_fixtures()
        yield running


def _connections(sandbox):
    return {
        "mailchimp_newsletter": {"host": f"{sandbox.url}/3.0", "password": DEFAULT_MAILCHIMP_API_KEY,
                                 "extra": FAST_RETRIES},
        "hubspot_crm": {"host": sandbox.url, "password": DEFAULT_HUBSPOT_TOKEN, "extra": FAST_RETRIES},
    }


def _run(project, warehouse, sandbox, segment, destination, as_of, **options):
    sync = next(s for s in project.syncs if s.segment == segment and s.destination == destination)
    client = build_client(project, sync, _connections(sandbox)[destination])
    try:
        return SyncEngine(project, warehouse).run(sync, client, as_of, options=SyncOptions(**options))
    finally:
        client.close()


def _expected_emails(project, warehouse, segment, as_of) -> set[str]:
    """Members with an email whose latest email answer is an opt-in (the example's email policy)."""
    members = {k for (k,) in warehouse.query(render(
        f"SELECT customer_key FROM segprovider_memberships WHERE segment = '{segment}' "
        f"AND as_of = CAST('{as_of.isoformat(sep=' ')}' AS TIMESTAMP)", warehouse.dialect))}
    latest: dict[str, tuple] = {}
    for key, opted_in, updated_at in warehouse.query(render(
            "SELECT CAST(customer_id AS VARCHAR), opted_in, updated_at FROM consents WHERE channel = 'email' "
            f"AND updated_at <= CAST('{as_of.isoformat(sep=' ')}' AS TIMESTAMP)", warehouse.dialect)):
        rank = (updated_at, 0 if opted_in is False else 1)
        if key not in latest or rank[0] > latest[key][0][0] or (rank[0] == latest[key][0][0] and rank[1] == 0):
            latest[key] = (rank, opted_in)
    emails = dict(warehouse.query(render("SELECT CAST(customer_id AS VARCHAR), email FROM customers",
                                         warehouse.dialect)))
    return {emails[k].lower() for k in members if emails.get(k) and latest.get(k, ((None, 0), False))[1]}


def _held(sandbox) -> set[str]:
    return {e.lower() for e in sandbox.state.mailchimp_segment_emails(sandbox.fixtures.mailchimp_list_id,
                                                                     sandbox.fixtures.mailchimp_segment_id)}


def test_sync_state_through_dry_run_two_days_and_a_repeat(project, warehouse, sandbox):
    # a dry run plans but writes neither the destination nor the state
    dry = _run(project, warehouse, sandbox, "vip", "mailchimp_newsletter", DAY_1, dry_run=True)
    assert dry.plan.add > 0 and not _held(sandbox)
    assert warehouse.query(render(f"SELECT COUNT(*) FROM {STATE}", warehouse.dialect))[0][0] == 0

    # day 1 mirrors the segment; the state says what the destination holds
    first = _run(project, warehouse, sandbox, "vip", "mailchimp_newsletter", DAY_1)
    day_1 = _expected_emails(project, warehouse, "vip", DAY_1)
    assert day_1 and _held(sandbox) == day_1
    assert first.status == "succeeded" and first.succeeded["add"] == len(day_1)
    assert warehouse.query(render(f"SELECT COUNT(*) FROM {STATE} WHERE in_destination",
                                  warehouse.dialect))[0][0] == len(day_1)

    # day 2 sends only the diff
    second = _run(project, warehouse, sandbox, "vip", "mailchimp_newsletter", DAY_2)
    day_2 = _expected_emails(project, warehouse, "vip", DAY_2)
    assert _held(sandbox) == day_2 and day_2 != day_1
    assert (second.plan.add, second.plan.remove) == (len(day_2 - day_1), len(day_1 - day_2))
    assert warehouse.query(render(f"SELECT COUNT(*) FROM {STATE} WHERE in_destination",
                                  warehouse.dialect))[0][0] == len(day_2)

    # the same day again sends nothing
    again = _run(project, warehouse, sandbox, "vip", "mailchimp_newsletter", DAY_2)
    assert (again.plan.add, again.plan.change, again.plan.remove) == (0, 0, 0)
    runs = warehouse.query(render(f"SELECT status, succeeded_add, succeeded_remove, dry_run FROM {RUNS}",
                                  warehouse.dialect))
    assert sorted((status, int(added or 0), int(removed or 0), bool(dry)) for status, added, removed, dry in runs) \
        == sorted([("dry_run", 0, 0, True), ("succeeded", len(day_1), 0, False),
                   ("succeeded", len(day_2 - day_1), len(day_1 - day_2), False), ("succeeded", 0, 0, False)])

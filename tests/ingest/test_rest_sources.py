"""REST API sources against a real HTTP server on 127.0.0.1: pagination, retries, watermarks, atomicity."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from airflow_segprovider.ingest import (
    LOADS_TABLE,
    QUARANTINE_TABLE,
    TerminalIngestError,
    TransientIngestError,
    ingest_all,
    ingest_source,
)
from airflow_segprovider.ingest.ledger import current_watermark
from support.rest_customers_api import CUSTOMERS_API, customer


def table(warehouse) -> list[tuple]:
    return warehouse.query("SELECT customer_id, email, ltv FROM customers ORDER BY CAST(customer_id AS INTEGER)")


def test_cursor_pages_with_a_retry_then_an_incremental_run_fetching_only_newer_rows(
        api, make_project, warehouse) -> None:
    project = make_project(CUSTOMERS_API)
    api.customers = [customer(n, f"2026-01-0{n}T00:00:00Z") for n in range(1, 8)]  # 7 rows: pages of 3, 3, 1
    api.fail_once[("/v1/customers", "3")] = 503  # page 2 fails once

    first = ingest_source(project, warehouse, "crm_api", connection=api.connection())

    assert (first.status, first.units, first.rows_read, first.rows_loaded) == ("succeeded", 3, 7, 7)
    assert first.watermark == "2026-01-07T00:00:00Z" and first.previous_watermark is None
    calls = api.requests_to("/v1/customers")
    assert [c.get("cursor") for c in calls] == [None, "3", "3", "6"]  # page 2 asked twice: 503, then 200
    assert all(c["limit"] == "3" and "updated_since" not in c for c in calls)  # the first load takes everything
    assert {h["Authorization"] for p, _, h in api.requests} == {"Bearer s3cret-token"}
    assert table(warehouse)[:2] == [("1", "c1@example.com", 10.0), ("2", "c2@example.com", 20.0)]

    # upstream: customer 2 changed, customer 8 is new; the API serves only rows updated after the watermark
    api.requests.clear()
    api.customers[1] = customer(2, "2026-01-09T00:00:00Z", email="new2@example.com")
    api.customers.append(customer(8, "2026-01-08T00:00:00Z"))

    second = ingest_source(project, warehouse, "crm_api", connection=api.connection())

    assert api.requests_to("/v1/customers") == [{"limit": "3", "updated_since": "2026-01-07T00:00:00Z"}]
    assert (second.rows_read, second.rows_loaded) == (2, 2)
    assert (second.previous_watermark, second.watermark) == ("2026-01-07T00:00:00Z", "2026-01-09T00:00:00Z")
    assert len(table(warehouse)) == 8
    assert table(warehouse)[1] == ("2", "new2@example.com", 20.0)
    assert current_watermark(warehouse, "crm_api") == "2026-01-09T00:00:00Z"


def test_a_server_dying_mid_load_leaves_no_rows_and_the_watermark_unchanged(api, make_project, warehouse) -> None:
    project = make_project(CUSTOMERS_API)
    api.customers = [customer(n, f"2026-01-0{n}T00:00:00Z") for n in range(1, 4)]
    ingest_source(project, warehouse, "crm_api", connection=api.connection())
    before = table(warehouse)
    api.customers += [customer(n, f"2026-02-0{n}T00:00:00Z") for n in range(4, 9)]  # 5 newer rows: 2 pages
    api.customers[0] = customer(1, "2026-02-01T00:00:00Z", email="changed@example.com")
    api.die_on.add(("/v1/customers", "3"))  # page 2 never answers

    with pytest.raises(TransientIngestError, match="failed after 3 attempts") as failure:
        ingest_source(project, warehouse, "crm_api", connection=api.connection())

    assert failure.value.retryable
    assert table(warehouse) == before  # page 1's rows (the changed e-mail among them) were rolled back
    assert current_watermark(warehouse, "crm_api") == "2026-01-03T00:00:00Z"
    assert warehouse.query(f"SELECT status, rows_read, rows_loaded, watermark FROM {LOADS_TABLE} "
                           "ORDER BY started_at") == [("succeeded", 3, 3, "2026-01-03T00:00:00Z"),
                                                      ("failed", 3, 0, "2026-01-03T00:00:00Z")]
    assert "s3cret-token" not in str(failure.value)

    api.die_on.clear()  # the next run fetches the same range again, from the unchanged watermark
    retry = ingest_source(project, warehouse, "crm_api", connection=api.connection())
    assert api.requests_to("/v1/customers")[-1]["updated_since"] == "2026-01-03T00:00:00Z"
    assert (retry.rows_loaded, len(table(warehouse))) == (6, 8)


def test_bad_records_of_a_page_are_quarantined_with_page_and_index(api, make_project, warehouse) -> None:
    project = make_project(CUSTOMERS_API)
    api.customers = [customer(1, "2026-01-01T00:00:00Z"), customer(2, "2026-01-02T00:00:00Z", ltv="abc"),
                     customer(3, "2026-01-03T00:00:00Z"), customer(4, "2026-01-04T00:00:00Z", customer_id=None),
                     customer(5, "2026-01-05T00:00:00Z", signup_at="2026-13-01")]

    result = ingest_source(project, warehouse, "crm_api", connection=api.connection(),
                           now=dt.datetime(2026, 3, 1))

    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (5, 2, 3)
    rows = warehouse.query(f"SELECT page, row_number, record_key, column_name, raw_value, reason, origin "
                           f"FROM {QUARANTINE_TABLE} ORDER BY page, row_number")
    assert [row[:6] for row in rows] == [
        (1, 2, "customer_id=2", "ltv", "abc", "not a number"),
        (2, 1, "customer_id=null", "customer_id", None, "missing required value"),
        (2, 2, "customer_id=5", "signup_at", "2026-13-01", "not a timestamp (ISO 8601)"),
    ]
    assert rows[0][6] == "GET /v1/customers?limit=3"
    assert rows[1][6] == "GET /v1/customers?cursor=3&limit=3"


def test_offset_pagination_appends_idempotently_per_page_and_quarantines_non_objects(
        api, make_project, warehouse) -> None:
    project = make_project("""\
sources:
  - name: shop_api
    table: orders
    kind: rest_api
    url: /v1/orders
    connection_id: shop
    params: {status: all}
    pagination: {style: offset, page_size: 2}
""")
    api.orders = [{"customer_id": 1, "ordered_at": "2026-01-01T10:00:00+01:00", "amount": 5},
                  {"customer_id": 1, "ordered_at": "2026-01-02", "amount": 7.5},
                  ["not", "an", "object"],
                  {"customer_id": 2, "ordered_at": "2026-01-03T00:00:00Z", "amount": None, "note": "x"},
                  {"customer_id": 3, "ordered_at": "2026-01-04T00:00:00Z", "amount": 1}]

    first = ingest_source(project, warehouse, "shop_api", connection=api.connection())
    second = ingest_source(project, warehouse, "shop_api", connection=api.connection())

    assert [c["offset"] for c in api.requests_to("/v1/orders")] == ["0", "2", "4"] * 2  # 3rd page is short
    assert all(c["status"] == "all" for c in api.requests_to("/v1/orders"))
    assert (first.units, first.rows_read, first.rows_loaded, first.rows_quarantined) == (3, 5, 4, 1)
    assert (second.rows_read, second.rows_loaded) == (5, 4)
    assert warehouse.query("SELECT customer_id, ordered_at, amount FROM orders ORDER BY ordered_at") == [
        ("1", dt.datetime(2026, 1, 1, 9, 0), 5.0), ("1", dt.datetime(2026, 1, 2), 7.5),
        ("2", dt.datetime(2026, 1, 3), None), ("3", dt.datetime(2026, 1, 4), 1.0)]
    assert warehouse.query(f"SELECT page, row_number, column_name, raw_value, reason FROM {QUARANTINE_TABLE}") == [
        (2, 1, None, json.dumps(["not", "an", "object"], separators=(",", ":")), "record is not a JSON object")]


def test_link_header_pagination_follows_rel_next(api, make_project, warehouse) -> None:
    project = make_project("""\
sources:
  - {name: events_api, table: events, kind: rest_api, connection_id: web, url: /v1/events?per_page=2,
     records: items, pagination: {style: link_header}}
""")
    api.events = [{"customer_id": n, "occurred_at": f"2026-01-0{n}T00:00:00Z", "event_type": "page_view"}
                  for n in range(1, 6)]

    result = ingest_source(project, warehouse, "events_api", connection=api.connection(auth_type="none"))

    assert [c.get("page") for c in api.requests_to("/v1/events")] == [None, "2", "3"]
    assert (result.units, result.rows_loaded) == (3, 5)
    assert {h.get("Authorization") for _, _, h in api.requests} == {None}
    assert warehouse.query("SELECT count(*) FROM events") == [(5,)]


def test_a_refused_request_is_terminal_and_names_the_page(api, make_project, warehouse) -> None:
    project = make_project(CUSTOMERS_API.replace("/v1/customers", "/v1/nowhere"))

    with pytest.raises(TerminalIngestError, match="page 1") as failure:
        ingest_source(project, warehouse, "crm_api", connection=api.connection())

    assert not failure.value.retryable
    assert warehouse.columns("customers") is None


def test_ingest_all_reads_the_connection_from_the_environment_and_reports_each_source(
        api, make_project, project_dir, warehouse, monkeypatch) -> None:
    project = make_project(CUSTOMERS_API + """\
  - {name: crm_file, table: customers, kind: file, format: csv, path: landing/missing/*.csv}
""")
    monkeypatch.setenv("AIRFLOW_CONN_CRM_API", json.dumps(api.connection()))
    api.customers = [customer(1, "2026-01-01T00:00:00Z")]

    results = ingest_all(project, warehouse)

    assert [(r.source, r.status) for r in results] == [("crm_api", "succeeded"), ("crm_file", "failed")]
    assert "no file matches" in (results[1].error or "")
    assert table(warehouse) == [("1", "c1@example.com", 10.0)]

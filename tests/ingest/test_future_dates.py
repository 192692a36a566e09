"""Rows dated in the future: quarantined with their reason, never moving a watermark past the load
time plus the source's ``future_tolerance``, so one bad timestamp cannot freeze an incremental source.

Shown on DuckDB, the real PostgreSQL server and Snowflake as fakesnow emulates it.
"""

from __future__ import annotations

import datetime as dt

from airflow_segprovider.ingest import QUARANTINE_TABLE, ingest_source
from airflow_segprovider.ingest.ledger import current_watermark
from support.rest_customers_api import CUSTOMERS_API, customer

NOW = dt.datetime(2026, 3, 1, 12, 0)

EVENTS_SOURCE = """\
sources:
  - {name: raw_events, table: events, kind: warehouse_table, from_table: raw_events,
     incremental: {column: occurred_at}}
"""


def insert_events(warehouse, *rows: tuple[int, str, str]) -> None:
    values = ", ".join(f"({customer_id}, TIMESTAMP '{at}', '{kind}')" for customer_id, at, kind in rows)
    warehouse.execute(f"INSERT INTO raw_events (customer_id, occurred_at, event_type) VALUES {values}")


def test_events_dated_far_ahead_are_quarantined_and_do_not_freeze_the_watermark(make_project, target) -> None:
    target.execute("CREATE TABLE raw_events (customer_id BIGINT, occurred_at TIMESTAMP, event_type VARCHAR(20))")
    insert_events(target, (1, "2026-02-27 10:00:00", "page_view"), (2, "2999-01-01 00:00:00", "purchase"),
                  (3, "9999-12-31 00:00:00", "page_view"), (4, "2026-03-02 11:00:00", "page_view"))
    project = make_project(EVENTS_SOURCE)

    first = ingest_source(project, target, "raw_events", now=NOW)

    assert (first.rows_read, first.rows_loaded, first.rows_quarantined) == (4, 2, 2)
    assert first.watermark == "2026-03-02 11:00:00"  # within the load time plus the default tolerance (1d)
    rejected = target.query(f"SELECT record_key, column_name, raw_value, reason FROM {QUARANTINE_TABLE} "
                            "ORDER BY record_key")
    reason = "in the future: later than the load time plus future_tolerance (1d)"
    assert [(key, column, reason_) for key, column, _, reason_ in rejected] == [
        ("customer_id=2", "occurred_at", reason), ("customer_id=3", "occurred_at", reason)]
    assert [raw[:10] for _, _, raw, _ in rejected] == ["2999-01-01", "9999-12-31"]

    insert_events(target, (5, "2026-03-03 09:00:00", "purchase"))
    second = ingest_source(project, target, "raw_events", now=NOW + dt.timedelta(days=2))

    assert (second.rows_loaded, second.watermark) == (1, "2026-03-03 09:00:00")  # the later load reads new rows
    assert sorted(int(row[0]) for row in target.query("SELECT customer_id FROM events")) == [1, 4, 5]


def test_a_watermark_frozen_in_the_future_by_an_earlier_load_is_not_used(make_project, warehouse) -> None:
    warehouse.execute("CREATE TABLE raw_events (customer_id BIGINT, occurred_at TIMESTAMP, event_type VARCHAR)")
    insert_events(warehouse, (1, "2026-02-27 10:00:00", "page_view"))
    project = make_project(EVENTS_SOURCE)
    ingest_source(project, warehouse, "raw_events", now=NOW)
    # a load before the guard existed stored a watermark of 2999
    warehouse.execute("UPDATE segprovider_source_loads SET watermark = '2999-01-01 00:00:00'")
    insert_events(warehouse, (2, "2026-02-28 10:00:00", "page_view"))

    later = ingest_source(project, warehouse, "raw_events", now=NOW + dt.timedelta(hours=1))

    assert (later.previous_watermark, later.rows_loaded, later.watermark) == (None, 2, "2026-02-28 10:00:00")
    assert current_watermark(warehouse, "raw_events") == "2026-02-28 10:00:00"


def test_a_rest_record_updated_far_ahead_is_quarantined_and_the_next_load_reads_newer_rows(
        api, make_project, warehouse) -> None:
    project = make_project(CUSTOMERS_API)
    api.customers = [customer(1, "2026-02-01T00:00:00Z"), customer(2, "2999-01-01T00:00:00Z"),
                     customer(3, "9999-12-31T23:59:59Z")]

    first = ingest_source(project, warehouse, "crm_api", connection=api.connection(), now=NOW)
    api.customers.append(customer(4, "2026-02-02T00:00:00Z"))
    second = ingest_source(project, warehouse, "crm_api", connection=api.connection(),
                           now=NOW + dt.timedelta(hours=1))

    assert (first.rows_loaded, first.rows_quarantined, first.watermark) == (1, 2, "2026-02-01T00:00:00Z")
    assert (second.rows_loaded, second.watermark) == (1, "2026-02-02T00:00:00Z")
    assert sorted(int(row[0]) for row in warehouse.query("SELECT customer_id FROM customers")) == [1, 4]
    assert warehouse.query(f"SELECT DISTINCT column_name, reason FROM {QUARANTINE_TABLE}") == [
        ("updated_at", "in the future: later than the load time plus future_tolerance (1d)")]


def test_a_file_event_dated_9999_is_quarantined_with_a_tolerance_the_source_sets(
        make_project, project_dir, warehouse) -> None:
    project = make_project("sources:\n  - {name: clicks, table: events, kind: file, format: csv, "
                           "path: landing/events.csv, future_tolerance: 12h}\n")
    (project_dir / "landing" / "events.csv").write_text(
        "customer_id,occurred_at,event_type\n1,2026-03-01T23:00:00Z,page_view\n2,2026-03-02T01:00:00Z,page_view\n"
        "3,9999-12-31,purchase\n")

    result = ingest_source(project, warehouse, "clicks", now=NOW)

    assert (result.rows_loaded, result.rows_quarantined) == (1, 2)
    assert warehouse.query(f"SELECT row_number, raw_value, reason FROM {QUARANTINE_TABLE} ORDER BY row_number") == [
        (2, "2026-03-02T01:00:00Z", "in the future: later than the load time plus future_tolerance (12h)"),
        (3, "9999-12-31", "in the future: later than the load time plus future_tolerance (12h)")]

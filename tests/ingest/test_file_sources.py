"""File sources (CSV, Parquet, JSON lines): typing by the data model, quarantine, idempotent reloads, upserts."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_segprovider.ingest import (
    LOADS_TABLE,
    QUARANTINE_TABLE,
    TerminalIngestError,
    TransientIngestError,
    ingest_source,
    last_loads,
)

CUSTOMERS_CSV = """\
customer_id,email,ltv,is_vip,birth_date,signup_at,not_in_model
1,a@example.com,10.5,true,1990-01-02,2026-01-01T10:00:00+02:00,x
2,b@example.com,abc,false,,2026-01-02 00:00:00,x
,c@example.com,3,,,2026-01-03,x
4,d@example.com,,yes,1990-13-01,not a time,x
5, e@example.com ,1e3,0,,,x
"""

CSV_SOURCE = """\
sources:
  - name: crm_customers
    table: customers
    kind: file
    format: csv
    path: landing/customers*.csv
"""

NOW = dt.datetime(2026, 3, 1, 12, 0)


def quarantine(warehouse, source: str) -> list[tuple]:
    return warehouse.query(f"SELECT origin, page, row_number, record_key, column_name, raw_value, reason "
                           f"FROM {QUARANTINE_TABLE} WHERE source = '{source}' ORDER BY row_number, column_name")


def test_csv_rows_are_typed_by_the_model_and_bad_rows_quarantined_with_position_and_reason(
        make_project, project_dir, warehouse) -> None:
    project = make_project(CSV_SOURCE)
    (project_dir / "landing" / "customers.csv").write_text(CUSTOMERS_CSV)

    result = ingest_source(project, warehouse, "crm_customers", now=NOW)

    assert (result.status, result.rows_read, result.rows_loaded, result.rows_quarantined) == ("succeeded", 5, 2, 3)
    assert warehouse.columns("customers") == {
        "customer_id": "VARCHAR", "email": "VARCHAR", "ltv": "DOUBLE", "is_vip": "BOOLEAN",
        "birth_date": "DATE", "signup_at": "TIMESTAMP"}  # model types; columns outside the model are not loaded
    rows = warehouse.query("SELECT * FROM customers ORDER BY customer_id")
    assert rows == [
        ("1", "a@example.com", 10.5, True, dt.date(1990, 1, 2), dt.datetime(2026, 1, 1, 8, 0)),  # offset -> UTC
        ("5", " e@example.com ", 1000.0, False, None, None),  # text kept as written; empty values are missing
    ]
    origin = "landing/customers.csv"
    assert quarantine(warehouse, "crm_customers") == [
        (origin, None, 2, "customer_id=2", "ltv", "abc", "not a number"),
        (origin, None, 3, "customer_id=null", "customer_id", None, "missing required value"),
        (origin, None, 4, "customer_id=4", "birth_date", "1990-13-01", "not a date (YYYY-MM-DD)"),
        (origin, None, 4, "customer_id=4", "signup_at", "not a time", "not a timestamp (ISO 8601)"),
    ]
    ledger = warehouse.query_records(f"SELECT * FROM {LOADS_TABLE}")
    assert len(ledger) == 1
    assert ledger[0] | {"load_id": None} == {
        "source": "crm_customers", "table_name": "customers", "load_id": None, "mode": "upsert",
        "status": "succeeded", "started_at": NOW, "finished_at": NOW, "rows_read": 5, "rows_loaded": 2,
        "rows_quarantined": 3, "units": 1, "watermark": None, "error": None}
    assert last_loads(warehouse)["crm_customers"]["finished_at"] == NOW


def test_reloading_the_same_file_is_idempotent(make_project, project_dir, warehouse) -> None:
    project = make_project(CSV_SOURCE)
    (project_dir / "landing" / "customers.csv").write_text(CUSTOMERS_CSV)

    first = ingest_source(project, warehouse, "crm_customers")
    table_before = warehouse.query("SELECT * FROM customers ORDER BY customer_id")
    second = ingest_source(project, warehouse, "crm_customers")

    assert (second.rows_read, second.rows_loaded, second.rows_quarantined) == (
        first.rows_read, first.rows_loaded, first.rows_quarantined)
    assert warehouse.query("SELECT * FROM customers ORDER BY customer_id") == table_before
    # the file's rejections are those of its latest load, not one copy per load
    assert len(quarantine(warehouse, "crm_customers")) == 4
    assert warehouse.query(f"SELECT DISTINCT load_id FROM {QUARANTINE_TABLE}") == [(second.load_id,)]
    assert warehouse.query(f"SELECT count(*) FROM {LOADS_TABLE} WHERE status = 'succeeded'") == [(2,)]


def test_upsert_updates_existing_customers_and_keeps_columns_the_source_does_not_provide(
        make_project, project_dir, warehouse) -> None:
    project = make_project(CSV_SOURCE)
    landing = project_dir / "landing"
    (landing / "customers.csv").write_text(CUSTOMERS_CSV)
    ingest_source(project, warehouse, "crm_customers")
    # a later export with only e-mail addresses: customer 1 changed, customer 6 is new, 6 appears twice
    (landing / "customers_2.csv").write_text(
        "customer_id,email\n1,new-a@example.com\n6,f@example.com\n6,f2@example.com\n")

    result = ingest_source(project, warehouse, "crm_customers")

    assert (result.rows_read, result.rows_loaded, result.units) == (8, 5, 2)
    assert warehouse.query("SELECT customer_id, email, ltv FROM customers ORDER BY customer_id") == [
        ("1", "new-a@example.com", 10.5),  # e-mail updated, lifetime value kept
        ("5", " e@example.com ", 1000.0),
        ("6", "f2@example.com", None),  # within one load, the last row of a key wins
    ]


def test_an_existing_table_keeps_its_key_type_and_values_that_do_not_fit_it_are_quarantined(
        make_project, project_dir, warehouse) -> None:
    warehouse.execute("CREATE TABLE customers (customer_id BIGINT, email VARCHAR, plan VARCHAR)")
    warehouse.execute("INSERT INTO customers VALUES (1, 'old@example.com', 'pro')")
    project = make_project(CSV_SOURCE)
    (project_dir / "landing" / "customers.csv").write_text(
        "customer_id,email,ltv\n1,a@example.com,1\nx7,b@example.com,2\n")

    result = ingest_source(project, warehouse, "crm_customers")

    assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
    assert warehouse.columns("customers")["customer_id"] == "BIGINT"
    assert warehouse.columns("customers")["ltv"] == "DOUBLE"  # added: the model declares it
    assert warehouse.query("SELECT customer_id, email, plan, ltv FROM customers") == [
        (1, "a@example.com", "pro", 1.0)]
    assert quarantine(warehouse, "crm_customers")[0][4:] == ("customer_id", "x7", "not a valid BIGINT")


def write_events(path, rows: list[tuple]) -> None:
    customer, occurred, event_type, revenue = zip(*rows)
    pq.write_table(pa.table({
        "customer_id": pa.array(customer, pa.int64()),
        "occurred_at": pa.array(occurred, pa.timestamp("us")),
        "event_type": pa.array(event_type, pa.string()),
        "revenue": pa.array(revenue, pa.float64()),
        "session": pa.array(["s"] * len(rows)),
    }), path)


EVENTS_SOURCE = """\
sources:
  - name: web_events
    table: events
    kind: file
    format: parquet
    path: landing/events/*.parquet
"""


def test_parquet_events_append_idempotently_per_file(make_project, project_dir, warehouse) -> None:
    warehouse.execute("CREATE TABLE customers (customer_id BIGINT, email VARCHAR)")
    project = make_project(EVENTS_SOURCE)
    folder = project_dir / "landing" / "events"
    folder.mkdir()
    t = dt.datetime(2026, 2, 1, 9, 30)
    write_events(folder / "2026-02-01.parquet", [(1, t, "page_view", None), (1, t, "purchase", 20.0),
                                                 (2, None, "page_view", None), (None, t, "page_view", None)])

    first = ingest_source(project, warehouse, "web_events")
    assert (first.mode, first.rows_read, first.rows_loaded, first.rows_quarantined) == ("append", 4, 2, 2)
    assert [row[2:5] for row in quarantine(warehouse, "web_events")] == [
        (3, "customer_id=2", "occurred_at"), (4, "customer_id=null", "customer_id")]
    assert warehouse.columns("events")["customer_id"] == "BIGINT"  # the customer table's key type

    ingest_source(project, warehouse, "web_events")
    assert warehouse.query("SELECT count(*) FROM events") == [(2,)]

    write_events(folder / "2026-02-02.parquet", [(2, t + dt.timedelta(days=1), "page_view", None)])
    write_events(folder / "2026-02-01.parquet", [(1, t, "purchase", 25.0)])  # the first export, corrected
    third = ingest_source(project, warehouse, "web_events")

    assert (third.rows_read, third.units) == (2, 2)
    assert warehouse.query("SELECT customer_id, event_type, revenue, _segprovider_load FROM events "
                           "ORDER BY occurred_at") == [
        (1, "purchase", 25.0, "web_events:landing/events/2026-02-01.parquet"),
        (2, "page_view", None, "web_events:landing/events/2026-02-02.parquet")]
    assert quarantine(warehouse, "web_events") == []  # the corrected file has no rejections left


def test_jsonl_orders_upsert_by_their_own_key(make_project, project_dir, warehouse) -> None:
    project = make_project("""\
sources:
  - {name: shop_orders, table: orders, kind: file, format: jsonl, path: landing/orders.jsonl,
     mode: upsert, key: [order_id]}
""")
    (project_dir / "landing" / "orders.jsonl").write_text("\n".join([
        '{"order_id": 1, "customer_id": 7, "ordered_at": "2026-01-01T00:00:00Z", "amount": 10}',
        '{"order_id": 2, "customer_id": 7, "ordered_at": "yesterday", "amount": 5}',
        '{"order_id": 3, "customer_id": 8, "ordered_at": "2026-01-02T00:00:00Z", "amount": "12.5", "x": {"y": 1}}',
        '{"order_id": 1, "customer_id": 7, "ordered_at": "2026-01-01T00:00:00Z", "amount": 11}',
        '{"order_id": 4, "customer_id": 8, "ordered_at": "2026-01-03T00:00:00Z"}',
    ]) + "\n")

    result = ingest_source(project, warehouse, "shop_orders")

    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (5, 4, 1)
    assert warehouse.query("SELECT order_id, customer_id, amount FROM orders ORDER BY order_id") == [
        ("1", "7", 11.0), ("3", "8", 12.5), ("4", "8", None)]
    assert quarantine(warehouse, "shop_orders") == [
        ("landing/orders.jsonl", None, 2, "order_id=2", "ordered_at", "yesterday", "not a timestamp (ISO 8601)")]


def test_replace_mode_empties_the_table_first(make_project, project_dir, warehouse) -> None:
    project = make_project("""\
sources:
  - {name: consent_snapshot, table: consents, kind: file, format: csv, path: landing/consents.csv,
     mode: replace, delimiter: ";"}
""")
    file = project_dir / "landing" / "consents.csv"
    file.write_text("customer_id;channel;opted_in;updated_at\n1;email;true;2026-01-01\n2;email;false;2026-01-02\n")
    ingest_source(project, warehouse, "consent_snapshot")
    file.write_text("customer_id;channel;opted_in;updated_at\n3;email;;2026-01-05\n")

    ingest_source(project, warehouse, "consent_snapshot")

    assert warehouse.query("SELECT * FROM consents") == [("3", "email", None, dt.datetime(2026, 1, 5))]


def test_a_failure_in_a_later_file_commits_nothing(make_project, project_dir, warehouse) -> None:
    project = make_project(CSV_SOURCE)
    landing = project_dir / "landing"
    (landing / "customers.csv").write_text(CUSTOMERS_CSV)
    (landing / "customers_2.csv").write_text("id,email\n9,z@example.com\n")  # no customer_id column

    with pytest.raises(TerminalIngestError, match="customers_2.csv has no field 'customer_id'") as failure:
        ingest_source(project, warehouse, "crm_customers")

    assert not failure.value.retryable
    assert warehouse.columns("customers") is None  # created in the load's transaction, rolled back with it
    assert warehouse.query(f"SELECT count(*) FROM {QUARANTINE_TABLE}") == [(0,)]
    assert warehouse.query(f"SELECT status, rows_loaded, rows_read FROM {LOADS_TABLE}") == [("failed", 0, 5)]
    assert failure.value.result.status == "failed"
    assert "crm_customers" not in last_loads(warehouse)


def test_a_warehouse_error_mid_load_rolls_back_every_file_and_names_the_cause(
        make_project, project_dir, warehouse) -> None:
    warehouse.execute("CREATE TABLE customers (customer_id VARCHAR, email VARCHAR, ltv INTEGER)")
    warehouse.execute("INSERT INTO customers VALUES ('1', 'old@example.com', 3)")
    project = make_project(CSV_SOURCE)
    landing = project_dir / "landing"
    (landing / "customers.csv").write_text("customer_id,email,ltv\n1,new@example.com,4\n2,b@example.com,5\n")
    (landing / "customers_2.csv").write_text("customer_id,ltv\n3,1e20\n")  # a number, but not for INTEGER

    with pytest.raises(TerminalIngestError, match="INT32") as failure:
        ingest_source(project, warehouse, "crm_customers")

    assert "aborted" not in str(failure.value)  # the cause, not the aborted transaction's follow-up error
    assert warehouse.query("SELECT * FROM customers") == [("1", "old@example.com", 3)]


def test_malformed_csv_fails_the_load_instead_of_dropping_rows(make_project, project_dir, warehouse) -> None:
    project = make_project(CSV_SOURCE)
    (project_dir / "landing" / "customers.csv").write_text(
        'customer_id,email\n1,a@example.com\n2,"b@example.com\n3,c@example.com,extra,fields\n')

    with pytest.raises(TerminalIngestError, match=r"CSV Error on Line: 3(.|\n)*unterminated quote") as failure:
        ingest_source(project, warehouse, "crm_customers")

    assert "ignore_errors" not in str(failure.value)  # DuckDB's advice to skip rows is not passed on
    assert warehouse.columns("customers") is None


def test_no_matching_file_is_a_retryable_failure(make_project, warehouse) -> None:
    project = make_project(CSV_SOURCE)

    with pytest.raises(TransientIngestError, match="no file matches") as failure:
        ingest_source(project, warehouse, "crm_customers")

    assert failure.value.retryable

"""Warehouse-table sources: a table or a query of the same warehouse, optionally incremental."""

from __future__ import annotations

import datetime as dt

from airflow_segprovider.ingest import QUARANTINE_TABLE, ingest_source


def test_a_raw_table_is_upserted_incrementally_by_its_watermark(make_project, warehouse) -> None:
    warehouse.execute("CREATE SCHEMA raw")
    warehouse.execute("CREATE TABLE raw.shop_orders (order_id BIGINT, customer_id BIGINT, ordered_at TIMESTAMPTZ, "
                      "amount DECIMAL(10, 2), amount_text VARCHAR, updated_at TIMESTAMP)")
    warehouse.execute("""INSERT INTO raw.shop_orders VALUES
        (1, 10, '2026-01-01 10:00:00+02', 5.50, 'x', '2026-01-01 00:00:00'),
        (2, 11, '2026-01-02 00:00:00+00', 7.00, 'x', '2026-01-02 00:00:00')""")
    project = make_project("""\
sources:
  - {name: raw_orders, table: orders, kind: warehouse_table, from_table: raw.shop_orders, mode: upsert,
     key: [order_id], incremental: {column: updated_at}}
""")

    first = ingest_source(project, warehouse, "raw_orders")
    warehouse.execute("UPDATE raw.shop_orders SET amount = 6.00, updated_at = '2026-01-05' WHERE order_id = 1")
    warehouse.execute("INSERT INTO raw.shop_orders VALUES (3, 10, NULL, 1.00, 'x', '2026-01-04 00:00:00')")
    second = ingest_source(project, warehouse, "raw_orders")

    assert (first.rows_read, first.watermark) == (2, "2026-01-02 00:00:00")
    assert (second.rows_read, second.rows_loaded, second.rows_quarantined) == (2, 1, 1)  # only the newer rows
    assert second.watermark == "2026-01-05 00:00:00"
    assert warehouse.columns("orders")["order_id"] == "BIGINT"  # the raw table's type, the model does not type it
    assert warehouse.query("SELECT order_id, customer_id, ordered_at, amount FROM orders ORDER BY order_id") == [
        (1, 10, dt.datetime(2026, 1, 1, 8, 0), 6.0), (2, 11, dt.datetime(2026, 1, 2), 7.0)]
    assert warehouse.query(f"SELECT origin, record_key, column_name, reason FROM {QUARANTINE_TABLE}") == [
        ("raw.shop_orders where updated_at > 2026-01-02 00:00:00", "order_id=3", "ordered_at",
         "missing required value")]


def test_a_query_source_loads_its_result(make_project, warehouse) -> None:
    warehouse.execute("CREATE TABLE crm_export (id INTEGER, mail VARCHAR, value VARCHAR)")
    warehouse.execute("INSERT INTO crm_export VALUES (1, 'a@example.com', '12.5'), (2, 'b@example.com', 'n/a')")
    project = make_project("""\
sources:
  - name: crm_query
    table: customers
    kind: warehouse_table
    query: "SELECT id AS customer_id, mail AS email, value AS ltv FROM crm_export"
""")

    result = ingest_source(project, warehouse, "crm_query")

    assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
    assert warehouse.query("SELECT customer_id, email, ltv FROM customers") == [(1, "a@example.com", 12.5)]


def test_an_incremental_load_with_nothing_new_reads_no_rows_and_keeps_its_watermark(make_project, target) -> None:
    target.execute("CREATE TABLE raw_events (customer_id BIGINT, occurred_at TIMESTAMP, event_type VARCHAR(20))")
    target.execute("INSERT INTO raw_events VALUES (1, TIMESTAMP '2026-01-01 00:00:00', 'page_view')")
    project = make_project("sources:\n  - {name: raw_events, table: events, kind: warehouse_table, "
                           "from_table: raw_events, incremental: {column: occurred_at}}\n")
    now = dt.datetime(2026, 3, 1)

    first = ingest_source(project, target, "raw_events", now=now)
    nothing_new = ingest_source(project, target, "raw_events", now=now + dt.timedelta(hours=1))

    assert (first.rows_loaded, first.watermark) == (1, "2026-01-01 00:00:00")
    assert (nothing_new.status, nothing_new.rows_read, nothing_new.watermark) == ("succeeded", 0, first.watermark)
    assert target.query("SELECT count(*) FROM events") == [(1,)]

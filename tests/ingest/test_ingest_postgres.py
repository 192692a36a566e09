"""Ingest into the real PostgreSQL server: files and a paginated REST API over loopback.

DuckDB types the rows in-process; the table, the quarantine, the ledger and the watermark
live in PostgreSQL (each test in its own schema ``t_<uuid>``, dropped afterwards). The
same behaviour as on DuckDB is asserted by reading PostgreSQL back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

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
from airflow_segprovider.ingest.ledger import current_watermark
from support.postgres import postgres_warehouse
from support.rest_customers_api import CUSTOMERS_API, customer

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 3, 1, 12, 0)


@pytest.fixture
def pg() -> Iterator:
    """A PostgresWarehouse in a fresh schema of the real server, dropped at the end."""
    with postgres_warehouse() as warehouse:
        yield warehouse


def quarantine(warehouse, source: str) -> list[tuple]:
    return warehouse.query(f"SELECT origin, page, row_number, record_key, column_name, raw_value, reason "
                           f"FROM {QUARANTINE_TABLE} WHERE source = '{source}' ORDER BY page, row_number, column_name")


CUSTOMERS_CSV = """\
customer_id,email,ltv,is_vip,birth_date,signup_at,not_in_model
1,a@example.com,10.5,true,1990-01-02,2026-01-01T10:00:00+02:00,x
2,b@example.com,abc,false,,2026-01-02 00:00:00,x
,c@example.com,3,,,2026-01-03,x
4,d@example.com,,yes,1990-13-01,not a time,x
5,,1e3,0,,,x
"""


def test_csv_is_typed_in_postgres_and_malformed_rows_land_in_its_quarantine(make_project, project_dir, pg) -> None:
    project = make_project("sources:\n  - {name: crm, table: customers, kind: file, format: csv, "
                           "path: landing/customers*.csv}\n")
    (project_dir / "landing" / "customers.csv").write_text(CUSTOMERS_CSV)

    result = ingest_source(project, pg, "crm", now=NOW)
    again = ingest_source(project, pg, "crm", now=NOW + dt.timedelta(hours=1))

    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (5, 2, 3)
    assert (again.rows_read, again.rows_loaded, again.rows_quarantined) == (5, 2, 3)
    assert pg.columns(f"{pg.schema}.customers") == {
        "customer_id": "TEXT", "email": "TEXT", "ltv": "DOUBLE PRECISION", "is_vip": "BOOLEAN",
        "birth_date": "DATE", "signup_at": "TIMESTAMP WITHOUT TIME ZONE"}
    assert pg.query("SELECT * FROM customers ORDER BY customer_id") == [
        ("1", "a@example.com", 10.5, True, dt.date(1990, 1, 2), dt.datetime(2026, 1, 1, 8, 0)),
        ("5", None, 1000.0, False, None, None)]  # reloaded: upserted, not duplicated
    origin = "landing/customers.csv"
    assert quarantine(pg, "crm") == [  # the second load replaced the first one's rejections of this file
        (origin, None, 2, "customer_id=2", "ltv", "abc", "not a number"),
        (origin, None, 3, "customer_id=null", "customer_id", None, "missing required value"),
        (origin, None, 4, "customer_id=4", "birth_date", "1990-13-01", "not a date (YYYY-MM-DD)"),
        (origin, None, 4, "customer_id=4", "signup_at", "not a time", "not a timestamp (ISO 8601)")]
    assert pg.query(f"SELECT status, rows_read, rows_loaded, rows_quarantined, finished_at FROM {LOADS_TABLE} "
                    "ORDER BY finished_at") == [("succeeded", 5, 2, 3, NOW),
                                                ("succeeded", 5, 2, 3, NOW + dt.timedelta(hours=1))]
    assert last_loads(pg)["crm"]["finished_at"] == NOW + dt.timedelta(hours=1)  # what the freshness gate reads


def test_parquet_appends_idempotently_per_file_and_jsonl_upserts_by_key(make_project, project_dir, pg) -> None:
    pg.execute("CREATE TABLE customers (customer_id BIGINT PRIMARY KEY, email TEXT)")
    project = make_project("""\
sources:
  - {name: web_events, table: events, kind: file, format: parquet, path: landing/events/*.parquet}
  - {name: shop_orders, table: orders, kind: file, format: jsonl, path: landing/orders.jsonl, mode: upsert,
     key: [order_id]}
""")
    folder = project_dir / "landing" / "events"
    folder.mkdir()
    t = dt.datetime(2026, 2, 1, 9, 30)
    pq.write_table(pa.table({
        "customer_id": pa.array([1, 1, 2, None], pa.int64()),
        "occurred_at": pa.array([t, t, None, t], pa.timestamp("us")),
        "event_type": ["page_view", "purchase", "page_view", "page_view"],
        "revenue": pa.array([None, 20.0, None, None], pa.float64())}), folder / "day1.parquet")
    (project_dir / "landing" / "orders.jsonl").write_text("\n".join([
        '{"order_id": 1, "customer_id": 7, "ordered_at": "2026-01-01T00:00:00Z", "amount": 10}',
        '{"order_id": 2, "customer_id": 7, "ordered_at": "yesterday", "amount": 5}',
        '{"order_id": 1, "customer_id": 7, "ordered_at": "2026-01-01T00:00:00Z", "amount": 11}']) + "\n")

    events = ingest_source(project, pg, "web_events")
    ingest_source(project, pg, "web_events")
    orders = ingest_source(project, pg, "shop_orders")

    assert (events.rows_read, events.rows_loaded, events.rows_quarantined) == (4, 2, 2)
    assert pg.columns("events")["customer_id"] == "BIGINT"  # the customer table's key type, in PostgreSQL
    assert pg.query("SELECT customer_id, occurred_at, event_type, revenue, _segprovider_load FROM events "
                    "ORDER BY event_type") == [
        (1, t, "page_view", None, "web_events:landing/events/day1.parquet"),
        (1, t, "purchase", 20.0, "web_events:landing/events/day1.parquet")]
    assert [row[2:5] for row in quarantine(pg, "web_events")] == [
        (3, "customer_id=2", "occurred_at"), (4, "customer_id=null", "customer_id")]
    assert (orders.rows_loaded, orders.rows_quarantined) == (2, 1)
    assert pg.query("SELECT order_id, amount FROM orders") == [("1", 11.0)]  # the last row of a key wins
    assert quarantine(pg, "shop_orders")[0][3:] == ("order_id=2", "ordered_at", "yesterday",
                                                     "not a timestamp (ISO 8601)")


def test_rest_pages_with_a_503_retry_then_an_incremental_run_fetching_only_new_rows(api, make_project, pg) -> None:
    project = make_project(CUSTOMERS_API)
    api.customers = [customer(n, f"2026-01-0{n}T00:00:00Z") for n in range(1, 8)]  # pages of 3, 3, 1
    api.customers[4] = customer(5, "2026-01-05T00:00:00Z", ltv="lots")  # malformed: page 2, record 2
    api.fail_once[("/v1/customers", "3")] = 503  # page 2 fails once, then answers

    first = ingest_source(project, pg, "crm_api", connection=api.connection())

    assert [c.get("cursor") for c in api.requests_to("/v1/customers")] == [None, "3", "3", "6"]
    assert (first.units, first.rows_read, first.rows_loaded, first.rows_quarantined) == (3, 7, 6, 1)
    assert current_watermark(pg, "crm_api") == "2026-01-07T00:00:00Z"  # stored in PostgreSQL's ledger
    assert quarantine(pg, "crm_api") == [("GET /v1/customers?cursor=3&limit=3", 2, 2, "customer_id=5", "ltv",
                                          "lots", "not a number")]

    api.requests.clear()
    api.customers[1] = customer(2, "2026-01-09T00:00:00Z", email="new2@example.com")
    api.customers.append(customer(8, "2026-01-08T00:00:00Z"))
    second = ingest_source(project, pg, "crm_api", connection=api.connection())

    assert api.requests_to("/v1/customers") == [{"limit": "3", "updated_since": "2026-01-07T00:00:00Z"}]
    assert (second.rows_read, second.rows_loaded, second.watermark) == (2, 2, "2026-01-09T00:00:00Z")
    assert pg.query("SELECT customer_id, email, ltv FROM customers ORDER BY CAST(customer_id AS INTEGER)") == [
        ("1", "c1@example.com", 10.0), ("2", "new2@example.com", 20.0), ("3", "c3@example.com", 30.0),
        ("4", "c4@example.com", 40.0), ("6", "c6@example.com", 60.0), ("7", "c7@example.com", 70.0),
        ("8", "c8@example.com", 80.0)]


def test_a_server_dying_mid_load_rolls_back_in_postgres(api, make_project, pg) -> None:
    project = make_project(CUSTOMERS_API)
    api.customers = [customer(n, f"2026-01-0{n}T00:00:00Z") for n in range(1, 4)]
    ingest_source(project, pg, "crm_api", connection=api.connection())
    api.customers += [customer(n, f"2026-02-0{n}T00:00:00Z") for n in range(4, 9)]
    api.customers[0] = customer(1, "2026-02-01T00:00:00Z", email="changed@example.com")
    api.die_on.add(("/v1/customers", "3"))

    with pytest.raises(TransientIngestError, match="failed after 3 attempts"):
        ingest_source(project, pg, "crm_api", connection=api.connection())

    assert pg.query("SELECT email FROM customers WHERE customer_id = '1'") == [("c1@example.com",)]
    assert pg.query("SELECT count(*) FROM customers") == [(3,)]
    assert current_watermark(pg, "crm_api") == "2026-01-03T00:00:00Z"
    assert pg.query(f"SELECT status, rows_loaded FROM {LOADS_TABLE} ORDER BY started_at") == [
        ("succeeded", 3), ("failed", 0)]
    assert pg.query("SELECT count(*) FROM pg_tables WHERE tablename LIKE '__segprovider%'") == [(0,)]


def test_a_table_of_the_same_postgres_database_streams_incrementally(make_project, pg) -> None:
    pg.execute("CREATE TABLE shop_orders (order_id BIGINT, customer_id BIGINT, ordered_at TIMESTAMPTZ, "
               "amount NUMERIC(10, 2), updated_at TIMESTAMP)")
    pg.execute("INSERT INTO shop_orders VALUES (1, 10, '2026-01-01 10:00:00+02', 5.50, '2026-01-01'), "
               "(2, 11, '2026-01-02 00:00:00+00', 7.00, '2026-01-02')")
    project = make_project(f"""\
sources:
  - {{name: raw_orders, table: orders, kind: warehouse_table, from_table: {pg.schema}.shop_orders, mode: upsert,
     key: [order_id], incremental: {{column: updated_at}}}}
""")

    first = ingest_source(project, pg, "raw_orders")
    pg.execute("UPDATE shop_orders SET amount = 6.00, updated_at = '2026-01-05' WHERE order_id = 1")
    pg.execute("INSERT INTO shop_orders VALUES (3, 10, NULL, 1.00, '2026-01-04')")
    second = ingest_source(project, pg, "raw_orders")

    assert (first.rows_read, first.watermark) == (2, "2026-01-02 00:00:00")
    assert (second.rows_read, second.rows_loaded, second.rows_quarantined) == (2, 1, 1)
    assert second.watermark == "2026-01-05 00:00:00"
    assert pg.query("SELECT order_id, customer_id, ordered_at, amount FROM orders ORDER BY order_id") == [
        (1, 10, dt.datetime(2026, 1, 1, 8, 0), 6.0), (2, 11, dt.datetime(2026, 1, 2), 7.0)]
    assert [row[3:] for row in quarantine(pg, "raw_orders")] == [
        ("order_id=3", "ordered_at", None, "missing required value")]


def test_a_value_postgres_refuses_rolls_back_the_whole_load_and_is_terminal(make_project, project_dir, pg) -> None:
    pg.execute("CREATE TABLE customers (customer_id TEXT PRIMARY KEY, email TEXT, ltv INTEGER)")
    pg.execute("INSERT INTO customers VALUES ('1', 'old@example.com', 3)")
    project = make_project("sources:\n  - {name: crm, table: customers, kind: file, format: csv, "
                           "path: landing/customers*.csv}\n")
    (project_dir / "landing" / "customers.csv").write_text("customer_id,email,ltv\n1,new@example.com,4\n")
    (project_dir / "landing" / "customers_2.csv").write_text("customer_id,ltv\n3,1e20\n")  # too big for INTEGER

    with pytest.raises(TerminalIngestError, match="out of range") as failure:
        ingest_source(project, pg, "crm")

    assert failure.value.result.status == "failed"
    assert pg.query("SELECT * FROM customers") == [("1", "old@example.com", 3)]
    assert pg.query(f"SELECT status FROM {LOADS_TABLE}") == [("failed",)]

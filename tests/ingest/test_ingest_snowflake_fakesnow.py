"""Smoke test: ingest into Snowflake as emulated by fakesnow (Snowflake's SQL on DuckDB, in-process).

Proves the Snowflake path end to end (names folded to upper case, the table created before the
load's transaction because Snowflake commits before DDL, upserts without a staging table), not
Snowflake's own performance or transaction semantics.
"""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_segprovider.ingest import ingest_source, last_loads
from airflow_segprovider.ingest.ledger import current_watermark
from support.rest_customers_api import customers_api_source


@pytest.fixture
def snowflake():
    fakesnow = pytest.importorskip("fakesnow")
    import snowflake.connector

    from airflow_segprovider.core.warehouses.snowflake import SnowflakeWarehouse

    with fakesnow.patch():
        connection = snowflake.connector.connect(database="segprovider_test", schema="main")
        warehouse = SnowflakeWarehouse(connection, schema="main")
        yield warehouse
        warehouse.close()


def test_files_and_a_paginated_api_load_into_snowflake_with_quarantine(api, make_project, project_dir,
                                                                      snowflake) -> None:
    project = make_project("sources:\n  - {name: crm_file, table: customers, kind: file, format: csv, "
                           "path: landing/customers.csv}\n" + customers_api_source(page_size=2))
    (project_dir / "landing" / "customers.csv").write_text(
        "customer_id,email,ltv,signup_at\n1,a@example.com,10.5,2026-01-01T10:00:00+02:00\n2,b@example.com,abc,\n")
    api.customers = [{"customer_id": n, "email": f"c{n}@example.com", "ltv": "x" if n == 4 else n,
                      "updated_at": f"2026-01-0{n}T00:00:00Z"} for n in range(3, 6)]
    api.fail_once[("/v1/customers", "2")] = 503

    from_file = ingest_source(project, snowflake, "crm_file")
    from_api = ingest_source(project, snowflake, "crm_api", connection=api.connection())
    again = ingest_source(project, snowflake, "crm_api", connection=api.connection())

    assert (from_file.rows_loaded, from_file.rows_quarantined) == (1, 1)
    assert (from_api.units, from_api.rows_loaded, from_api.rows_quarantined) == (2, 2, 1)
    assert (again.rows_read, again.previous_watermark) == (0, "2026-01-05T00:00:00Z")
    assert current_watermark(snowflake, "crm_api") == "2026-01-05T00:00:00Z"
    assert snowflake.query("SELECT customer_id, email, ltv, signup_at FROM customers ORDER BY customer_id") == [
        ("1", "a@example.com", 10.5, dt.datetime(2026, 1, 1, 8, 0)), ("3", "c3@example.com", 3.0, None),
        ("5", "c5@example.com", 5.0, None)]
    assert snowflake.query("SELECT source, page, row_number, column_name, raw_value, reason FROM segprovider_quarantine "
                           "ORDER BY source") == [("crm_api", 1, 2, "ltv", "x", "not a number"),
                                                  ("crm_file", None, 2, "ltv", "abc", "not a number")]
    assert set(last_loads(snowflake)) == {"crm_file", "crm_api"}

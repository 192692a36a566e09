"""The gates on the real PostgreSQL server, through Great Expectations' own PostgreSQL datasource.

The example data is generated and evaluated once (``evaluated_db`` in conftest.py), then copied
into a fresh PostgreSQL schema through the adapter's COPY load. Each gate's query becomes a GX
query asset and GX computes the metrics in PostgreSQL; only the ``types`` gate validates fetched
rows with pandas (it checks the types the rows arrive as).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_segprovider.core.state.membership import MembershipStore
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.gates import evaluate_gate, stage_destination_counts
from airflow_segprovider.gates.sql_datasource import postgres_url, sql_datasource
from support.postgres import pg_connect, postgres_schema

pytestmark = pytest.mark.integration

DAY_2 = dt.datetime(2026, 11, 24)
TABLES = ("customers", "events", "orders", "consents", "segprovider_membership_words", "segprovider_membership_bits",
          "segprovider_snapshots", "segprovider_membership_changes")


@pytest.fixture(scope="module")
def pg_schema(evaluated_db):
    """A PostgreSQL schema holding the evaluated example warehouse (copied once per module)."""
    from airflow_segprovider.core.warehouses.postgres import PostgresWarehouse

    with postgres_schema() as schema:
        source = DuckDBWarehouse(evaluated_db)
        target = PostgresWarehouse(pg_connect(), schema=schema)
        try:
            for table in TABLES:
                if source.columns(table) is None:
                    continue
                batches = list(source.iter_batches(f"SELECT * FROM {table}", 50_000))
                target.load(table, pa.Table.from_batches(batches), create=True)
            MembershipStore(target).ensure_tables()  # the segprovider_memberships view over the copied store
        finally:
            source.close()
            target.close()
        yield schema


@pytest.fixture
def pg(pg_schema):
    """The copied warehouse, opened on the module's schema."""
    from airflow_segprovider.core.warehouses.postgres import PostgresWarehouse

    warehouse = PostgresWarehouse(pg_connect(), schema=pg_schema)
    yield warehouse
    warehouse.close()


def datasources_used(result_path) -> set[str]:
    validations = json.loads(Path(result_path).read_text())["validations"]
    return {v["result"]["meta"]["active_batch_definition"]["datasource_name"] for v in validations}


def no_gx_errors(result_path) -> None:
    for validation in json.loads(Path(result_path).read_text())["validations"]:
        for outcome in validation["result"]["results"]:
            assert not outcome["exception_info"].get("raised_exception"), outcome["exception_info"]
            assert "element_count" in outcome["result"] or "observed_value" in outcome["result"], outcome


def test_the_postgres_datasource_url_comes_from_the_open_connection(pg) -> None:
    assert postgres_url(pg.connection) == "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
    assert postgres_url(pg.connection, pg.schema).endswith(
        f"/test?options=-c%20search_path%3D%22{pg.schema}%22%2Cpublic%20-c%20TimeZone%3DUTC")
    assert sql_datasource(pg, "segment_size").kind == "postgres"
    assert sql_datasource(pg, "types") is None  # dtype profiling is a property of fetched rows
    assert sql_datasource(pg, "segment_size", "pandas") is None


@pytest.mark.parametrize("gate", ["freshness", "segment_size", "consent"])
def test_gate_passes_with_metrics_computed_in_postgres(gate, project, pg, tmp_path) -> None:
    result = evaluate_gate(gate, project, pg, DAY_2, docs_dir=tmp_path)

    assert result.success, result.summary()
    assert result.rows > 0 and result.statistics["evaluated_expectations"] > 0
    assert datasources_used(result.result_path) == {"segprovider_sql"}  # GX's PostgreSQL datasource, not pandas
    no_gx_errors(result.result_path)
    assert (tmp_path / "index.html").is_file()


def test_types_gate_profiles_postgres_rows_with_pandas(project, pg, tmp_path) -> None:
    result = evaluate_gate("types", project, pg, DAY_2, docs_dir=tmp_path)

    assert result.success, result.summary()
    assert datasources_used(result.result_path) == {"segprovider"}
    no_gx_errors(result.result_path)


def test_freshness_fails_a_year_later_naming_each_stale_table(project, pg) -> None:
    result = evaluate_gate("freshness", project, pg, DAY_2 + dt.timedelta(days=365))

    assert not result.success
    [stale] = [f for f in result.failed if f.column == "age_hours"]
    assert stale.unexpected_count == stale.element_count == 4
    assert {row["table_name"] for row in stale.unexpected_rows} == {"events", "orders", "consents", "customers"}
    assert all(8760 < row["age_hours"] < 8800 for row in stale.unexpected_rows)
    assert "expect_column_values_to_be_between on age_hours (max_value=48)" in result.summary()


def test_a_collapsed_segment_fails_segment_size_and_both_paths_agree(project, pg) -> None:
    # committed, because GX reads through its own connection; restored afterwards
    pg.execute("UPDATE segprovider_snapshots SET members = 0 WHERE segment = 'vip' AND as_of = '2026-11-24'")
    try:
        sql = evaluate_gate("segment_size", project, pg, DAY_2)
        pandas = evaluate_gate("segment_size", project, pg, DAY_2, gx_path="pandas")
    finally:
        pg.execute("UPDATE segprovider_snapshots AS s SET members = (SELECT COUNT(*) FROM segprovider_memberships AS m "
                   "WHERE m.segment = s.segment AND m.as_of = s.as_of) WHERE segment = 'vip' AND as_of = '2026-11-24'")

    assert not sql.success and not pandas.success
    collapsed = [f for f in sql.failed if f.column == "members" and f.expectation_type.endswith("between")]
    assert sorted(f.batch for f in collapsed) == ["vip__hubspot_crm", "vip__mailchimp_newsletter"]
    assert {str(f.unexpected_rows) for f in collapsed} == {
        str([{"sync_id": sync, "segment": "vip", "members": 0}])
        for sync in ("vip__mailchimp_newsletter", "vip__hubspot_crm")}
    assert sql.statistics == pandas.statistics  # GX in PostgreSQL and GX on pandas reach the same verdicts
    assert [(f.batch, f.expectation_type, f.column, f.unexpected_count) for f in sql.failed] == [
        (f.batch, f.expectation_type, f.column, f.unexpected_count) for f in pandas.failed]


def test_cross_system_counts_fail_when_a_destination_reports_drift(project, pg) -> None:
    stage_destination_counts(pg, [{"sync_id": "vip__hubspot_crm", "destination": "hubspot_crm",
                                   "reported_count": 500}], phase="before", as_of=DAY_2)
    try:
        drifted = evaluate_gate("cross_system_counts", project, pg, DAY_2, syncs=["vip__hubspot_crm"])
    finally:
        pg.execute("DELETE FROM segprovider_destination_counts")

    assert not drifted.success  # nothing synced yet: the sync state holds 0, the destination says 500
    [drift] = drifted.failed
    assert drift.column == "relative_difference"
    assert drift.unexpected_rows == [{"sync_id": "vip__hubspot_crm", "destination": "hubspot_crm", "phase": "before",
                                      "relative_difference": 500.0}]

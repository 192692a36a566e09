"""The gate queries: what each reads, every supported dialect, and the staging table (no GX here)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlglot

from airflow_segprovider.core.sql.dialects import SUPPORTED_DIALECTS
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.gates import GateConfigError, queries, query_frame, stage_destination_counts

AS_OF = dt.datetime(2026, 11, 24)


def all_sql(project, dialect):
    syncs = list(project.syncs)
    return {
        "freshness": queries.freshness_sql(project, AS_OF, dialect=dialect, schema="main", include_loads=True),
        "types": queries.types_sql(project, ["email", "lifetime_value"], dialect=dialect, schema="main"),
        "segment_size": queries.segment_size_sql(project, AS_OF, syncs, dialect=dialect, schema="main"),
        "consent": queries.consent_sql(project, AS_OF, syncs, dialect=dialect, schema="main"),
        "counts_before": queries.cross_system_counts_sql(project, AS_OF, syncs, "before", dialect=dialect),
        "counts_after": queries.cross_system_counts_sql(project, AS_OF, syncs, "after", dialect=dialect),
    }


@pytest.mark.parametrize("dialect", SUPPORTED_DIALECTS)
def test_every_gate_query_is_valid_sql_in_every_dialect(project, dialect):
    for gate, sql in all_sql(project, dialect).items():
        assert sqlglot.parse_one(sql, read=dialect), gate


def test_types_sample_is_bounded(project):
    assert "USING SAMPLE reservoir(500 ROWS)" in queries.types_sql(project, ["email"], sample_rows=500)
    assert queries.types_sql(project, ["email"], sample_rows=500, dialect="postgres").endswith("LIMIT 500")
    with pytest.raises(GateConfigError, match="sample_rows"):
        queries.types_sql(project, ["email"], sample_rows=0)


def test_freshness_covers_every_table_of_the_model(project):
    assert queries.timestamp_columns(project) == {
        "customers": ["signup_at", "last_seen_at"], "events": ["occurred_at"], "orders": ["ordered_at"],
        "consents": ["updated_at"]}


def test_types_checks_what_rules_read_and_destinations_receive(project):
    names = {a.name for a in queries.type_attributes(project)}
    assert {"lifetime_value", "is_employee", "signup_at", "last_seen_at", "plan", "country", "email"} <= names
    assert {"first_name"} <= names  # sent to Mailchimp and HubSpot, read by no rule


def test_syncs_of_a_gate(project):
    assert [s.id for s in queries.gate_syncs(project, "cross_system_counts")] == [
        "vip__mailchimp_newsletter", "vip__hubspot_crm", "at_risk__mailchimp_newsletter"]
    assert [s.id for s in queries.gate_syncs(project, "consent", ["meta_ads"])] == [
        "win_back__meta_ads", "high_intent__meta_ads"]
    with pytest.raises(GateConfigError, match="unknown gate"):
        queries.gate_syncs(project, "sizes")
    with pytest.raises(GateConfigError, match="unknown phase 'during'"):
        queries.cross_system_counts_sql(project, AS_OF, [], "during")


def test_gates_without_syncs_give_typed_empty_frames(project):
    warehouse = DuckDBWarehouse()
    for sql in (queries.segment_size_sql(project, AS_OF, []), queries.consent_sql(project, AS_OF, [])):
        frame = query_frame(warehouse, sql)
        assert frame.empty and len(frame.columns) >= 8


def test_staging_destination_counts(project):
    warehouse = DuckDBWarehouse()
    assert stage_destination_counts(warehouse, [
        {"sync_id": "vip__hubspot_crm", "destination": "hubspot_crm", "reported_count": 12},
        {"sync_id": "vip__mailchimp_newsletter", "destination": "mailchimp_newsletter", "reported_count": None},
    ], phase="after", as_of="2026-11-24T00:00:00Z", reported_at=dt.datetime(2026, 11, 24, 1)) == 2
    assert warehouse.query("SELECT sync_id, reported_count, phase, as_of FROM segprovider_destination_counts "
                           "ORDER BY sync_id") == [("vip__hubspot_crm", 12, "after", AS_OF),
                                                   ("vip__mailchimp_newsletter", None, "after", AS_OF)]
    with pytest.raises(GateConfigError, match="unknown phase"):
        stage_destination_counts(warehouse, [], phase="later", as_of=AS_OF)
    with pytest.raises(GateConfigError, match="needs reported_count"):
        stage_destination_counts(warehouse, [{"sync_id": "x", "destination": "y"}], phase="before", as_of=AS_OF)

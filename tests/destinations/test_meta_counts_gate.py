"""The cross_system_counts gate holds a Meta sync to the matched range, as the drift monitor does."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.sync.engine import SyncEngine
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.gates import GateConfigError, ensure_counts_table, query_frame, stage_destination_counts
from airflow_segprovider.gates.queries import cross_system_counts_sql
from airflow_segprovider.gates.queries.counts import match_rate_floor

AS_OF = dt.datetime(2026, 11, 24)
PROJECT = load_project(EXAMPLE_PROJECT)
META = next(s for s in PROJECT.syncs if s.segment == "win_back" and s.destination == "meta_ads")
HUBSPOT = next(s for s in PROJECT.syncs if s.segment == "vip" and s.destination == "hubspot_crm")


@pytest.fixture
def warehouse(tmp_path):
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    SyncEngine(PROJECT, warehouse).ensure_tables()
    ensure_counts_table(warehouse)
    # no snapshot is needed for the "before" phase; its reference column reads an empty membership table
    warehouse.execute("CREATE TABLE segprovider_memberships (segment VARCHAR, as_of DATE, arm VARCHAR, "
                      "customer_key VARCHAR)")
    for sync in (META, HUBSPOT):  # the sync state says each destination holds 1,000 people
        warehouse.execute(
            f"INSERT INTO segprovider_sync_state SELECT '{sync.id}', 'c' || range, NULL, NULL, NULL, TRUE, "
            "'segprovider', TIMESTAMP '2026-11-23 01:00:00', 'day_1' FROM range(1000)")
    yield warehouse
    warehouse.close()


def differences(warehouse, reported: dict[str, int]) -> dict[str, float]:
    stage_destination_counts(warehouse, [
        {"sync_id": sync.id, "destination": sync.destination, "reported_count": reported[sync.id]}
        for sync in (META, HUBSPOT)], phase="before", as_of=AS_OF)
    frame = query_frame(warehouse, cross_system_counts_sql(PROJECT, AS_OF, [META, HUBSPOT], "before"))
    return {row.sync_id: row.relative_difference for row in frame.itertuples()}


def test_a_meta_audience_that_matched_70_percent_differs_by_nothing(warehouse):
    found = differences(warehouse, {META.id: 690, HUBSPOT.id: 1000})
    assert found == {META.id: 0.0, HUBSPOT.id: 0.0}


def test_a_meta_audience_that_matched_nobody_differs_by_the_floor_and_exact_counts_keep_theirs(warehouse):
    found = differences(warehouse, {META.id: 0, HUBSPOT.id: 700})
    assert found[META.id] == pytest.approx(0.3) and found[HUBSPOT.id] == pytest.approx(0.3)


def test_the_floor_comes_from_the_destination_and_is_validated():
    assert match_rate_floor(PROJECT, HUBSPOT) == 1.0 and match_rate_floor(PROJECT, META) == 0.3
    strict = dataclasses.replace(META, target={**META.target, "min_match_rate": 0.8})
    assert match_rate_floor(PROJECT, strict) == 0.8
    with pytest.raises(GateConfigError, match="min_match_rate"):
        match_rate_floor(PROJECT, dataclasses.replace(META, target={"min_match_rate": "most"}))

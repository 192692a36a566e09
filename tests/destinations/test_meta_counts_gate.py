"""The cross_system_counts gate holds a Meta sync to the matched range, as the drift monitor does."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_segprovider.core.destination import ReportedCount
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.sync.engine import SyncEngine
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.gates import GateConfigError, ensure_counts_table, query_frame, stage_destination_counts
from airflow_segprovider.gates.queries import cross_system_counts_sql
from support.dag_world import DAY_1, airflow_db, world  # noqa: F401  (pytest fixtures)

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


def matched(lower: int, upper: int | None = None, *, pending: bool = False, rate: float | None = None,
            floor: float = 0.3) -> ReportedCount:
    """What the Meta connector's ``reported_count()`` answers: the approximate range of matched people."""
    return ReportedCount(lower, lower, lower if upper is None else upper, min_match_rate=floor, pending=pending,
                         match_rate=rate)


def gate_rows(warehouse, reported: dict[str, int | ReportedCount | None]):
    stage_destination_counts(warehouse, [
        {"sync_id": sync.id, "destination": sync.destination, "reported_count": reported[sync.id]}
        for sync in (META, HUBSPOT)], phase="before", as_of=AS_OF)
    frame = query_frame(warehouse, cross_system_counts_sql(PROJECT, AS_OF, [META, HUBSPOT], "before"))
    return {row.sync_id: row for row in frame.itertuples()}


def differences(warehouse, reported: dict[str, int | ReportedCount | None]) -> dict[str, float]:
    return {sync_id: row.relative_difference for sync_id, row in gate_rows(warehouse, reported).items()}


def test_a_meta_audience_that_matched_70_percent_differs_by_nothing(warehouse):
    found = differences(warehouse, {META.id: matched(690, 700, rate=0.69), HUBSPOT.id: 1000})
    assert found == {META.id: 0.0, HUBSPOT.id: 0.0}


def test_a_meta_audience_that_matched_nobody_differs_by_the_floor_and_exact_counts_keep_theirs(warehouse):
    found = differences(warehouse, {META.id: matched(0, rate=0.0), HUBSPOT.id: 700})
    assert found[META.id] == pytest.approx(0.3) and found[HUBSPOT.id] == pytest.approx(0.3)


def test_the_range_is_compared_not_its_lower_bound(warehouse):
    # Meta rounds to two significant figures: 299 matched may read as 290 to 300; 300 is in [300, 1000]
    assert differences(warehouse, {META.id: matched(290, 300), HUBSPOT.id: 1000})[META.id] == 0.0


def test_the_floor_is_the_one_the_destination_reported(warehouse):
    # a destination set to min_match_rate 0.8 holds 690 matched to [800, 1000]: 110 short
    found = differences(warehouse, {META.id: matched(690, floor=0.8), HUBSPOT.id: 1000})
    assert found[META.id] == pytest.approx(0.11)


def test_an_exact_count_staged_for_meta_is_held_to_the_exact_count(warehouse):
    # an int says "this is everyone": no match-rate allowance comes from the project instead
    assert differences(warehouse, {META.id: 690, HUBSPOT.id: 1000})[META.id] == pytest.approx(0.31)


def test_a_pending_count_is_not_judged_and_says_so(warehouse):
    rows = gate_rows(warehouse, {META.id: matched(0, pending=True), HUBSPOT.id: 1000})
    assert rows[META.id].relative_difference == 0.0 and bool(rows[META.id].pending)
    assert not bool(rows[HUBSPOT.id].pending)


def test_the_gate_rows_carry_the_match_rate_and_bounds(warehouse):
    rows = gate_rows(warehouse, {META.id: matched(690, 700, rate=0.69), HUBSPOT.id: 1000})
    meta, hubspot = rows[META.id], rows[HUBSPOT.id]
    assert (meta.reported_count, meta.reported_lower, meta.reported_upper) == (690, 690, 700)
    assert (meta.min_match_rate, meta.match_rate) == (0.3, pytest.approx(0.69))
    assert hubspot.min_match_rate == 1.0 and hubspot.match_rate is None or hubspot.match_rate != hubspot.match_rate


def test_a_count_that_is_not_a_count_is_refused_naming_the_sync(warehouse):
    with pytest.raises(GateConfigError, match=META.id):
        stage_destination_counts(warehouse, [{"sync_id": META.id, "destination": "meta_ads",
                                              "reported_count": "700"}], phase="before", as_of=AS_OF)


@pytest.mark.integration
@pytest.mark.slow
def test_the_dag_stages_metas_own_count_with_its_match_rate(world):  # noqa: F811  (the fixture)
    """``segments_centralized`` against the sandbox (match rate 0.7): the count tasks stage what the connector's
    ``reported_count()`` answers, not the bare lower bound, and the gate passes for the right reason."""
    destinations = world.project / "destinations.yml"
    declared = "target: {audience_id: \"23850000000000001\"},\n     gates: [freshness, segment_size, consent]}"
    assert declared in destinations.read_text()
    destinations.write_text(destinations.read_text().replace(declared, declared.replace("consent]", "consent, "
                                                                                        "cross_system_counts]")))
    states = world.run(DAY_1)
    assert all(state == "success" for state in states.values()), states
    rows = world.query("SELECT sync_id, phase, reported_count, reported_lower, reported_upper, min_match_rate, "
                       "match_rate, pending FROM segprovider_destination_counts ORDER BY reported_at")
    meta = [row for row in rows if row[0].endswith("__meta_ads") and row[1] == "after"]
    exact = [row for row in rows if not row[0].endswith("__meta_ads")]
    assert meta and exact, rows
    for _, _, count, lower, upper, floor, rate, pending in meta:
        assert count == lower <= upper and floor == 0.3 and not pending
        assert 0.6 < rate < 0.8  # the sandbox matches 70 % of the people sent, and says so
    for _, _, count, lower, upper, floor, rate, pending in exact:
        assert count == lower == upper and floor == 1.0 and rate is None and not pending

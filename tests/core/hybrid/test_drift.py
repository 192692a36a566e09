"""The drift monitor holds each sync to the tolerance of the model that owns it."""

from __future__ import annotations

from airflow_segprovider.core.hybrid.drift import sync_count_finding
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.example import EXAMPLE_PROJECT

PROJECT = load_project(EXAMPLE_PROJECT)


def sync_of(segment: str, destination: str):
    return next(s for s in PROJECT.syncs if s.segment == segment and s.destination == destination)


def test_a_centralized_sync_is_held_to_the_monitor_tolerance() -> None:
    finding = sync_count_finding(PROJECT, sync_of("vip", "hubspot_crm"), 1000, 1020, 0.01)
    assert (finding.kind, finding.status, finding.tolerance) == ("synced_segment", "drift", 0.01)
    assert "hubspot_crm reports 1020 members of vip" in finding.detail and "centralized sync" in finding.detail
    assert sync_count_finding(PROJECT, sync_of("vip", "hubspot_crm"), 1000, 1005, 0.01).status == "ok"


def test_a_reconciled_sync_is_held_to_its_policys_change_set_gate() -> None:
    sync = sync_of("sales_priority", "mailchimp_newsletter")
    gate = PROJECT.reconcile["sales_priority"].max_change_fraction
    within = sync_count_finding(PROJECT, sync, 1000, 1000 + int(gate * 1000) - 1, 0.01)
    assert (within.kind, within.status, within.tolerance) == ("reconciled_segment", "ok", gate)
    beyond = sync_count_finding(PROJECT, sync, 1000, 1000 + int(gate * 1000) + 50, 0.01)
    assert beyond.status == "drift" and "change-set gate" in beyond.detail


def test_an_unreadable_count_is_unknown_not_drift() -> None:
    finding = sync_count_finding(PROJECT, sync_of("win_back", "meta_ads"), 1000, None, 0.01)
    assert finding.status == "unknown"


def test_a_meta_range_that_holds_the_synced_count_is_no_drift() -> None:
    from airflow_segprovider.core.destination import ReportedCount

    sync = sync_of("high_intent", "meta_ads")
    clean = sync_count_finding(PROJECT, sync, 2199, ReportedCount(2100, 2100, 2200), 0.01)
    assert (clean.status, clean.reported, clean.drift) == ("ok", 2100, 0.0)
    off = sync_count_finding(PROJECT, sync, 2500, ReportedCount(2100, 2100, 2200), 0.01)
    assert off.status == "drift" and "2100 to 2200 (approximate)" in off.detail

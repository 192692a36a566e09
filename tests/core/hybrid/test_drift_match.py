"""The drift monitor's count check of a Meta sync: matched counts, match rate and delayed application."""

from __future__ import annotations

import re

import pytest

from airflow_segprovider.core.destination import Record, ReportedCount
from airflow_segprovider.core.hybrid.drift import compare_counts, sync_count_finding
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.destinations import create_client
from airflow_segprovider.example import EXAMPLE_PROJECT
from segprovider_sandbox import DEFAULT_META_ACCESS_TOKEN, SandboxConfig, serve

PROJECT = load_project(EXAMPLE_PROJECT)
SYNC = next(s for s in PROJECT.syncs if s.segment == "win_back" and s.destination == "meta_ads")
PEOPLE = [Record(f"c{i}", f"buyer{i}@example.com", {}) for i in range(1500)]
TOLERANCE = 0.05  # the drift monitor's default sync tolerance


def monitor_finding(tmp_path, config: SandboxConfig):
    """Sync PEOPLE to the sandbox's audience, then check the count as the drift monitor does."""
    with serve(db_path=tmp_path / "sandbox.db", config=config) as sandbox:
        audience = sandbox.state.seed_demo_fixtures().meta_audience_id
        settings = {"audience_id": audience, "base_url": sandbox.url, "backoff_base": 0.01, "max_attempts": 4}
        with create_client("meta", SYNC.destination, settings, {"access_token": DEFAULT_META_ACCESS_TOKEN}) as client:
            client.add_members(PEOPLE)
            reported = client.reported_count()
    return sync_count_finding(PROJECT, SYNC, len(PEOPLE), reported, TOLERANCE)


@pytest.mark.integration
def test_a_clean_sync_at_a_70_percent_match_is_no_drift(tmp_path):
    finding = monitor_finding(tmp_path, SandboxConfig(meta_match_rate=0.7))
    assert (finding.status, finding.drift) == ("ok", 0.0)
    assert finding.reported < len(PEOPLE)
    assert re.search(r"observed match rate (6[5-9]|7[0-5])% of 1500 sent", finding.detail)
    assert "from 450 to 1500" in finding.detail


@pytest.mark.integration
def test_an_upload_that_matched_nobody_is_drift(tmp_path):
    finding = monitor_finding(tmp_path, SandboxConfig(meta_match_rate=0.0))
    assert finding.status == "drift" and finding.drift == pytest.approx(0.3)
    assert "observed match rate 0%" in finding.detail and "matched nobody" in finding.detail


@pytest.mark.integration
def test_an_upload_within_the_application_delay_is_not_yet_applied(tmp_path):
    finding = monitor_finding(tmp_path, SandboxConfig(meta_apply_delay_seconds=3600))
    assert finding.status == "pending" and "not yet applied" in finding.detail


def test_exact_counts_keep_their_meaning():
    assert ReportedCount.exact(100).drift_from(100) == 0.0
    assert ReportedCount.exact(70).drift_from(100) == pytest.approx(0.3)
    finding = compare_counts("synced_segment", "s", "hubspot_crm", 100, 70, 0.05)
    assert finding.status == "drift" and "match rate" not in finding.detail


def test_a_matched_range_is_compared_with_the_range_the_upload_allows():
    count = ReportedCount(690, 690, 700, min_match_rate=0.3)
    assert count.drift_from(1000) == 0.0
    assert ReportedCount(1100, 1100, 1200, min_match_rate=0.3).drift_from(1000) == pytest.approx(0.1)
    assert ReportedCount(100, 100, 100, min_match_rate=0.3).drift_from(1000) == pytest.approx(0.2)
    assert count.observed_match_rate(1000) == 0.69
    assert ReportedCount(0, 0, 0, min_match_rate=0.3, match_rate=0.72).observed_match_rate(1000) == 0.72

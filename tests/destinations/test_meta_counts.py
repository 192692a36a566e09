"""Meta's reported count through the connector: matched people, held to [min_match_rate × sent, sent]."""

from __future__ import annotations

import pytest

from airflow_segprovider.core.destination import DestinationConfigError, Record, ReportedCount
from airflow_segprovider.destinations import create_client
from airflow_segprovider.destinations.meta import DEFAULT_MIN_MATCH_RATE
from segprovider_sandbox import DEFAULT_META_ACCESS_TOKEN, SandboxConfig, serve

pytestmark = pytest.mark.integration

FAST_RETRIES = {"backoff_base": 0.01, "backoff_max": 0.05, "max_attempts": 8}
PEOPLE = [Record(f"c{i}", f"person{i}@example.com", {}) for i in range(1000)]


def synced_count(tmp_path, people=PEOPLE, *, config: SandboxConfig | None = None, **settings) -> ReportedCount:
    with serve(db_path=tmp_path / "sandbox.db", config=config) as sandbox:
        audience = sandbox.state.seed_demo_fixtures().meta_audience_id
        client_config = {"audience_id": audience, "base_url": sandbox.url, **FAST_RETRIES, **settings}
        with create_client("meta", "meta_ads", client_config, {"access_token": DEFAULT_META_ACCESS_TOKEN}) as client:
            assert len(client.add_members(people).acknowledged) == len(people)
            return client.reported_count()


def test_the_count_is_of_matched_people_with_the_observed_match_rate(tmp_path):
    count = synced_count(tmp_path)
    assert count.min_match_rate == DEFAULT_MIN_MATCH_RATE == 0.3 and not count.pending
    assert 0.6 < count.match_rate < 0.8
    assert count.upper < 1000  # Meta never counts everyone at 70 %
    assert count.drift_from(1000) == 0.0
    assert count.expected_range(1000) == (300, 1000)


def test_min_match_rate_is_a_destination_setting(tmp_path):
    count = synced_count(tmp_path, min_match_rate=0.9)
    assert count.min_match_rate == 0.9 and count.drift_from(1000) > 0.1  # 70 % matched is below the floor


def test_an_upload_that_matched_nobody_is_off_by_the_whole_floor(tmp_path):
    count = synced_count(tmp_path, config=SandboxConfig(meta_match_rate=0.0))
    assert (count.lower, count.upper, count.match_rate) == (0, 0, 0.0)
    assert count.drift_from(1000) == pytest.approx(0.3)


def test_an_upload_still_being_applied_reads_as_pending(tmp_path):
    count = synced_count(tmp_path, config=SandboxConfig(meta_apply_delay_seconds=3600))
    assert count.pending and (count.lower, count.upper) == (0, 0)


@pytest.mark.parametrize("value", [1.5, -0.1, "high"])
def test_a_bad_min_match_rate_is_refused_before_any_request(value):
    with pytest.raises(DestinationConfigError, match="min_match_rate"):
        create_client("meta", "meta_ads", {"audience_id": "1", "min_match_rate": value},
                      {"access_token": "t"})

"""Meta's reported count through the connector: matched people, held to [min_match_rate × sent, sent]."""

from __future__ import annotations

import logging
import time

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


def meta_client(sandbox, audience):
    config = {"audience_id": audience, "base_url": sandbox.url, **FAST_RETRIES}
    return create_client("meta", "meta_ads", config, {"access_token": DEFAULT_META_ACCESS_TOKEN})


def test_the_match_rate_is_of_the_sessions_that_added_people(tmp_path):
    """Removal sessions report matches too (https://developers.facebook.com/docs/marketing-api/reference/
    custom-audience-session): they say nothing about how well adds match, so they stay out of the rate."""
    db = tmp_path / "sandbox.db"
    with serve(db_path=db) as sandbox:  # Meta matches 70 % of the people added
        audience = sandbox.state.seed_demo_fixtures().meta_audience_id
        with meta_client(sandbox, audience) as client:
            client.add_members(PEOPLE)
    gone = [Record(f"x{i}", f"gone{i}@example.com", {}) for i in range(1000)]
    with serve(db_path=db, config=SandboxConfig(meta_match_rate=0.0)) as sandbox:  # removals matching no one
        with meta_client(sandbox, audience) as client:
            assert len(client.remove_members(gone).acknowledged) == 1000
            rate, pending = client.upload_sessions_summary()
    assert 0.6 < rate < 0.8 and not pending


def test_a_session_that_never_applies_does_not_keep_the_count_pending_forever(tmp_path, caplog):
    """Meta applies an upload within 24 hours (https://developers.facebook.com/docs/marketing-api/audiences/
    guides/custom-audiences): a session still processing after that will not apply, and is logged instead."""
    with serve(db_path=tmp_path / "sandbox.db", config=SandboxConfig(meta_apply_delay_seconds=10**7)) as sandbox:
        audience = sandbox.state.seed_demo_fixtures().meta_audience_id
        with meta_client(sandbox, audience) as client:
            client.add_members(PEOPLE[:10])
            assert client.upload_sessions_summary()[1]  # just uploaded: still being applied
            later = time.time() + 25 * 3600
            with caplog.at_level(logging.WARNING):
                assert client.upload_sessions_summary(now=later) == (None, False)
    assert "still 'processing' 25 hours after it started" in caplog.text

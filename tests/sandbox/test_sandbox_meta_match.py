"""The sandbox's Meta match rate (deterministic per person, configurable) and delayed application."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
import requests

from segprovider_sandbox import DEFAULT_META_ACCESS_TOKEN, SandboxConfig, serve
from segprovider_sandbox.store.meta import hash_matches

pytestmark = pytest.mark.integration

TOKEN = DEFAULT_META_ACCESS_TOKEN
HASHES = [hashlib.sha256(f"m{i}@example.org".encode()).hexdigest() for i in range(2000)]


def upload(url: str, audience: int, data: list[str], method: str = "POST") -> dict:
    response = requests.request(method, f"{url}/v21.0/{audience}/users", timeout=30, data={
        "access_token": TOKEN, "payload": json.dumps({"schema": "EMAIL_SHA256", "data": data})})
    response.raise_for_status()
    return response.json()


def size(url: str, audience: int) -> tuple[int, int]:
    answer = requests.get(f"{url}/v21.0/{audience}", timeout=30, params={
        "access_token": TOKEN, "fields": "approximate_count_lower_bound,approximate_count_upper_bound"}).json()
    return answer["approximate_count_lower_bound"], answer["approximate_count_upper_bound"]


def sessions(url: str, audience: int) -> list[dict]:
    return requests.get(f"{url}/v21.0/{audience}/sessions", timeout=30,
                        params={"access_token": TOKEN}).json()["data"]


def matched_size(tmp_path, name: str, data: list[str], **config) -> tuple[int, int]:
    with serve(db_path=tmp_path / f"{name}.db", config=SandboxConfig(**config)) as sandbox:
        fixtures = sandbox.state.seed_demo_fixtures()
        upload(sandbox.url, fixtures.meta_audience_id, data)
        return size(sandbox.url, fixtures.meta_audience_id)


def test_the_default_match_rate_is_well_under_everyone_and_the_same_in_every_run(tmp_path):
    assert SandboxConfig().meta_match_rate == 0.7
    first = matched_size(tmp_path, "first", HASHES)
    again = matched_size(tmp_path, "again", HASHES)
    assert first == again
    matched = sum(hash_matches(value, 0.7) for value in HASHES)
    assert 0.65 * len(HASHES) < matched < 0.75 * len(HASHES)
    assert first[0] <= matched <= first[1] < len(HASHES)


def test_the_match_rate_decides_per_person_not_per_upload(tmp_path):
    with serve(db_path=tmp_path / "s.db") as sandbox:
        fixtures = sandbox.state.seed_demo_fixtures()
        url, audience = sandbox.url, fixtures.meta_audience_id
        for start in range(0, len(HASHES), 90):  # many small uploads: the same people match as in one
            upload(url, audience, HASHES[start:start + 90])
        assert size(url, audience) == matched_size(tmp_path, "one", HASHES)
        # every upload is kept as Meta received it, matched or not
        assert sandbox.state.meta_audience_hashes(audience) == set(HASHES)


@pytest.mark.parametrize(("rate", "expected"), [(0.0, (0, 0)), (1.0, (2000, 2000))])
def test_the_match_rate_is_configurable(tmp_path, rate, expected):
    assert matched_size(tmp_path, "s", HASHES, meta_match_rate=rate) == expected


def test_sessions_report_received_and_matched(tmp_path):
    with serve(db_path=tmp_path / "s.db", config=SandboxConfig(meta_match_rate=0.5)) as sandbox:
        fixtures = sandbox.state.seed_demo_fixtures()
        answer = upload(sandbox.url, fixtures.meta_audience_id, [*HASHES[:1000], "not-a-hash"])
        [session] = sessions(sandbox.url, fixtures.meta_audience_id)
    assert session["session_id"] == answer["session_id"] and session["stage"] == "completed"
    assert (session["num_received"], session["num_invalid_entries"]) == ("1001", "1")
    assert session["num_matched"] == str(sum(hash_matches(value, 0.5) for value in HASHES[:1000]))


def test_config_round_trips_and_refuses_nonsense():
    config = SandboxConfig.from_dict({"meta_match_rate": 0.4, "meta_apply_delay_seconds": 3600})
    assert SandboxConfig.from_dict(config.to_dict()) == config
    assert SandboxConfig().meta_apply_delay_seconds == 0.0
    with pytest.raises(ValueError, match="meta_match_rate"):
        SandboxConfig(meta_match_rate=1.5)
    with pytest.raises(ValueError, match="meta_apply_delay_seconds"):
        SandboxConfig(meta_apply_delay_seconds=-1)


def test_an_upload_changes_the_size_only_after_the_application_delay(tmp_path):
    config = SandboxConfig(meta_match_rate=1.0, meta_apply_delay_seconds=1.0)
    with serve(db_path=tmp_path / "s.db", config=config) as sandbox:
        fixtures = sandbox.state.seed_demo_fixtures()
        url, audience = sandbox.url, fixtures.meta_audience_id
        upload(url, audience, HASHES[:50])
        assert size(url, audience) == (0, 0)
        assert [s["stage"] for s in sessions(url, audience)] == ["processing"]
        time.sleep(1.1)
        assert size(url, audience) == (50, 50)
        upload(url, audience, HASHES[:20], method="DELETE")
        assert size(url, audience) == (50, 50)  # the removal is not applied yet either
        assert [s["stage"] for s in sessions(url, audience)] == ["processing", "completed"]
        time.sleep(1.1)
        assert size(url, audience) == (30, 30)

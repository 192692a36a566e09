"""Meta Custom Audiences connector: hashing, request shapes and Graph error handling."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

import pytest

from airflow_segprovider.core.destination import (
    DestinationAuthError,
    DestinationConfigError,
    Record,
    TerminalDestinationError,
    UnsupportedOperationError,
)
from airflow_segprovider.destinations import create_client
from airflow_segprovider.destinations.meta import MetaCustomAudienceClient, normalize_and_hash

TOKEN = "EAAGm0PX4ZCpsBAKZCZCtestTOKENvalue1234567890"
APP_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
AUDIENCE = "23850000000000001"
USERS = f"/v25.0/{AUDIENCE}/users"


def make(server, **config) -> MetaCustomAudienceClient:
    settings = {"audience_id": AUDIENCE, "base_url": server.url, "backoff_base": 0.01}
    settings.update(config)
    client = create_client("meta", "meta_ads", settings, {"access_token": TOKEN, "app_secret": APP_SECRET})
    assert isinstance(client, MetaCustomAudienceClient)
    return client


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def users_ok(server):
    R = server.Reply

    def handler(seen, match):
        data = json.loads(seen.form()["payload"][0])["data"]
        return R(
            200,
            {
                "audience_id": AUDIENCE,
                "session_id": "1",
                "num_received": len(data),
                "num_invalid_entries": 0,
                "invalid_entry_samples": {},
            },
        )

    return handler


def test_normalise_then_hash_passthrough_and_empty():
    assert normalize_and_hash("  Foo.Bar@Example.COM \n") == sha("foo.bar@example.com")
    hashed = sha("x@y.org")
    assert normalize_and_hash(hashed.upper()) == hashed  # already hashed: passed through (lowercase hex)
    assert normalize_and_hash("   ") is None
    assert normalize_and_hash("") is None


def test_config_requires_audience_and_token_and_a_valid_version():
    with pytest.raises(DestinationConfigError) as caught:
        create_client("meta", "meta_ads", {"ad_account_id": "1234567890"}, {"access_token": TOKEN})
    assert caught.value.field == "audience_id"
    with pytest.raises(DestinationConfigError) as caught:
        create_client("meta", "meta_ads", {"audience_id": AUDIENCE}, {})
    assert caught.value.field == "access_token"
    with pytest.raises(DestinationConfigError) as caught:
        create_client("meta", "meta_ads", {"audience_id": AUDIENCE, "api_version": "25"}, {"access_token": TOKEN})
    assert caught.value.field == "api_version"


def test_add_members_sends_hashed_payload_with_token_and_proof(server):
    server.route("POST", USERS, users_ok(server))
    prehashed = sha("already@hashed.org")
    batch = [
        Record("a", " Alice@Example.com ", {"ignored": 1}),
        Record("b", prehashed.upper(), {}),
        Record("c", "", {}),
        Record("d", "alice@example.com", {}),  # same person as "a": sent once, both acknowledged
    ]
    with make(server) as client:
        result = client.add_members(batch)
    [call] = server.requests
    payload = json.loads(call.form()["payload"][0])
    assert payload == {"schema": "EMAIL_SHA256", "data": [sha("alice@example.com"), prehashed]}
    assert call.query["access_token"] == [TOKEN]
    assert call.query["appsecret_proof"] == [hmac.new(APP_SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()]
    assert sorted(result.acknowledged) == ["a", "b", "d"]
    assert [(r.key, r.code) for r in result.rejected] == [("c", "missing_identity")]


def test_batches_of_at_most_10000(server):
    server.route("POST", USERS, users_ok(server))
    batch = [Record(f"k{i}", f"user{i}@x.org") for i in range(25_001)]
    with make(server) as client:
        result = client.add_members(batch)
    sizes = [len(json.loads(s.form()["payload"][0])["data"]) for s in server.requests]
    assert sizes == [10_000, 10_000, 5_001]
    assert len(result.acknowledged) == 25_001


def test_remove_members_uses_delete(server):
    server.route("DELETE", USERS, users_ok(server))
    with make(server) as client:
        result = client.remove_members([Record("a", "a@x.org")], destination_ids={"a": "ignored"})
    [call] = server.requests
    assert call.method == "DELETE"
    assert json.loads(call.form()["payload"][0]) == {"schema": "EMAIL_SHA256", "data": [sha("a@x.org")]}
    assert result.acknowledged == ["a"]


def test_invalid_entry_samples_become_rejected(server, caplog):
    R = server.Reply
    bad = sha("b@x.org")
    server.route(
        "POST",
        USERS,
        lambda seen, match: R(
            200,
            {
                "audience_id": AUDIENCE,
                "num_received": 3,
                "num_invalid_entries": 2,
                "invalid_entry_samples": {bad: "Invalid format"},
            },
        ),
    )
    with make(server) as client:
        result = client.add_members([Record("a", "a@x.org"), Record("b", "b@x.org"), Record("c", "c@x.org")])
    assert [(r.key, r.code, r.message) for r in result.rejected] == [("b", "invalid_entry", "Invalid format")]
    assert sorted(result.acknowledged) == ["a", "c"]
    assert "counted 2 invalid entries but named only 1" in caplog.text


def test_upsert_sends_nothing(server):
    with make(server) as client:
        result = client.upsert([Record("a", "a@x.org", {"x": 1})])
    assert result.acknowledged == ["a"]
    assert server.requests == []


def test_members_cannot_be_read_back_but_counts_are_approximate(server):
    R = server.Reply
    server.route(
        "GET",
        f"/v25.0/{AUDIENCE}",
        lambda seen, match: R(
            200, {"id": AUDIENCE, "approximate_count_lower_bound": 1000, "approximate_count_upper_bound": 1200}
        ),
    )
    with make(server) as client:
        with pytest.raises(UnsupportedOperationError) as caught:
            list(client.iter_members())
        assert isinstance(caught.value, TerminalDestinationError)
        assert client.member_count() == 1000
        assert client.approximate_count_bounds() == (1000, 1200)
    assert server.requests[0].query["fields"] == ["approximate_count_lower_bound,approximate_count_upper_bound"]


def test_business_use_case_throttling_waits_and_is_not_an_attempt(server):
    R = server.Reply
    usage = json.dumps(
        {
            "123": [
                {
                    "type": "custom_audience",
                    "call_count": 100,
                    "total_cputime": 20,
                    "total_time": 20,
                    "estimated_time_to_regain_access": 0.005,
                }
            ]
        }
    )
    server.queue(
        R(
            400,
            {"error": {"message": "Too many calls", "type": "OAuthException", "code": 80003, "error_subcode": 2446079}},
            headers={"X-Business-Use-Case-Usage": usage},
        )
    )
    server.route("POST", USERS, users_ok(server))
    started = time.monotonic()
    with make(server, max_attempts=1) as client:
        result = client.add_members([Record("a", "a@x.org")])
    assert result.acknowledged == ["a"]
    assert time.monotonic() - started >= 0.28  # 0.005 minutes
    assert len(server.requests) == 2


def test_graph_transient_code_is_retried(server):
    R = server.Reply
    server.queue(R(400, {"error": {"message": "Service temporarily unavailable", "code": 2, "is_transient": True}}))
    server.route("POST", USERS, users_ok(server))
    with make(server) as client:
        assert client.add_members([Record("a", "a@x.org")]).acknowledged == ["a"]
    assert len(server.requests) == 2


def test_invalid_token_is_an_auth_error_without_the_token(server, caplog):
    R = server.Reply
    caplog.set_level(logging.DEBUG)
    server.queue(
        R(
            400,
            {
                "error": {
                    "message": "Error validating access token",
                    "type": "OAuthException",
                    "code": 190,
                    "error_subcode": 463,
                }
            },
        )
    )
    with make(server, connection_id="segprovider_meta") as client, pytest.raises(DestinationAuthError) as caught:
        client.add_members([Record("a", "a@x.org")])
    text = str(caught.value)
    assert "Error validating access token (code 190, subcode 463)" in text
    assert "segprovider_meta" in text
    assert TOKEN not in text and TOKEN not in caplog.text and APP_SECRET not in caplog.text


def test_check_refuses_flagged_audiences(server):
    R = server.Reply
    server.route(
        "GET",
        f"/v25.0/{AUDIENCE}",
        lambda seen, match: R(
            200, {"id": AUDIENCE, "subtype": "CUSTOM", "operation_status": {"code": 471, "description": "flagged"}}
        ),
    )
    with make(server) as client, pytest.raises(TerminalDestinationError, match="flagged"):
        client.check()


def test_check_explains_an_unknown_audience(server):
    R = server.Reply
    server.queue(
        R(
            400,
            {
                "error": {
                    "message": "Unsupported get request. Object with ID does not exist",
                    "type": "GraphMethodException",
                    "code": 100,
                    "error_subcode": 33,
                }
            },
        )
    )
    with make(server) as client, pytest.raises(TerminalDestinationError) as caught:
        client.check()
    assert "config.audience_id" in str(caught.value)
    assert not isinstance(caught.value, DestinationAuthError)



def test_an_identity_that_is_not_an_email_is_rejected_not_hashed_and_sent(server):
    """A hash of 'bad@@x' would be accepted by Meta and could never match anyone: refuse it before sending."""
    server.route("POST", USERS, users_ok(server))
    with make(server) as client:
        result = client.add_members([Record("good", "a@example.org"), Record("bad", "bad@@x")])
    assert [(r.key, r.code) for r in result.rejected] == [("bad", "invalid_email")]
    assert result.acknowledged == ["good"]
    [call] = server.requests
    assert json.loads(call.form()["payload"][0])["data"] == [sha("a@example.org")]

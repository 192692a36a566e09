"""Contract tests: every connector end to end against the local vendor sandbox.

Each test adds members, reads them back (or the size, for Meta), removes some and
checks the sandbox's own state, so a drift between a connector and the vendor
contract the sandbox implements fails here.
"""

from __future__ import annotations

import threading

import pytest

from airflow_segprovider.core.destination import DestinationAuthError, Record
from airflow_segprovider.destinations import create_client
from airflow_segprovider.destinations.meta import normalize_and_hash
from segprovider_sandbox import (
    DEFAULT_HUBSPOT_TOKEN,
    DEFAULT_MAILCHIMP_API_KEY,
    DEFAULT_META_ACCESS_TOKEN,
    DEFAULT_WEBHOOK_SECRET,
    RateLimit,
    SandboxConfig,
    VendorFaults,
    serve,
)

pytestmark = pytest.mark.integration

FAST_RETRIES = {"backoff_base": 0.01, "backoff_max": 0.05, "max_attempts": 8}



def customers(n: int, start: int = 0) -> list[Record]:
    return [
        Record(f"cust-{i}", f"Customer.{i}@Example.org", {"FNAME": f"C{i}", "firstname": f"C{i}"})
        for i in range(start, start + n)
    ]


def emails(records: list[Record]) -> set[str]:
    return {r.identity.lower() for r in records}


def test_mailchimp_static_segment_end_to_end(sandbox):
    fixtures = sandbox.fixtures
    config = {
        "list_id": fixtures.mailchimp_list_id,
        "segment_id": str(fixtures.mailchimp_segment_id),
        "base_url": f"{sandbox.url}/3.0",
        **FAST_RETRIES,
    }
    people = customers(1201)
    with create_client("mailchimp", "mailchimp_newsletter", config, {"api_key": DEFAULT_MAILCHIMP_API_KEY}) as client:
        client.check()
        added = client.add_members([*people, Record("bad", "not-an-email", {}), Record("blank", "", {})])
        assert sorted(r.key for r in added.rejected) == ["bad", "blank"]
        assert len(added.acknowledged) == 1201

        members = list(client.iter_members(page_size=1000))
        assert {m.identity.lower() for m in members} == emails(people)
        assert client.member_count() == 1201

        removed = client.remove_members(people[:600])
        assert len(removed.acknowledged) == 600 and not removed.rejected
        assert client.member_count() == 601

    in_segment = sandbox.state.mailchimp_segment_emails(fixtures.mailchimp_list_id, fixtures.mailchimp_segment_id)
    assert {e.lower() for e in in_segment} == emails(people[600:])
    # Leaving the segment does not unsubscribe anyone from the audience.
    member = sandbox.state.mailchimp_member(fixtures.mailchimp_list_id, people[0].identity)
    assert member is not None and member["status"] == "subscribed"


def test_mailchimp_tags_end_to_end(sandbox):
    config = {
        "list_id": sandbox.fixtures.mailchimp_list_id,
        "membership": "tags",
        "tag": "win_back",
        "base_url": f"{sandbox.url}/3.0",
        **FAST_RETRIES,
    }
    people = customers(30)
    with create_client("mailchimp", "mailchimp_newsletter", config, {"api_key": DEFAULT_MAILCHIMP_API_KEY}) as client:
        client.check()
        assert client.member_count() == 0  # the tag does not exist yet
        assert len(client.add_members(people).acknowledged) == 30
        assert {m.identity.lower() for m in client.iter_members(page_size=7)} == emails(people)
        client.remove_members(people[:10])
        assert {m.identity.lower() for m in client.iter_members()} == emails(people[10:])


def test_mailchimp_concurrency_stays_under_the_connection_cap(tmp_path):
    config = SandboxConfig(mailchimp_max_connections=3)
    with serve(db_path=tmp_path / "sandbox.db", config=config) as running:
        fixtures = running.state.seed_demo_fixtures()
        client_config = {
            "list_id": fixtures.mailchimp_list_id,
            "segment_id": str(fixtures.mailchimp_segment_id),
            "base_url": f"{running.url}/3.0",
            "max_concurrency": 3,
            **FAST_RETRIES,
        }
        with create_client("mailchimp", "mc", client_config, {"api_key": DEFAULT_MAILCHIMP_API_KEY}) as client:
            threads = [
                threading.Thread(target=client.add_members, args=(customers(40, start=100 * i),)) for i in range(6)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert client.member_count() == 240
        assert not [r for r in running.state.requests("mailchimp") if r.status == 429]


def test_hubspot_end_to_end(sandbox):
    list_id = sandbox.fixtures.hubspot_list_id
    config = {"list_id": list_id, "base_url": sandbox.url, **FAST_RETRIES}
    people = customers(250)
    with create_client("hubspot", "hubspot_crm", config, {"access_token": DEFAULT_HUBSPOT_TOKEN}) as client:
        client.check()
        added = client.add_members([*people, Record("bad", "not-an-email", {})])
        assert len(added.acknowledged) == 250
        assert [r.key for r in added.rejected] == ["bad"]
        ids = added.destination_ids
        assert set(ids) == {p.key for p in people}

        members = list(client.iter_members(page_size=100))
        assert {m.identity for m in members} == emails(people)
        assert {m.destination_id for m in members} == set(ids.values())
        assert client.member_count() == 250

        # Half the removals know their ids from the sync state, the other half are looked up by email.
        known = {p.key: ids[p.key] for p in people[:50]}
        removed = client.remove_members(people[:100], destination_ids=known)
        assert len(removed.acknowledged) == 100
        assert removed.destination_ids == {p.key: ids[p.key] for p in people[:100]}
        assert client.member_count() == 150

    assert sandbox.state.hubspot_list_emails(list_id) == emails(people[100:])
    assert sandbox.state.hubspot_contact(people[0].identity.lower())["properties"]["firstname"] == "C0"


def test_meta_end_to_end(sandbox):
    audience = sandbox.fixtures.meta_audience_id
    config = {"audience_id": audience, "base_url": sandbox.url, **FAST_RETRIES}
    people = customers(150)
    with create_client("meta", "meta_ads", config, {"access_token": DEFAULT_META_ACCESS_TOKEN}) as client:
        client.check()
        added = client.add_members([*people, Record("blank", " ", {})])
        assert len(added.acknowledged) == 150
        assert [r.key for r in added.rejected] == ["blank"]
        lower, upper = client.approximate_count_bounds()
        assert lower <= 150  # Meta reports the people it matched: at most those sent
        assert client.member_count() == lower
        reported = client.reported_count()  # the matched range, so a count check can hold 150 sent to it
        assert (reported.value, reported.lower, reported.upper) == (lower, lower, upper)
        assert reported.drift_from(150) == 0.0

        client.remove_members(people[:50])
    expected = {normalize_and_hash(p.identity) for p in people[50:]}
    assert sandbox.state.meta_audience_hashes(audience) == expected


def test_webhook_end_to_end(sandbox):
    config = {"url": f"{sandbox.url}/webhook/crm_hook", "batch_size": 40, **FAST_RETRIES}
    people = customers(100)
    with create_client("webhook", "crm_hook", config, {"signing_secret": DEFAULT_WEBHOOK_SECRET}) as client:
        client.check()
        assert len(client.add_members(people).acknowledged) == 100
        assert len(client.remove_members(people[:10]).acknowledged) == 10
    batches = sandbox.state.webhook_batches("crm_hook")
    assert [b["action"] for b in batches] == ["check", "add", "add", "add", "remove"]
    assert [len(b["records"]) for b in batches] == [0, 40, 40, 20, 10]

    wrong = {"signing_secret": "not-the-secret"}
    with create_client("webhook", "crm_hook", config, wrong) as client, pytest.raises(DestinationAuthError):
        client.check()


def test_connectors_ride_out_injected_faults(tmp_path):
    flaky = VendorFaults(error_rate=0.25, drop_rate=0.1, slow_rate=0.1, slow_seconds=0.4)
    config = SandboxConfig(
        seed=7,
        faults={
            "mailchimp": VendorFaults(
                rate_limit=RateLimit(max_requests=2, window_seconds=1.0), error_rate=0.25, drop_rate=0.1
            ),
            "hubspot": flaky,
            "meta": flaky,
            "webhook": flaky,
        },
    )
    with serve(db_path=tmp_path / "sandbox.db", config=config) as running:
        fixtures = running.state.seed_demo_fixtures()
        retry = {**FAST_RETRIES, "max_attempts": 10, "read_timeout": 0.3}
        people = customers(120)

        mailchimp_config = {
            "list_id": fixtures.mailchimp_list_id,
            "segment_id": str(fixtures.mailchimp_segment_id),
            "base_url": f"{running.url}/3.0",
            **retry,
        }
        with create_client("mailchimp", "mc", mailchimp_config, {"api_key": DEFAULT_MAILCHIMP_API_KEY}) as client:
            assert len(client.add_members(people).acknowledged) == 120
            client.remove_members(people[:20])
        hubspot_config = {"list_id": fixtures.hubspot_list_id, "base_url": running.url, **retry}
        with create_client("hubspot", "hs", hubspot_config, {"access_token": DEFAULT_HUBSPOT_TOKEN}) as client:
            assert len(client.add_members(people).acknowledged) == 120
        meta_config = {"audience_id": fixtures.meta_audience_id, "base_url": running.url, **retry}
        with create_client("meta", "meta", meta_config, {"access_token": DEFAULT_META_ACCESS_TOKEN}) as client:
            assert len(client.add_members(people).acknowledged) == 120

        segment = running.state.mailchimp_segment_emails(fixtures.mailchimp_list_id, fixtures.mailchimp_segment_id)
        assert {e.lower() for e in segment} == emails(people[20:])
        assert running.state.hubspot_list_emails(fixtures.hubspot_list_id) == emails(people)
        assert len(running.state.meta_audience_hashes(fixtures.meta_audience_id)) == 120
        faults = {r.fault for r in running.state.requests() if r.fault}
        assert {"rate_limited", "error"} <= faults

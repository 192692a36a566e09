"""HubSpot connector: request shapes and response handling against a scripted CRM API."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from airflow_segprovider.core.destination import (
    DestinationAuthError,
    DestinationConfigError,
    QuotaExhaustedError,
    Record,
    TerminalDestinationError,
)
from airflow_segprovider.destinations import create_client
from airflow_segprovider.destinations.hubspot import HubSpotClient

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
LIST = "321"
UPSERT = "/crm/v3/objects/contacts/batch/upsert"
READ = "/crm/v3/objects/contacts/batch/read"
MEMBERSHIP = f"/crm/v3/lists/{LIST}/memberships/add-and-remove"


def make(server, **config) -> HubSpotClient:
    settings = {"list_id": LIST, "base_url": server.url, "backoff_base": 0.01, "requests_per_second": None}
    settings.update(config)
    settings = {k: v for k, v in settings.items() if v is not None}
    client = create_client("hubspot", "hubspot_crm", settings, {"access_token": TOKEN})
    assert isinstance(client, HubSpotClient)
    return client


def contact_id(email: str) -> str:
    return str(1000 + sum(email.encode()))


def upsert_ok(server):
    R = server.Reply

    def handler(seen, match):
        inputs = seen.json()["inputs"]
        return R(
            200,
            {
                "status": "COMPLETE",
                "results": [{"id": contact_id(i["id"]), "properties": {"email": i["id"]}, "new": True} for i in inputs],
            },
        )

    return handler


def membership_ok(server, missing=()):
    R = server.Reply

    def handler(seen, match):
        body = seen.json()
        return R(
            200,
            {
                "recordIdsAdded": [i for i in body["recordIdsToAdd"] if i not in missing],
                "recordIdsRemoved": [i for i in body["recordIdsToRemove"] if i not in missing],
                "recordIdsMissing": [i for i in body["recordIdsToAdd"] + body["recordIdsToRemove"] if i in missing],
            },
        )

    return handler


def people(n: int) -> list[Record]:
    return [
        Record(f"k{i}", f"Person{i}@Example.com", {"firstname": f"P{i}", "lifetime_value": i * 1.5}) for i in range(n)
    ]


def test_config_requires_list_id_and_token():
    with pytest.raises(DestinationConfigError) as caught:
        create_client("hubspot", "hubspot_crm", {}, {"access_token": TOKEN})
    assert caught.value.field == "list_id"
    with pytest.raises(DestinationConfigError) as caught:
        create_client("hubspot", "hubspot_crm", {"list_id": LIST, "connection_id": "segprovider_hubspot"}, {})
    assert caught.value.field == "access_token"
    assert "segprovider_hubspot" in str(caught.value)


def test_default_pacing_stays_under_190_requests_per_10_seconds():
    with create_client("hubspot", "h", {"list_id": LIST}, {"access_token": TOKEN}) as client:
        settings = client.http.settings
        assert settings.base_url == "https://api.hubapi.com"
        assert settings.burst + settings.requests_per_second * 10 <= 190


def test_upsert_by_email_in_calls_of_at_most_100(server):
    server.route("POST", UPSERT, upsert_ok(server))
    with make(server) as client:
        result = client.upsert(people(250))
    calls = server.seen("POST", UPSERT)
    assert [len(c.json()["inputs"]) for c in calls] == [100, 100, 50]
    first = calls[0].json()["inputs"][0]
    assert first == {
        "idProperty": "email",
        "id": "person0@example.com",
        "properties": {"firstname": "P0", "lifetime_value": "0.0", "email": "person0@example.com"},
    }
    assert calls[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert len(result.acknowledged) == 250
    assert result.destination_ids["k3"] == contact_id("person3@example.com")


def test_207_partial_failures_become_rejected_records(server):
    R = server.Reply
    server.route(
        "POST",
        UPSERT,
        lambda seen, match: R(
            207,
            {
                "status": "COMPLETE",
                "results": [{"id": "501", "properties": {"email": "person0@example.com"}}],
                "numErrors": 1,
                "errors": [
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": "Property values were not valid",
                        "context": {"ids": ["person1@example.com"]},
                    }
                ],
            },
        ),
    )
    server.route("POST", READ, lambda seen, match: R(200, {"results": []}))
    with make(server) as client:
        result = client.upsert(people(2))
    assert result.acknowledged == ["k0"]
    assert result.destination_ids == {"k0": "501"}
    [rejected] = result.rejected
    assert (rejected.key, rejected.code, rejected.message) == (
        "k1",
        "VALIDATION_ERROR",
        "Property values were not valid",
    )
    assert not server.seen("POST", READ)  # every contact was accounted for


def test_results_without_emails_fall_back_to_batch_read(server):
    R = server.Reply
    server.route("POST", UPSERT, lambda seen, match: R(200, {"results": [{"id": "9", "properties": {}}]}))
    server.route(
        "POST",
        READ,
        lambda seen, match: R(
            207,
            {
                "results": [{"id": "9", "properties": {"email": "person0@example.com"}}],
                "errors": [
                    {"status": "error", "category": "OBJECT_NOT_FOUND", "context": {"ids": ["person1@example.com"]}}
                ],
            },
        ),
    )
    with make(server) as client:
        result = client.upsert(people(2))
    [read] = server.seen("POST", READ)
    assert read.json() == {
        "idProperty": "email",
        "properties": ["email"],
        "inputs": [{"id": "person0@example.com"}, {"id": "person1@example.com"}],
    }
    assert result.destination_ids == {"k0": "9"}
    assert [(r.key, r.code) for r in result.rejected] == [("k1", "unconfirmed")]


def test_add_members_uses_the_upserted_ids(server):
    server.route("POST", UPSERT, upsert_ok(server))
    missing = contact_id("person2@example.com")
    server.route("PUT", MEMBERSHIP, membership_ok(server, missing={missing}))
    with make(server) as client:
        result = client.add_members(people(3))
    [put] = server.seen("PUT", MEMBERSHIP)
    assert put.json() == {
        "recordIdsToAdd": [contact_id(f"person{i}@example.com") for i in range(3)],
        "recordIdsToRemove": [],
    }
    assert sorted(result.acknowledged) == ["k0", "k1"]
    assert [(r.key, r.code) for r in result.rejected] == [("k2", "record_missing")]
    assert set(result.destination_ids) == {"k0", "k1"}


def test_remove_members_uses_known_ids_and_looks_up_the_rest(server):
    R = server.Reply
    server.route(
        "POST",
        READ,
        lambda seen, match: R(
            207,
            {
                "results": [{"id": "77", "properties": {"email": "person1@example.com"}}],
                "errors": [{"category": "OBJECT_NOT_FOUND", "context": {"ids": ["person2@example.com"]}}],
            },
        ),
    )
    server.route("PUT", MEMBERSHIP, membership_ok(server))
    with make(server) as client:
        result = client.remove_members(people(3), destination_ids={"k0": "55"})
    [read] = server.seen("POST", READ)
    assert [i["id"] for i in read.json()["inputs"]] == ["person1@example.com", "person2@example.com"]
    [put] = server.seen("PUT", MEMBERSHIP)
    assert put.json() == {"recordIdsToRemove": ["55", "77"], "recordIdsToAdd": []}
    # person2 is unknown to HubSpot, so it is not in the list: acknowledged.
    assert sorted(result.acknowledged) == ["k0", "k1", "k2"]
    assert result.destination_ids == {"k0": "55", "k1": "77"}


def test_iter_members_follows_the_after_cursor(server):
    R = server.Reply
    pages = {
        None: {
            "results": [
                {"recordId": "1", "membershipTimestamp": "2024-06-01T10:00:00Z"},
                {"recordId": "2", "membershipTimestamp": "2024-06-02T10:00:00Z"},
            ],
            "paging": {"next": {"after": "cursor-2"}},
            "total": 3,
        },
        "cursor-2": {"results": [{"recordId": "3", "membershipTimestamp": "2024-06-03T10:00:00Z"}], "total": 3},
    }
    server.route(
        "GET",
        f"/crm/v3/lists/{LIST}/memberships",
        lambda seen, match: R(200, pages[seen.query.get("after", [None])[0]]),
    )
    server.route(
        "POST",
        READ,
        lambda seen, match: R(
            200,
            {"results": [{"id": i["id"], "properties": {"email": f"m{i['id']}@x.org"}} for i in seen.json()["inputs"]]},
        ),
    )
    with make(server) as client:
        members = list(client.iter_members(page_size=2))
    assert [(m.identity, m.destination_id) for m in members] == [
        ("m1@x.org", "1"),
        ("m2@x.org", "2"),
        ("m3@x.org", "3"),
    ]
    assert members[0].last_changed == datetime(2024, 6, 1, 10, tzinfo=timezone.utc)
    gets = server.seen("GET")
    assert [g.query.get("after") for g in gets] == [None, ["cursor-2"]]
    assert gets[0].query["limit"] == ["2"]
    assert "idProperty" not in server.seen("POST", READ)[0].json()


def test_member_count_reads_the_list_size(server):
    R = server.Reply
    server.route("GET", f"/crm/v3/lists/{LIST}", lambda seen, match: R(200, {"list": {"listId": LIST, "size": 12}}))
    with make(server) as client:
        assert client.member_count() == 12


def test_check_refuses_dynamic_lists(server):
    R = server.Reply
    server.route(
        "GET",
        f"/crm/v3/lists/{LIST}",
        lambda seen, match: R(200, {"list": {"listId": LIST, "processingType": "DYNAMIC", "objectTypeId": "0-1"}}),
    )
    with make(server) as client, pytest.raises(TerminalDestinationError) as caught:
        client.check()
    assert "MANUAL or SNAPSHOT" in str(caught.value)


def test_check_reports_a_bad_token_without_showing_it(server):
    R = server.Reply
    server.queue(
        R(
            401,
            {
                "status": "error",
                "message": f"Authentication credentials not found for {TOKEN}",
                "category": "INVALID_AUTHENTICATION",
            },
        )
    )
    with make(server, connection_id="segprovider_hubspot") as client, pytest.raises(DestinationAuthError) as caught:
        client.check()
    text = str(caught.value)
    assert "segprovider_hubspot" in text and "INVALID_AUTHENTICATION" in text
    assert TOKEN not in text


def test_low_remaining_quota_slows_the_destination_down(server):
    """Nothing left in the rolling window (https://developers.hubspot.com/docs/api/usage-details): wait for two
    of its slots (-Interval-Milliseconds / -Max each) to free up."""
    R = server.Reply
    headers = {
        "X-HubSpot-RateLimit-Remaining": "0",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "400",
        "X-HubSpot-RateLimit-Max": "2",
    }
    server.queue(R(200, {"list": {"size": 1}}, headers=headers))
    server.route("GET", f"/crm/v3/lists/{LIST}", lambda seen, match: R(200, {"list": {"size": 1}}))
    with make(server) as client:
        client.member_count()
        client.member_count()
    assert server.requests[1].at - server.requests[0].at >= 0.35


def test_ten_secondly_429_waits_for_the_interval(server):
    R = server.Reply
    server.queue(
        R(
            429,
            {
                "status": "error",
                "errorType": "RATE_LIMIT",
                "policyName": "TEN_SECONDLY_ROLLING",
                "message": "You have reached your ten_secondly_rolling limit.",
            },
            headers={"X-HubSpot-RateLimit-Interval-Milliseconds": "300"},
        )
    )
    server.route("GET", f"/crm/v3/lists/{LIST}", lambda seen, match: R(200, {"list": {"size": 1}}))
    started = time.monotonic()
    with make(server, max_attempts=1) as client:
        assert client.member_count() == 1
    assert time.monotonic() - started >= 0.28


def test_daily_429_stops_at_once_as_terminal_for_today_naming_the_limit(server):
    """HubSpot's daily limit answers 429 with ``policyName`` ``DAILY`` and resets at midnight in the account's
    time zone (https://developers.hubspot.com/docs/api/usage-details): no retry today can help."""
    R = server.Reply
    server.queue(
        R(
            429,
            {
                "status": "error",
                "errorType": "RATE_LIMIT",
                "policyName": "DAILY",
                "message": "You have reached your daily limit.",
            },
            headers={"X-HubSpot-RateLimit-Daily": "250000", "X-HubSpot-RateLimit-Daily-Remaining": "0"},
        )
    )
    with make(server) as client:
        with pytest.raises(QuotaExhaustedError, match="daily API limit of 250000 requests") as caught:
            client.member_count()
        assert caught.value.limit == "DAILY" and not caught.value.retryable
        assert "resets at midnight" in str(caught.value)
        with pytest.raises(QuotaExhaustedError):  # the client asks HubSpot nothing more today
            client.member_count()
    assert len(server.requests) == 1


def test_a_client_paced_to_its_tier_is_not_slowed_by_the_few_requests_its_pace_leaves():
    """Paced to 99 % of Professional's 190 per 10 s, about 3 requests of each window stay unused: that is no
    reason to pause (a whole-interval pause at every low reading cost 15 % of the throughput)."""
    import requests

    from airflow_segprovider.destinations.hubspot import HubSpotResponsePolicy

    def answer(remaining: str) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response.headers.update({"X-HubSpot-RateLimit-Remaining": remaining, "X-HubSpot-RateLimit-Max": "190",
                                 "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
        return response

    policy = HubSpotResponsePolicy()
    assert policy.pace(answer("3")) == 0.0
    assert policy.pace(answer("0")) == pytest.approx(2 * 10 / 190)


# --- tiers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tier", "limit"), [("free", 100), ("starter", 100), ("professional", 190),
                                             ("enterprise", 190), ("api_limit_increase", 250)])
def test_each_tier_is_paced_under_its_documented_limit(tier, limit):
    """Burst limits per 10 s (https://developers.hubspot.com/docs/api/usage-details,
    https://developers.hubspot.com/changelog/increasing-our-api-limits): what the token bucket lets through
    in any 10 s window (its burst, then its rate) stays at or under the tier's limit, and close to it."""
    with create_client("hubspot", "h", {"list_id": LIST, "tier": tier}, {"access_token": TOKEN}) as client:
        settings = client.http.settings
        admitted = settings.burst + settings.requests_per_second * 10
        assert client.config.tier == tier and 0.95 * limit <= admitted <= limit


def test_the_tier_comes_from_the_connection_extra():
    from airflow_segprovider.destinations.connection import split_connection

    config, _ = split_connection("hubspot", {"password": TOKEN, "extra": {"tier": "free"}})
    assert config["tier"] == "free"
    with create_client("hubspot", "h", {"list_id": LIST, **config}, {"access_token": TOKEN}) as client:
        assert client.http.settings.burst + client.http.settings.requests_per_second * 10 <= 100


def test_an_unknown_tier_is_refused_naming_the_field_and_the_tiers():
    with pytest.raises(DestinationConfigError, match="tier.*free, starter, professional") as caught:
        create_client("hubspot", "h", {"list_id": LIST, "tier": "gold"}, {"access_token": TOKEN})
    assert caught.value.field == "tier"


def test_an_explicit_pace_wins_over_the_tier():
    with create_client("hubspot", "h", {"list_id": LIST, "tier": "free", "requests_per_second": 2, "burst": 1},
                       {"access_token": TOKEN}) as client:
        assert (client.http.settings.requests_per_second, client.http.settings.burst) == (2, 1)


# --- check_fields -----------------------------------------------------------------------------


def properties_route(server, names):
    R = server.Reply
    server.route(
        "GET",
        "/crm/v3/properties/contacts",
        lambda seen, match: R(200, {"results": [{"name": n, "label": n.title(), "type": "string"} for n in names]}),
    )


def test_check_fields_passes_when_every_property_exists(server):
    properties_route(server, ["email", "firstname", "country", "lifetime_value"])
    with make(server) as client:
        client.check_fields(["country", "firstname", "lifetime_value"])
    assert [s.path for s in server.requests] == ["/crm/v3/properties/contacts"]


def test_check_fields_names_the_missing_properties_and_the_fix(server):
    properties_route(server, ["email", "firstname", "country"])
    with make(server) as client, pytest.raises(DestinationConfigError) as caught:
        client.check_fields(["country", "favourite_colour", "lifetime_value"])
    message = str(caught.value)
    assert "hubspot_crm" in message
    assert "create contact properties favourite_colour, lifetime_value" in message
    assert "change field_mapping of destination 'hubspot_crm' in destinations.yml" in message


def test_check_fields_follows_paging_when_hubspot_pages(server):
    R = server.Reply
    server.queue(
        R(200, {"results": [{"name": "email"}], "paging": {"next": {"after": "p2"}}}),
        R(200, {"results": [{"name": "lifetime_value"}]}),
    )
    with make(server) as client:
        client.check_fields(["lifetime_value"])
    assert [s.query.get("after") for s in server.requests] == [None, ["p2"]]


# --- against the sandbox: HubSpot's throttling as documented ------------------------------------------


def throttled_sandbox(tmp_path, **faults):
    """The sandbox with HubSpot's limits scaled down (its 429s and headers as HubSpot sends them)."""
    from segprovider_sandbox import SandboxConfig, VendorFaults, serve

    return serve(db_path=tmp_path / "sandbox.db", config=SandboxConfig(faults={"hubspot": VendorFaults(**faults)}))


def sandbox_client(sandbox, **config) -> HubSpotClient:
    from segprovider_sandbox import DEFAULT_HUBSPOT_TOKEN

    list_id = str(sandbox.state.seed_demo_fixtures().hubspot_list_id)
    settings = {"list_id": list_id, "base_url": sandbox.url, "backoff_base": 0.01, **config}
    client = create_client("hubspot", "hubspot_crm", settings, {"access_token": DEFAULT_HUBSPOT_TOKEN})
    assert isinstance(client, HubSpotClient)
    return client


@pytest.mark.integration
def test_a_burst_429_without_retry_after_waits_out_the_window_the_headers_give(tmp_path, caplog):
    """No Retry-After on HubSpot's 429 (https://developers.hubspot.com/docs/api/usage-details): the client
    pauses for ``X-HubSpot-RateLimit-Interval-Milliseconds`` and every request still succeeds."""
    import requests

    from segprovider_sandbox import DEFAULT_HUBSPOT_TOKEN, RateLimit

    with throttled_sandbox(tmp_path, rate_limit=RateLimit(4, 0.8)) as sandbox:
        with caplog.at_level("WARNING"), sandbox_client(sandbox, max_concurrency=1) as client:
            for _ in range(4):  # another app of the account spends the window first
                requests.get(f"{sandbox.url}/crm/v3/lists/{client.config.list_id}", timeout=5,
                             headers={"Authorization": f"Bearer {DEFAULT_HUBSPOT_TOKEN}"})
            assert client.member_count() == 0
        answers = [r.status for r in sandbox.state.requests("hubspot")]
    assert answers[:5] == [200, 200, 200, 200, 429] and answers[-1] == 200
    assert "pausing the destination 0.80s" in caplog.text  # the window the headers give (no Retry-After)


@pytest.mark.integration
def test_a_spent_daily_limit_stops_the_sync_for_today_keeping_what_was_acknowledged(tmp_path):
    """Past the daily limit (https://developers.hubspot.com/docs/api/usage-details) the batches HubSpot
    acknowledged stay in the list, the next batch fails as terminal for today, naming the limit, and no
    further request is made."""
    batches = [people(100)[i:i + 20] for i in range(0, 100, 20)]  # each batch: an upsert and a membership call
    from segprovider_sandbox import RateLimit

    with throttled_sandbox(tmp_path, rate_limit=RateLimit(190, 10.0), daily_limit=5) as sandbox:
        acknowledged: list[str] = []
        with sandbox_client(sandbox) as client:
            with pytest.raises(QuotaExhaustedError, match="daily API limit of 5 requests") as caught:
                for batch in batches:  # as the sync engine sends them, committing each acknowledged batch
                    acknowledged += client.add_members(batch).acknowledged
            requests_made = len(sandbox.state.requests("hubspot"))
            with pytest.raises(QuotaExhaustedError):
                client.add_members(batches[-1])
            assert len(sandbox.state.requests("hubspot")) == requests_made
        held = sandbox.state.hubspot_list_emails(sandbox.state.seed_demo_fixtures().hubspot_list_id)
    assert caught.value.limit == "DAILY" and not caught.value.retryable
    assert len(acknowledged) == 40 and {email.lower() for email in held} == {
        record.identity.lower() for batch in batches[:2] for record in batch}

"""Mailchimp connector: request shapes and response handling against a scripted Marketing API."""

from __future__ import annotations

import base64
import hashlib
import threading
from datetime import date, datetime, timezone

import pytest

from airflow_segprovider.core.destination import (
    DestinationAuthError,
    DestinationConfigError,
    Record,
    TerminalDestinationError,
)
from airflow_segprovider.destinations import create_client
from airflow_segprovider.destinations.mailchimp import MailchimpClient, subscriber_hash

API_KEY = "0123456789abcdef0123456789abcdef-us6"
LIST = "a1b2c3d4e5"


def make(server, **config) -> MailchimpClient:
    settings = {"list_id": LIST, "segment_id": "77", "base_url": f"{server.url}/3.0", "backoff_base": 0.01}
    settings.update(config)
    client = create_client("mailchimp", "mailchimp_newsletter", settings, {"api_key": API_KEY})
    assert isinstance(client, MailchimpClient)
    return client


def records(n: int, start: int = 0) -> list[Record]:
    return [
        Record(key=f"c{i}", identity=f"User{i}@Example.com", attributes={"FNAME": f"U{i}"})
        for i in range(start, start + n)
    ]


def batch_ok(server):
    R = server.Reply

    def handler(seen, match):
        members = seen.json()["members"]
        return R(
            200,
            {
                "new_members": [{"email_address": m["email_address"]} for m in members],
                "updated_members": [],
                "errors": [],
                "total_created": len(members),
                "total_updated": 0,
                "error_count": 0,
            },
        )

    return handler


def segment_ok(server):
    R = server.Reply

    def handler(seen, match):
        body = seen.json()
        added = body.get("members_to_add", [])
        removed = body.get("members_to_remove", [])
        return R(
            200,
            {
                "members_added": [{"email_address": e} for e in added],
                "members_removed": [{"email_address": e} for e in removed],
                "errors": [],
                "total_added": len(added),
                "total_removed": len(removed),
                "error_count": 0,
            },
        )

    return handler


# --- configuration ----------------------------------------------------------------------------


def test_data_center_comes_from_the_api_key_suffix():
    client = create_client("mailchimp", "mc", {"list_id": LIST, "segment_id": "1"}, {"api_key": API_KEY})
    with client:
        assert client.http.settings.base_url == "https://us6.api.mailchimp.com/3.0"
        assert client.http.settings.max_concurrency == 10
        assert API_KEY not in repr(client)


@pytest.mark.parametrize(
    ("config", "credentials", "field"),
    [
        ({"segment_id": "1"}, {"api_key": API_KEY}, "list_id"),
        ({"list_id": LIST, "segment_id": "1"}, {}, "api_key"),
        ({"list_id": LIST, "segment_id": "1"}, {"api_key": "no-suffix-here"}, "api_key"),
        ({"list_id": LIST}, {"api_key": API_KEY}, "segment_id"),
        ({"list_id": LIST, "membership": "tags"}, {"api_key": API_KEY}, "tag"),
        ({"list_id": LIST, "membership": "groups", "segment_id": "1"}, {"api_key": API_KEY}, "membership"),
        ({"list_id": LIST, "segment_id": "1", "max_concurrency": 11}, {"api_key": API_KEY}, "max_concurrency"),
        ({"list_id": LIST, "segment_id": "1", "base_url": "ftp://x"}, {"api_key": API_KEY}, "base_url"),
    ],
)
def test_invalid_config_names_destination_and_field(config, credentials, field):
    with pytest.raises(DestinationConfigError) as caught:
        create_client(
            "mailchimp", "mailchimp_newsletter", {"connection_id": "segprovider_mailchimp", **config}, credentials
        )
    assert caught.value.field == field
    assert "mailchimp_newsletter" in str(caught.value)
    if field == "api_key":
        assert "segprovider_mailchimp" in str(caught.value)


def test_subscriber_hash_matches_mailchimp_docs():
    # Example from Mailchimp's "Manage subscribers" guide.
    assert subscriber_hash("Urist.McVankab@freddiesjokes.com") == "62eeb292278cc15f5817cb78f7790b08"


# --- writes -----------------------------------------------------------------------------------


def test_1201_members_take_three_calls_of_at_most_500(server):
    server.route("POST", rf"/3.0/lists/{LIST}", batch_ok(server))
    server.route("POST", rf"/3.0/lists/{LIST}/segments/77", segment_ok(server))
    with make(server) as client:
        result = client.add_members(records(1201))
    subscribes = server.seen("POST", rf"/3.0/lists/{LIST}")
    segment_calls = server.seen("POST", rf"/3.0/lists/{LIST}/segments/77")
    assert [len(s.json()["members"]) for s in subscribes] == [500, 500, 201]
    assert [len(s.json()["members_to_add"]) for s in segment_calls] == [500, 500, 201]
    assert len(result.acknowledged) == 1201 and not result.rejected
    first = subscribes[0].json()
    assert first["update_existing"] is True
    assert first["members"][0] == {
        "email_address": "User0@Example.com",
        "status": "subscribed",
        "merge_fields": {"FNAME": "U0"},
    }
    assert result.destination_ids["c0"] == hashlib.md5(b"user0@example.com").hexdigest()
    auth = subscribes[0].headers["Authorization"]
    assert base64.b64decode(auth.removeprefix("Basic ")).decode().endswith(f":{API_KEY}")


def test_per_member_errors_in_a_200_become_rejected_records(server):
    R = server.Reply
    server.route(
        "POST",
        rf"/3.0/lists/{LIST}",
        lambda seen, match: R(
            200,
            {
                "new_members": [{"email_address": "user0@example.com"}],
                "updated_members": [],
                "errors": [
                    {
                        "email_address": "User1@Example.com",
                        "error": "looks fake or invalid",
                        "error_code": "ERROR_GENERIC",
                        "field": "email_address",
                        "field_message": "invalid",
                    }
                ],
                "total_created": 1,
                "total_updated": 0,
                "error_count": 1,
            },
        ),
    )
    server.route("POST", rf"/3.0/lists/{LIST}/segments/77", segment_ok(server))
    with make(server) as client:
        result = client.add_members(records(2))
    assert result.acknowledged == ["c0"]
    [rejected] = result.rejected
    assert (rejected.key, rejected.code) == ("c1", "ERROR_GENERIC")
    assert "looks fake" in rejected.message
    # The rejected contact is not added to the segment.
    assert server.seen("POST", rf"/3.0/lists/{LIST}/segments/77")[0].json() == {"members_to_add": ["User0@Example.com"]}


def test_segment_errors_and_blank_identities_are_rejected_per_record(server):
    R = server.Reply
    server.route("POST", rf"/3.0/lists/{LIST}", batch_ok(server))
    server.route(
        "POST",
        rf"/3.0/lists/{LIST}/segments/77",
        lambda seen, match: R(
            200,
            {
                "members_added": [],
                "members_removed": [],
                "errors": [{"email_addresses": ["user1@example.com"], "error": "cannot add"}],
                "total_added": 1,
                "total_removed": 0,
                "error_count": 1,
            },
        ),
    )
    batch = [*records(2), Record("blank", "  ", {})]
    with make(server) as client:
        result = client.add_members(batch)
    assert result.acknowledged == ["c0"]
    assert {(r.key, r.code) for r in result.rejected} == {("c1", "segment_error"), ("blank", "missing_identity")}


def test_one_contact_under_two_keys_is_sent_once(server):
    server.route("POST", rf"/3.0/lists/{LIST}", batch_ok(server))
    with make(server) as client:
        result = client.upsert([Record("a", "Same@x.org", {"FNAME": "A"}), Record("b", "same@X.org ", {"LNAME": "B"})])
    [call] = server.seen("POST", rf"/3.0/lists/{LIST}")
    assert call.json()["members"] == [
        {"email_address": "Same@x.org", "status": "subscribed", "merge_fields": {"FNAME": "A", "LNAME": "B"}}
    ]
    assert sorted(result.acknowledged) == ["a", "b"]


def test_merge_field_values_are_converted(server):
    server.route("POST", rf"/3.0/lists/{LIST}", batch_ok(server))
    attributes = {
        "SIGNUP": date(2024, 5, 1),
        "SEEN": datetime(2024, 5, 2, 8, tzinfo=timezone.utc),
        "VIP": True,
        "CITY": None,
        "LTV": 12.5,
    }
    with make(server) as client:
        client.upsert([Record("a", "a@x.org", attributes)])
    merge = server.requests[0].json()["members"][0]["merge_fields"]
    assert merge == {"SIGNUP": "2024-05-01", "SEEN": "2024-05-02", "VIP": "true", "CITY": "", "LTV": 12.5}


def test_remove_uses_members_to_remove_and_never_unsubscribes(server):
    server.route("POST", rf"/3.0/lists/{LIST}/segments/77", segment_ok(server))
    with make(server) as client:
        result = client.remove_members(records(3))
    assert [s.path for s in server.requests] == [f"/3.0/lists/{LIST}/segments/77"]
    assert server.requests[0].json() == {
        "members_to_remove": ["User0@Example.com", "User1@Example.com", "User2@Example.com"]
    }
    assert result.acknowledged == ["c0", "c1", "c2"]


def test_addresses_mailchimp_cannot_remove_count_as_removed(server):
    R = server.Reply
    server.route(
        "POST",
        rf"/3.0/lists/{LIST}/segments/77",
        lambda seen, match: R(
            200,
            {
                "members_added": [],
                "members_removed": [{"email_address": "user0@example.com"}],
                "errors": [{"email_addresses": ["User1@Example.com"], "error": "not members of this list"}],
                "total_added": 0,
                "total_removed": 1,
                "error_count": 1,
            },
        ),
    )
    with make(server) as client:
        result = client.remove_members(records(2))
    assert result.acknowledged == ["c0", "c1"]
    assert not result.rejected


def test_tags_mode_finds_the_exact_tag_or_creates_it_once(server):
    R = server.Reply
    created = []

    def create(seen, match):
        created.append(seen.json())
        return R(200, {"id": 901, "name": "vip", "type": "static", "member_count": 0})

    server.route(
        "GET",
        rf"/3.0/lists/{LIST}/tag-search",
        lambda seen, match: R(200, {"tags": [{"id": 5, "name": "vip-old"}], "total_items": 1}),
    )
    server.route("POST", rf"/3.0/lists/{LIST}/segments", create)
    server.route("POST", rf"/3.0/lists/{LIST}", batch_ok(server))
    server.route("POST", rf"/3.0/lists/{LIST}/segments/901", segment_ok(server))
    with make(server, membership="tags", tag="vip", segment_id=None) as client:
        threads = [threading.Thread(target=client.add_members, args=(records(3, start=10 * i),)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert created == [{"name": "vip", "static_segment": []}]
    assert server.seen("GET", rf"/3.0/lists/{LIST}/tag-search")[0].query["name"] == ["vip"]
    assert len(server.seen("POST", rf"/3.0/lists/{LIST}/segments/901")) == 3


def test_removing_from_a_tag_that_does_not_exist_sends_nothing(server):
    R = server.Reply
    server.route("GET", rf"/3.0/lists/{LIST}/tag-search", lambda seen, match: R(200, {"tags": [], "total_items": 0}))
    with make(server, membership="tags", tag="vip", segment_id=None) as client:
        result = client.remove_members(records(2))
        assert client.member_count() == 0
        assert list(client.iter_members()) == []
    assert result.acknowledged == ["c0", "c1"]
    assert {s.method for s in server.requests} == {"GET"}


def test_static_segment_by_name_is_resolved_through_the_segment_list(server):
    R = server.Reply
    server.route(
        "GET",
        rf"/3.0/lists/{LIST}/segments",
        lambda seen, match: R(
            200, {"segments": [{"id": 3, "name": "other"}, {"id": 4, "name": "vip"}], "total_items": 2}
        ),
    )
    server.route("GET", rf"/3.0/lists/{LIST}/segments/4", lambda seen, match: R(200, {"member_count": 42}))
    with make(server, segment_id=None, segment_name="vip") as client:
        assert client.member_count() == 42
    assert server.requests[0].query["type"] == ["static"]


# --- reads ------------------------------------------------------------------------------------


def test_iter_members_pages_with_count_and_offset(server):
    R = server.Reply
    everyone = [
        {
            "id": subscriber_hash(f"m{i}@x.org"),
            "email_address": f"m{i}@x.org",
            "last_changed": "2024-06-01T10:00:00+00:00",
        }
        for i in range(5)
    ]

    def page(seen, match):
        offset, count = int(seen.query["offset"][0]), int(seen.query["count"][0])
        return R(200, {"members": everyone[offset : offset + count], "total_items": len(everyone)})

    server.route("GET", rf"/3.0/lists/{LIST}/segments/77/members", page)
    with make(server) as client:
        members = list(client.iter_members(page_size=2))
    assert [s.query["offset"][0] for s in server.requests] == ["0", "2", "4"]
    assert [m.identity for m in members] == [f"m{i}@x.org" for i in range(5)]
    assert members[0].destination_id == subscriber_hash("m0@x.org")
    assert members[0].last_changed == datetime(2024, 6, 1, 10, tzinfo=timezone.utc)


# --- check ------------------------------------------------------------------------------------


def test_check_passes_for_a_static_segment(server):
    R = server.Reply
    server.route("GET", rf"/3.0/lists/{LIST}", lambda seen, match: R(200, {"id": LIST, "name": "Newsletter"}))
    server.route("GET", rf"/3.0/lists/{LIST}/segments/77", lambda seen, match: R(200, {"id": 77, "type": "static"}))
    with make(server) as client:
        client.check()


def test_check_names_what_to_fix(server):
    R = server.Reply
    server.route(
        "GET",
        rf"/3.0/lists/{LIST}",
        lambda seen, match: R(
            404,
            {
                "type": "https://mailchimp.com/developer/marketing/docs/errors/",
                "title": "Resource Not Found",
                "status": 404,
                "detail": "The requested resource could not be found.",
                "instance": "x",
            },
        ),
    )
    with make(server) as client, pytest.raises(TerminalDestinationError) as caught:
        client.check()
    assert "config.list_id" in str(caught.value)
    assert "Resource Not Found" in str(caught.value)

    server.queue(R(401, {"title": "API Key Invalid", "detail": "Your API key may be invalid."}))
    with make(server, connection_id="segprovider_mailchimp") as client, pytest.raises(DestinationAuthError) as caught:
        client.check()
    assert "check the API key in connection 'segprovider_mailchimp'" in str(caught.value)
    assert API_KEY not in str(caught.value)


def test_check_reads_the_audience_and_the_segment_side_by_side_and_sends_no_ping(server):
    # each read takes Mailchimp ~0.5 s: a sync's start waited for them one after another
    R = server.Reply
    server.route("GET", rf"/3.0/lists/{LIST}", lambda seen, match: R(200, {"id": LIST}, delay=0.3))
    server.route("GET", rf"/3.0/lists/{LIST}/segments/77", lambda seen, match: R(200, {"type": "static"}, delay=0.3))
    server.route("GET", rf"/3.0/lists/{LIST}/segments", lambda seen, match: R(
        200, {"segments": [{"id": 91, "name": "vip"}], "total_items": 1}, delay=0.3))
    with make(server) as client:
        client.check()
    with make(server, segment_id=None, segment_name="vip") as client:
        client.check()
        assert client._segment_id(create=False) == "91"  # resolved by the check, not looked up again
    assert sorted(s.path for s in server.requests) == [f"/3.0/lists/{LIST}", f"/3.0/lists/{LIST}",
                                                       f"/3.0/lists/{LIST}/segments", f"/3.0/lists/{LIST}/segments/77"]
    assert server.max_in_flight == 2


@pytest.mark.parametrize("segment_status", [404, 401])
def test_check_reports_the_most_telling_failure_of_its_reads(server, segment_status):
    R = server.Reply
    server.route("GET", rf"/3.0/lists/{LIST}", lambda seen, match: R(404, {"title": "Resource Not Found"}))
    server.route("GET", rf"/3.0/lists/{LIST}/segments/77", lambda seen, match: R(
        segment_status, {"title": "API Key Invalid" if segment_status == 401 else "Resource Not Found"}))
    with make(server) as client, pytest.raises(TerminalDestinationError) as caught:
        client.check()
    if segment_status == 401:  # a refused key, whichever read met it
        assert isinstance(caught.value, DestinationAuthError) and "check the API key" in str(caught.value)
    else:  # the audience's own 404, not the segment's that follows from it
        assert "config.list_id" in str(caught.value) and caught.value.path == f"/3.0/lists/{LIST}"


def test_check_refuses_a_saved_segment(server):
    R = server.Reply
    server.route("GET", rf"/3.0/lists/{LIST}", lambda seen, match: R(200, {"id": LIST}))
    server.route("GET", rf"/3.0/lists/{LIST}/segments/77", lambda seen, match: R(200, {"id": 77, "type": "saved"}))
    with make(server) as client, pytest.raises(TerminalDestinationError, match="not a static one"):
        client.check()


# --- check_fields -----------------------------------------------------------------------------


def merge_fields_route(server, tags, page_size=2):
    """Answer the merge-fields collection ``page_size`` at a time, whatever ``count`` asked for."""
    R = server.Reply
    fields = [{"merge_id": i, "tag": tag, "name": tag.title(), "type": "text"} for i, tag in enumerate(tags, 1)]

    def page(seen, match):
        offset = int(seen.query["offset"][0])
        return R(200, {"merge_fields": fields[offset : offset + page_size], "total_items": len(fields)})

    server.route("GET", rf"/3.0/lists/{LIST}/merge-fields", page)


def test_check_fields_reads_every_page_of_merge_fields(server):
    merge_fields_route(server, ["FNAME", "LNAME", "ADDRESS", "PHONE", "BIRTHDAY", "COUNTRY"])
    with make(server) as client:
        client.check_fields(["COUNTRY", "FNAME"])
    assert [s.query["offset"][0] for s in server.requests] == ["0", "2", "4"]


def test_check_fields_names_the_missing_merge_field_and_the_fix(server):
    merge_fields_route(server, ["FNAME", "LNAME", "ADDRESS", "PHONE", "BIRTHDAY"])
    with make(server) as client, pytest.raises(DestinationConfigError) as caught:
        client.check_fields(["COUNTRY", "FNAME"])
    message = str(caught.value)
    assert "mailchimp_newsletter" in message
    assert "create merge field COUNTRY in audience a1b2c3d4e5" in message
    assert "change field_mapping of destination 'mailchimp_newsletter' in destinations.yml" in message
    assert "FNAME" not in message.split("fix:")[0]


def test_check_fields_without_a_mapping_sends_nothing(server):
    with make(server) as client:
        client.check_fields([])
    assert server.requests == []

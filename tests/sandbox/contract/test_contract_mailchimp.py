"""The sandbox's Mailchimp, judged by Mailchimp's official Python SDK (``mailchimp_marketing`` 3.0.80).

Each test drives one operation the Mailchimp connector performs (or a documented neighbour) through the SDK and checks
that the sandbox answers as Mailchimp documents it: the SDK returns the parsed JSON on success and raises
``ApiClientError`` with the vendor's problem document (``title``, ``status``, ``detail``) on failure.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import mailchimp_marketing
import pytest
from mailchimp_marketing.api_client import ApiClientError

from segprovider_sandbox import DEFAULT_MAILCHIMP_API_KEY, subscriber_hash

if TYPE_CHECKING:
    from segprovider_sandbox import DemoFixtures, RunningSandbox


@pytest.fixture
def client(sandbox: RunningSandbox) -> mailchimp_marketing.Client:
    """The official client, pointed at the sandbox instead of ``https://{dc}.api.mailchimp.com/3.0``."""
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": DEFAULT_MAILCHIMP_API_KEY, "server": "us1"})
    client.api_client.host = f"{sandbox.url}/3.0"
    return client


def _problem(error: ApiClientError) -> dict:
    return json.loads(error.text)


def _subscribe(client, list_id: str, emails: list[str], status: str = "subscribed", **extra) -> dict:
    members = [{"email_address": email, "status": status, "merge_fields": {"FNAME": "Ada"}} for email in emails]
    return client.lists.batch_list_members(list_id, {"members": members, "update_existing": True, **extra})


def test_ping_answers_everything_is_chimpy(client):
    """https://mailchimp.com/developer/marketing/api/ping/ping/"""
    assert client.ping.get() == {"health_status": "Everything's Chimpy!"}


def test_an_unknown_key_is_a_401_problem_the_sdk_raises(client):
    """https://mailchimp.com/developer/marketing/docs/errors/ (401 API Key Invalid)"""
    client.set_config({"api_key": "wrong-key-us1", "server": "us1"})
    with pytest.raises(ApiClientError) as raised:
        client.ping.get()
    assert raised.value.status_code == 401
    assert _problem(raised.value)["title"] == "API Key Invalid"


def test_get_list_reports_stats(client, fixtures: DemoFixtures):
    """https://mailchimp.com/developer/marketing/api/lists/get-list-info/"""
    _subscribe(client, fixtures.mailchimp_list_id, ["a@example.com", "b@example.com"])
    found = client.lists.get_list(fixtures.mailchimp_list_id, fields=["id", "name", "stats.member_count"])
    assert found == {"id": fixtures.mailchimp_list_id, "name": found["name"], "stats": {"member_count": 2}}


def test_batch_subscribe_answers_new_updated_and_errors(client, fixtures: DemoFixtures):
    """https://mailchimp.com/developer/marketing/api/lists/batch-subscribe-or-unsubscribe/"""
    list_id = fixtures.mailchimp_list_id
    first = _subscribe(client, list_id, ["a@example.com", "not-an-address"])
    assert [m["email_address"] for m in first["new_members"]] == ["a@example.com"]
    assert first["total_created"] == 1 and first["error_count"] == 1
    error = first["errors"][0]
    assert error["email_address"] == "not-an-address" and error["error_code"] == "ERROR_GENERIC"
    second = _subscribe(client, list_id, ["a@example.com"])
    assert second["total_updated"] == 1 and second["updated_members"][0]["id"] == subscriber_hash("a@example.com")
    refused = client.lists.batch_list_members(
        list_id, {"members": [{"email_address": "a@example.com", "status": "subscribed"}], "update_existing": False})
    assert refused["errors"][0]["error_code"] == "ERROR_CONTACT_EXISTS"


def test_an_unknown_list_is_a_404_problem(client):
    """https://mailchimp.com/developer/marketing/docs/errors/ (404 Resource Not Found)"""
    with pytest.raises(ApiClientError) as raised:
        client.lists.get_list("nosuchlist")
    assert raised.value.status_code == 404
    assert _problem(raised.value)["title"] == "Resource Not Found"


def test_members_put_patch_get(client, fixtures: DemoFixtures):
    """https://mailchimp.com/developer/marketing/api/list-members/add-or-update-list-member/ and
    https://mailchimp.com/developer/marketing/api/list-members/update-list-member/"""
    list_id, email = fixtures.mailchimp_list_id, "Mixed.Case@example.com"
    member_hash = subscriber_hash(email)
    created = client.lists.set_list_member(list_id, member_hash, {"email_address": email, "status_if_new": "pending"})
    assert created["status"] == "pending" and created["id"] == member_hash
    patched = client.lists.update_list_member(list_id, member_hash, {"merge_fields": {"FNAME": "Grace"}})
    assert patched["status"] == "pending" and patched["merge_fields"]["FNAME"] == "Grace"
    assert client.lists.get_list_member(list_id, member_hash)["merge_fields"]["FNAME"] == "Grace"
    with pytest.raises(ApiClientError) as raised:
        client.lists.update_list_member(list_id, subscriber_hash("nobody@example.com"), {"status": "subscribed"})
    assert raised.value.status_code == 404


def test_archive_then_delete_permanently(client, fixtures: DemoFixtures):
    """https://mailchimp.com/developer/marketing/api/list-members/archive-list-member/ and
    https://mailchimp.com/developer/marketing/api/list-members/delete-list-member/"""
    list_id = fixtures.mailchimp_list_id
    _subscribe(client, list_id, ["gone@example.com", "forgotten@example.com"])
    archived = client.lists.delete_list_member(list_id, subscriber_hash("gone@example.com"))
    assert archived.status_code == 204
    assert client.lists.get_list_member(list_id, "gone@example.com")["status"] == "archived"
    # An archived contact can be added back.
    assert _subscribe(client, list_id, ["gone@example.com"])["error_count"] == 0
    deleted = client.lists.delete_list_member_permanent(list_id, subscriber_hash("forgotten@example.com"))
    assert deleted.status_code == 204
    with pytest.raises(ApiClientError) as raised:
        client.lists.get_list_member(list_id, "forgotten@example.com")
    assert raised.value.status_code == 404
    # A permanently deleted contact cannot be re-imported by the API.
    with pytest.raises(ApiClientError) as raised:
        client.lists.set_list_member(list_id, subscriber_hash("forgotten@example.com"),
                                     {"email_address": "forgotten@example.com", "status_if_new": "subscribed"})
    assert _problem(raised.value)["title"] == "Forgotten Email Not Subscribed"
    again = _subscribe(client, list_id, ["forgotten@example.com"])
    assert again["error_count"] == 1 and again["errors"][0]["error_code"] == "ERROR_GENERIC"


def test_merge_fields_list_create_and_get(client, fixtures: DemoFixtures):
    """https://mailchimp.com/developer/marketing/api/list-merges/add-merge-field/ and
    https://mailchimp.com/developer/marketing/api/list-merges/get-merge-field/"""
    list_id = fixtures.mailchimp_list_id
    created = client.lists.add_list_merge_field(list_id, {"name": "Tier", "type": "text", "tag": "tier"})
    assert created["tag"] == "TIER" and created["type"] == "text" and created["list_id"] == list_id
    assert client.lists.get_list_merge_field(list_id, created["merge_id"])["name"] == "Tier"
    listed = client.lists.get_list_merge_fields(list_id, count=1000)
    assert "TIER" in {field["tag"] for field in listed["merge_fields"]}
    assert listed["total_items"] == len(listed["merge_fields"])
    with pytest.raises(ApiClientError) as raised:
        client.lists.add_list_merge_field(list_id, {"name": "Again", "type": "text", "tag": "TIER"})
    assert raised.value.status_code == 400
    with pytest.raises(ApiClientError) as raised:
        client.lists.get_list_merge_field(list_id, 9999)
    assert raised.value.status_code == 404


def test_static_segment_add_remove_and_count(client, fixtures: DemoFixtures):
    """https://mailchimp.com/developer/marketing/api/list-segments/batch-add-or-remove-members/ and
    https://mailchimp.com/developer/marketing/api/list-segments/get-segment-info/"""
    list_id, segment_id = fixtures.mailchimp_list_id, fixtures.mailchimp_segment_id
    _subscribe(client, list_id, ["a@example.com", "b@example.com"])
    changed = client.lists.batch_segment_members(
        {"members_to_add": ["a@example.com", "b@example.com", "stranger@example.com"]}, list_id, segment_id)
    assert changed["total_added"] == 2 and changed["error_count"] == 1
    assert changed["errors"][0]["email_addresses"] == ["stranger@example.com"]
    removed = client.lists.batch_segment_members({"members_to_remove": ["b@example.com"]}, list_id, segment_id)
    assert removed["total_removed"] == 1
    segment = client.lists.get_segment(list_id, segment_id, fields=["id", "type", "member_count"])
    assert segment == {"id": segment_id, "type": "static", "member_count": 1}
    members = client.lists.get_segment_members_list(list_id, segment_id, count=1000)
    assert [m["email_address"] for m in members["members"]] == ["a@example.com"]
    assert members["total_items"] == 1


def test_tags_search_and_static_segment_listing(client, fixtures: DemoFixtures):
    """https://mailchimp.com/developer/marketing/api/list-member-tags/add-or-remove-member-tags/ and
    https://mailchimp.com/developer/marketing/api/list-tags/search-for-tags-on-a-list-by-name/"""
    list_id = fixtures.mailchimp_list_id
    _subscribe(client, list_id, ["a@example.com"])
    answer = client.lists.update_list_member_tags(
        list_id, subscriber_hash("a@example.com"), {"tags": [{"name": "loyal", "status": "active"}]})
    assert answer.status_code == 204
    found = client.lists.tag_search(list_id, name="loy")
    assert [tag["name"] for tag in found["tags"]] == ["loyal"]
    segments = client.lists.list_segments(list_id, type="static", count=1000)
    assert "loyal" in {segment["name"] for segment in segments["segments"]}
    created = client.lists.create_segment(list_id, {"name": "fresh", "static_segment": []})
    assert created["type"] == "static" and created["member_count"] == 0


def test_delete_member_permanent_erases_the_member_and_refuses_its_return(client, sandbox, fixtures: DemoFixtures):
    """https://mailchimp.com/developer/marketing/api/list-members/delete-list-member/ (``POST .../actions/
    delete-permanent``: 204, the member's data is gone and the address cannot be re-imported; erasure)"""
    _subscribe(client, fixtures.mailchimp_list_id, ["erase-me@example.com"])
    member_hash = subscriber_hash("erase-me@example.com")
    assert client.lists.delete_list_member_permanent(fixtures.mailchimp_list_id, member_hash).status_code == 204
    with pytest.raises(ApiClientError) as gone:
        client.lists.get_list_member(fixtures.mailchimp_list_id, member_hash)
    assert gone.value.status_code == 404
    again = _subscribe(client, fixtures.mailchimp_list_id, ["erase-me@example.com"])
    assert again["new_members"] == [] and again["error_count"] == 1
    with pytest.raises(ApiClientError) as twice:  # a second erasure finds nothing: the connector acknowledges it
        client.lists.delete_list_member_permanent(fixtures.mailchimp_list_id, member_hash)
    assert twice.value.status_code == 404

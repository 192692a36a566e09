"""Mailchimp compliance states in the sandbox, judged by the official SDK: who may not be subscribed again, and who
segment reads count.

https://mailchimp.com/developer/marketing/docs/errors/ (400 "Member In Compliance State") and
https://mailchimp.com/developer/marketing/api/list-segments/ (``include_cleaned``, ``include_transactional``,
``include_unsubscribed``).
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

COMPLIANCE_DETAIL = "is in a compliance state due to unsubscribe, bounce, or compliance review and cannot be subscribed."


@pytest.fixture
def client(sandbox: RunningSandbox) -> mailchimp_marketing.Client:
    client = mailchimp_marketing.Client()
    client.set_config({"api_key": DEFAULT_MAILCHIMP_API_KEY, "server": "us1"})
    client.api_client.host = f"{sandbox.url}/3.0"
    return client


def _batch(client, list_id: str, emails: list[str], status: str = "subscribed") -> dict:
    members = [{"email_address": email, "status": status} for email in emails]
    return client.lists.batch_list_members(list_id, {"members": members, "update_existing": True})


def _put_refused(client, list_id: str, email: str, body: dict, *, patch: bool = False) -> dict:
    call = client.lists.update_list_member if patch else client.lists.set_list_member
    with pytest.raises(ApiClientError) as raised:
        call(list_id, subscriber_hash(email), {"email_address": email, **body})
    assert raised.value.status_code == 400
    return json.loads(raised.value.text)


def test_a_cleaned_contact_cannot_be_subscribed_again(sandbox, client, fixtures: DemoFixtures):
    list_id = fixtures.mailchimp_list_id
    _batch(client, list_id, ["bounced@example.com"])
    sandbox.state.edit_mailchimp_member(list_id, "bounced@example.com", status="cleaned")
    for body, patch in (({"status": "subscribed"}, False), ({"status": "subscribed"}, True),
                        ({"status": "pending"}, True)):
        problem = _put_refused(client, list_id, "bounced@example.com", body, patch=patch)
        assert problem["title"] == "Member In Compliance State"
        assert problem["detail"] == f"bounced@example.com {COMPLIANCE_DETAIL}"
    answer = _batch(client, list_id, ["bounced@example.com", "fine@example.com"])
    assert answer["total_created"] == 1 and answer["total_updated"] == 0 and answer["error_count"] == 1
    error = answer["errors"][0]
    assert error["email_address"] == "bounced@example.com"
    assert error["error_code"] == "ERROR_GENERIC" and COMPLIANCE_DETAIL in error["error"]
    assert sandbox.state.mailchimp_member(list_id, "bounced@example.com")["status"] == "cleaned"
    # Merge values alone may still change.
    patched = client.lists.update_list_member(list_id, subscriber_hash("bounced@example.com"),
                                              {"merge_fields": {"FNAME": "Bo"}})
    assert patched["status"] == "cleaned" and patched["merge_fields"]["FNAME"] == "Bo"


def test_a_self_unsubscribed_contact_may_only_be_asked_to_confirm(sandbox, client, fixtures: DemoFixtures):
    list_id = fixtures.mailchimp_list_id
    _batch(client, list_id, ["optout@example.com"])
    sandbox.state.edit_mailchimp_member(list_id, "optout@example.com", status="unsubscribed")  # the person's link
    assert _put_refused(client, list_id, "optout@example.com", {"status": "subscribed"})["title"] == (
        "Member In Compliance State")
    assert _batch(client, list_id, ["optout@example.com"])["error_count"] == 1
    assert client.lists.update_list_member(list_id, subscriber_hash("optout@example.com"),
                                           {"status": "pending"})["status"] == "pending"
    assert _put_refused(client, list_id, "optout@example.com", {"status": "subscribed"})["title"] == (
        "Member In Compliance State")
    sandbox.state.edit_mailchimp_member(list_id, "optout@example.com", status="subscribed")  # they confirm
    assert _batch(client, list_id, ["optout@example.com"])["error_count"] == 0


def test_an_account_unsubscribe_through_the_api_can_be_undone_by_the_api(client, fixtures: DemoFixtures):
    list_id = fixtures.mailchimp_list_id
    _batch(client, list_id, ["paused@example.com"])
    assert _batch(client, list_id, ["paused@example.com"], status="unsubscribed")["total_updated"] == 1
    again = _batch(client, list_id, ["paused@example.com"])
    assert again["error_count"] == 0 and again["updated_members"][0]["status"] == "subscribed"


def test_segment_reads_leave_out_unsubscribed_cleaned_and_transactional_unless_asked(
        sandbox, client, fixtures: DemoFixtures):
    list_id, segment_id = fixtures.mailchimp_list_id, fixtures.mailchimp_segment_id
    statuses = {"sub@example.com": "subscribed", "pend@example.com": "pending", "uns@example.com": "unsubscribed",
                "cln@example.com": "subscribed", "trx@example.com": "transactional", "arc@example.com": "subscribed"}
    for email, status in statuses.items():
        _batch(client, list_id, [email], status=status)
    client.lists.batch_segment_members({"members_to_add": list(statuses)}, list_id, segment_id)
    sandbox.state.edit_mailchimp_member(list_id, "cln@example.com", status="cleaned")
    client.lists.delete_list_member(list_id, subscriber_hash("arc@example.com"))

    def members(**flags) -> set[str]:
        page = client.lists.get_segment_members_list(list_id, segment_id, count=1000, **flags)
        assert page["total_items"] == len(page["members"])
        count = client.lists.get_segment(list_id, segment_id, **flags)["member_count"]
        listed = client.lists.list_segments(list_id, count=1000, **flags)["segments"]
        assert count == len(page["members"]) == next(s["member_count"] for s in listed if s["id"] == segment_id)
        return {member["email_address"] for member in page["members"]}

    assert members() == {"sub@example.com", "pend@example.com"}
    assert members(include_unsubscribed=True) == {"sub@example.com", "pend@example.com", "uns@example.com"}
    assert members(include_cleaned=True, include_transactional=True) == {
        "sub@example.com", "pend@example.com", "cln@example.com", "trx@example.com"}
    # The store still holds every member of the segment (what a person sees in the UI's tag view).
    assert len(sandbox.state.mailchimp_segment_emails(list_id, segment_id)) == len(statuses)

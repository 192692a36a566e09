"""Compliance refusals are rejected for good, never resubscribed, never worth a retry (issue 16, item 3).

Mailchimp refuses to subscribe again a contact that was cleaned (bounced) or that unsubscribed
itself ("Member In Compliance State"; ``ERROR_GENERIC`` in a batch), and one that was permanently
deleted ("Forgotten Email Not Subscribed"). The connector reports each as a rejected record with a
code of its own (``compliance_state``, ``forgotten_contact``) and ``retryable`` false, leaves the
contact's status alone and does not put it into the segment.
"""

from __future__ import annotations

import pytest
import requests

from airflow_segprovider.core.destination import DestinationAuthError, Record
from airflow_segprovider.destinations import create_client
from airflow_segprovider.destinations.mailchimp import (
    COMPLIANCE_STATE,
    FORGOTTEN_CONTACT,
    FinalRejection,
    MailchimpClient,
    subscriber_hash,
)
from segprovider_sandbox import DEFAULT_MAILCHIMP_API_KEY

FAST_RETRIES = {"backoff_base": 0.01, "backoff_max": 0.05, "max_attempts": 4}



def connector(base_url: str, **config) -> MailchimpClient:
    settings = {"list_id": "a1b2c3d4e5", "segment_id": "1001", "base_url": base_url, **FAST_RETRIES, **config}
    client = create_client("mailchimp", "mailchimp_newsletter", settings, {"api_key": DEFAULT_MAILCHIMP_API_KEY})
    assert isinstance(client, MailchimpClient)
    return client


def people() -> list[Record]:
    return [Record("bounced", "bounced@example.com", {"FNAME": "B"}), Record("left", "left@example.com", {}),
            Record("fine", "fine@example.com", {"FNAME": "F"})]


@pytest.mark.integration
def test_cleaned_and_self_unsubscribed_contacts_are_final_rejections_never_resubscribed(sandbox):
    list_id = sandbox.fixtures.mailchimp_list_id
    with connector(f"{sandbox.url}/3.0") as client:
        assert sorted(client.add_members(people()).acknowledged) == ["bounced", "fine", "left"]
        client.remove_members(people())
        sandbox.state.edit_mailchimp_member(list_id, "bounced@example.com", status="cleaned")  # a hard bounce
        sandbox.state.edit_mailchimp_member(list_id, "left@example.com", status="unsubscribed")  # their own link

        for _ in range(2):  # what a later run would get: the same refusal, so a retry is pointless
            result = client.add_members(people())
            assert result.acknowledged == ["fine"]
            assert {(r.key, r.code) for r in result.rejected} == {("bounced", COMPLIANCE_STATE),
                                                                  ("left", COMPLIANCE_STATE)}
            assert all(isinstance(r, FinalRejection) and r.retryable is False for r in result.rejected)
            assert all("compliance state" in r.message for r in result.rejected)

    assert sandbox.state.mailchimp_member(list_id, "bounced@example.com")["status"] == "cleaned"
    assert sandbox.state.mailchimp_member(list_id, "left@example.com")["status"] == "unsubscribed"
    in_segment = sandbox.state.mailchimp_segment_emails(list_id, sandbox.fixtures.mailchimp_segment_id)
    assert {e.lower() for e in in_segment} == {"fine@example.com"}


@pytest.mark.integration
def test_a_permanently_deleted_contact_is_a_final_rejection(sandbox):
    list_id = sandbox.fixtures.mailchimp_list_id
    with connector(f"{sandbox.url}/3.0") as client:
        client.add_members([Record("gone", "gone@example.com", {})])
        deleted = requests.post(
            f"{sandbox.url}/3.0/lists/{list_id}/members/{subscriber_hash('gone@example.com')}/actions/delete-permanent",
            auth=("any", DEFAULT_MAILCHIMP_API_KEY), timeout=10)
        assert deleted.status_code == 204, deleted.text
        for send in (client.add_members, client.upsert):
            [refused] = send([Record("gone", "gone@example.com", {})]).rejected
            assert (refused.code, refused.retryable) == (FORGOTTEN_CONTACT, False)
    assert sandbox.state.mailchimp_member(list_id, "gone@example.com") is None


@pytest.mark.integration
def test_other_refusals_stay_ordinary_retryable_rejections(sandbox):
    with connector(f"{sandbox.url}/3.0") as client:
        [refused] = client.add_members([Record("bad", "not-an-email", {})]).rejected
    assert refused.code == "ERROR_GENERIC" and not isinstance(refused, FinalRejection)
    assert getattr(refused, "retryable", True) is True


# --- the per-member update of an upsert, scripted: what the sandbox never answers for an existing contact ---


def contact_exists(server):
    R = server.Reply

    def handler(seen, match):
        errors = [{"email_address": m["email_address"], "error_code": "ERROR_CONTACT_EXISTS",
                   "error": f"{m['email_address']} is already a list member. Use PUT to insert or update list members."}
                  for m in seen.json()["members"]]
        return R(200, {"new_members": [], "updated_members": [], "errors": errors, "total_created": 0,
                       "total_updated": 0, "error_count": len(errors)})

    return handler


def test_a_compliance_answer_to_a_member_update_is_a_final_rejection(server):
    R = server.Reply
    server.route("POST", r"/3.0/lists/a1b2c3d4e5", contact_exists(server))
    server.route("PUT", rf"/3.0/lists/a1b2c3d4e5/members/{subscriber_hash('x@example.com')}",
                 lambda seen, match: R(400, {"title": "Member In Compliance State", "status": 400,
                                             "detail": "x@example.com is in a compliance state due to unsubscribe, "
                                                       "bounce, or compliance review and cannot be subscribed."}))
    server.route("PUT", rf"/3.0/lists/a1b2c3d4e5/members/{subscriber_hash('y@example.com')}",
                 lambda seen, match: R(200, {"id": subscriber_hash("y@example.com"), "status": "pending"}))
    with connector(f"{server.url}/3.0") as client:
        result = client.upsert([Record("x", "x@example.com", {"FNAME": "X"}), Record("y", "Y@example.com", {})])
    assert result.acknowledged == ["y"]
    [refused] = result.rejected
    assert (refused.key, refused.code, refused.retryable) == ("x", COMPLIANCE_STATE, False)


def test_a_member_update_refused_for_credentials_fails_the_call(server):
    R = server.Reply
    server.route("POST", r"/3.0/lists/a1b2c3d4e5", contact_exists(server))
    server.route("PUT", r"/3.0/lists/a1b2c3d4e5/members/[0-9a-f]+",
                 lambda seen, match: R(401, {"title": "API Key Invalid", "status": 401}))
    with connector(f"{server.url}/3.0") as client, pytest.raises(DestinationAuthError):
        client.upsert([Record("x", "x@example.com", {})])

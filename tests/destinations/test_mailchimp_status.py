"""An attribute update never changes a Mailchimp contact's subscription status (issue 16, item 2).

Mailchimp's batch subscribe with ``update_existing: true`` applies the ``status`` it is sent to
existing members, so an attribute-only push would turn a ``pending`` contact into ``subscribed``
(skipping double opt-in) and re-subscribe a contact who unsubscribed through the API. The
connector's ``upsert`` (what the hybrid model's push calls) must create new contacts with the
status their consent allows and leave everyone else's status alone. Driven against the sandbox,
which applies statuses as Mailchimp does.
"""

from __future__ import annotations

import json

import pytest
import requests

from airflow_segprovider.core.destination import Record
from airflow_segprovider.destinations import create_client
from airflow_segprovider.destinations.mailchimp import MailchimpClient, subscriber_hash
from segprovider_sandbox import DEFAULT_MAILCHIMP_API_KEY

pytestmark = pytest.mark.integration

FAST_RETRIES = {"backoff_base": 0.01, "backoff_max": 0.05, "max_attempts": 4}



def connector(sandbox, **config) -> MailchimpClient:
    settings = {"list_id": sandbox.fixtures.mailchimp_list_id, "membership": "tags", "tag": "segprovider-hub",
                "base_url": f"{sandbox.url}/3.0", **FAST_RETRIES, **config}
    client = create_client("mailchimp", "mailchimp_newsletter", settings, {"api_key": DEFAULT_MAILCHIMP_API_KEY})
    assert isinstance(client, MailchimpClient)
    return client


def put_member(sandbox, email: str, **body) -> None:
    """Set a contact up through the API, as another integration or an earlier API call would have."""
    list_id = sandbox.fixtures.mailchimp_list_id
    answer = requests.put(f"{sandbox.url}/3.0/lists/{list_id}/members/{subscriber_hash(email)}",
                          json={"email_address": email, **body}, auth=("any", DEFAULT_MAILCHIMP_API_KEY), timeout=10)
    assert answer.status_code == 200, answer.text


def member(sandbox, email: str) -> dict:
    found = sandbox.state.mailchimp_member(sandbox.fixtures.mailchimp_list_id, email)
    assert found is not None, email
    return found


@pytest.mark.parametrize("member_status", ["subscribed", "pending", "transactional"])
def test_existing_contacts_keep_their_status_and_new_ones_get_the_consented_status(sandbox, member_status):
    put_member(sandbox, "pending@example.com", status_if_new="pending")
    put_member(sandbox, "gone@example.com", status_if_new="subscribed")
    put_member(sandbox, "gone@example.com", status="unsubscribed")  # unsubscribed through the API: no compliance mark
    put_member(sandbox, "txn@example.com", status_if_new="transactional")

    people = [Record("p", "Pending@Example.com", {"FNAME": "Pat"}), Record("g", "gone@example.com", {"FNAME": "Gil"}),
              Record("t", "txn@example.com", {"FNAME": "Tia"}), Record("n", "new@example.com", {"FNAME": "Ned"})]
    with connector(sandbox, member_status=member_status) as client:
        result = client.upsert(people)

    assert sorted(result.acknowledged) == ["g", "n", "p", "t"] and not result.rejected
    assert result.destination_ids["p"] == subscriber_hash("pending@example.com")
    assert member(sandbox, "pending@example.com")["status"] == "pending"
    assert member(sandbox, "gone@example.com")["status"] == "unsubscribed"
    assert member(sandbox, "txn@example.com")["status"] == "transactional"
    assert member(sandbox, "new@example.com")["status"] == member_status
    assert {member(sandbox, p.identity)["merge_fields"]["FNAME"] for p in people} == {"Pat", "Gil", "Tia", "Ned"}


def test_no_request_of_an_upsert_asks_for_a_status_change(sandbox):
    """The wire shows it: batch subscribe never updates existing members; an update carries no ``status``."""
    put_member(sandbox, "pending@example.com", status_if_new="pending")
    before = len(sandbox.state.requests("mailchimp"))
    with connector(sandbox, member_status="subscribed") as client:
        client.upsert([Record("p", "pending@example.com", {"FNAME": "Pat"}), Record("n", "new@example.com", {})])
    writes = [r for r in sandbox.state.requests("mailchimp")[before:] if r.method in ("POST", "PUT", "PATCH")]
    bodies = [(r.method, json.loads(r.body)) for r in writes]
    [batch] = [body for method, body in bodies if method == "POST"]
    assert batch["update_existing"] is False
    updates = [body for method, body in bodies if method != "POST"]
    assert [u["email_address"] for u in updates] == ["pending@example.com"]
    assert all("status" not in u and u["status_if_new"] == "subscribed" for u in updates)


def test_an_attribute_update_is_idempotent_and_keeps_merge_fields_it_does_not_send(sandbox):
    put_member(sandbox, "pending@example.com", status_if_new="pending", merge_fields={"COUNTRY": "DE"})
    with connector(sandbox, member_status="subscribed") as client:
        for _ in range(2):
            result = client.upsert([Record("p", "pending@example.com", {"FNAME": "Pat"})])
            assert result.acknowledged == ["p"] and not result.rejected
    found = member(sandbox, "pending@example.com")
    assert found["status"] == "pending"
    assert found["merge_fields"]["FNAME"] == "Pat" and found["merge_fields"]["COUNTRY"] == "DE"


def test_a_bad_merge_value_of_an_existing_contact_is_a_rejected_record_not_a_failed_batch(sandbox):
    put_member(sandbox, "pending@example.com", status_if_new="pending")
    put_member(sandbox, "other@example.com", status_if_new="subscribed")
    with connector(sandbox) as client:
        result = client.upsert([Record("p", "pending@example.com", {"LTV": "not a number"}),
                                Record("o", "other@example.com", {"FNAME": "Oda"})])
    assert result.acknowledged == ["o"]
    [refused] = result.rejected
    assert refused.key == "p" and "merge fields were invalid" in refused.message
    assert member(sandbox, "pending@example.com")["status"] == "pending"

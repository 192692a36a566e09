"""Counts and reads see every member the sync wrote, whatever their status (issue 16, item 3).

Mailchimp's segment and tag reads count and list subscribed and pending members only unless
``include_unsubscribed``/``include_cleaned``/``include_transactional`` is true. Without them a
``member_status: transactional`` segment reads as empty (the count gate fails, reconciliation
re-adds everyone every run), and a member who unsubscribes or bounces vanishes from the count and
the read while the sync state still holds them.
"""

from __future__ import annotations

import pytest

from airflow_segprovider.core.destination import Record, ReportedCount
from airflow_segprovider.destinations import create_client
from airflow_segprovider.destinations.mailchimp import MailchimpClient
from segprovider_sandbox import DEFAULT_MAILCHIMP_API_KEY

pytestmark = pytest.mark.integration

FAST_RETRIES = {"backoff_base": 0.01, "backoff_max": 0.05, "max_attempts": 4}



def connector(sandbox, **config) -> MailchimpClient:
    settings = {"list_id": sandbox.fixtures.mailchimp_list_id, "base_url": f"{sandbox.url}/3.0", **FAST_RETRIES,
                **config}
    client = create_client("mailchimp", "mailchimp_newsletter", settings, {"api_key": DEFAULT_MAILCHIMP_API_KEY})
    assert isinstance(client, MailchimpClient)
    return client


def customers(n: int) -> list[Record]:
    return [Record(f"c{i}", f"customer.{i}@example.org", {}) for i in range(n)]


@pytest.mark.parametrize("target", [{"segment_name": "vip"}, {"membership": "tags", "tag": "vip"}])
def test_transactional_members_are_counted_and_read(sandbox, target):
    with connector(sandbox, member_status="transactional", **target) as client:
        assert len(client.add_members(customers(12)).acknowledged) == 12
        assert client.member_count() == 12
        assert client.reported_count() == ReportedCount.exact(12)
        assert len(list(client.iter_members(page_size=5))) == 12


@pytest.mark.parametrize("target", [{"segment_id": "1001"}, {"membership": "tags", "tag": "vip"}])
def test_members_who_unsubscribe_or_bounce_stay_in_counts_and_reads(sandbox, target):
    list_id = sandbox.fixtures.mailchimp_list_id
    people = customers(10)
    with connector(sandbox, **target) as client:
        client.add_members(people)
        sandbox.state.edit_mailchimp_member(list_id, people[0].identity, status="unsubscribed")
        sandbox.state.edit_mailchimp_member(list_id, people[1].identity, status="cleaned")
        assert client.member_count() == 10
        assert client.reported_count() == ReportedCount.exact(10)
        assert {m.identity for m in client.iter_members(page_size=3)} == {p.identity for p in people}


def test_every_segment_read_asks_for_every_status(sandbox):
    with connector(sandbox, segment_id="1001") as client:
        client.add_members(customers(2))
        before = len(sandbox.state.requests("mailchimp"))
        client.member_count()
        list(client.iter_members())
    reads = [r for r in sandbox.state.requests("mailchimp")[before:] if r.method == "GET"]
    assert len(reads) == 2
    for read in reads:
        assert all(f"{flag}=true" in read.query for flag in
                   ("include_unsubscribed", "include_cleaned", "include_transactional")), read.query

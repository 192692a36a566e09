"""Each connector's ``erase`` against the sandbox over loopback HTTP: the vendor's permanent delete, idempotent.

Mailchimp https://mailchimp.com/developer/marketing/api/list-members/delete-list-member/ (``delete-permanent``;
404 for a member the audience does not hold), HubSpot
https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/gdpr/gdpr-delete-contact, Meta
https://developers.facebook.com/docs/marketing-api/reference/custom-audience/users (``DELETE`` removes hashes);
the webhook's ``erase`` event is our own contract (:mod:`airflow_segprovider.destinations.webhook`).
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qs

import pytest

from airflow_segprovider.core.destination import DestinationAuthError, Record
from airflow_segprovider.destinations import create_client
from airflow_segprovider.destinations.meta import normalize_and_hash
from segprovider_sandbox import (
    DEFAULT_HUBSPOT_TOKEN,
    DEFAULT_MAILCHIMP_API_KEY,
    DEFAULT_META_ACCESS_TOKEN,
    DEFAULT_WEBHOOK_SECRET,
    DemoFixtures,
    serve,
)

pytestmark = pytest.mark.integration

FAST_RETRIES = {"backoff_base": 0.01, "backoff_max": 0.05, "max_attempts": 4}
PEOPLE = [Record("1", "Ada@Example.com"), Record("2", "bob@example.com"), Record("3", "cy@example.com")]


@pytest.fixture
def sandbox(tmp_path):
    with serve(db_path=tmp_path / "sandbox.db") as running:
        running.state.seed_demo_fixtures()
        running.fixtures = DemoFixtures()
        yield running


def test_mailchimp_erase_deletes_for_good_and_acknowledges_who_is_not_there(sandbox):
    fixtures = sandbox.fixtures
    config = {"list_id": fixtures.mailchimp_list_id, "segment_id": str(fixtures.mailchimp_segment_id),
              "base_url": f"{sandbox.url}/3.0", **FAST_RETRIES}
    with create_client("mailchimp", "mc", config, {"api_key": DEFAULT_MAILCHIMP_API_KEY}) as client:
        client.add_members(PEOPLE[:2])
        # the same person under two spellings, one not in the audience at all, one without an address
        erased = client.erase([Record("1", " ada@example.com"), Record("1", "ADA@example.com"), PEOPLE[2],
                               Record("4", "")])
        assert sorted(erased.acknowledged) == ["1", "1", "3"] and [r.key for r in erased.rejected] == ["4"]
        assert sandbox.state.mailchimp_member(fixtures.mailchimp_list_id, "ada@example.com") is None
        assert sandbox.state.mailchimp_member(fixtures.mailchimp_list_id, "bob@example.com") is not None
        assert client.erase([PEOPLE[0]]).acknowledged == ["1"]  # again: already gone, acknowledged
    calls = [r for r in sandbox.state.requests("mailchimp") if r.path.endswith("/actions/delete-permanent")]
    assert len(calls) == 3  # one per distinct address and run, never per duplicate record


def test_hubspot_erase_gdpr_deletes_the_contact(sandbox):
    config = {"list_id": sandbox.fixtures.hubspot_list_id, "base_url": sandbox.url, **FAST_RETRIES}
    with create_client("hubspot", "hs", config, {"access_token": DEFAULT_HUBSPOT_TOKEN}) as client:
        client.add_members(PEOPLE)
        assert sorted(client.erase(PEOPLE[:2]).acknowledged) == ["1", "2"]
    assert sandbox.state.hubspot_contact("ada@example.com") is None
    assert sandbox.state.hubspot_gdpr_blocklisted("ada@example.com")  # HubSpot's UI and imports refuse it now
    assert sandbox.state.hubspot_list_emails(sandbox.fixtures.hubspot_list_id) == {"cy@example.com"}
    with create_client("hubspot", "hs", config, {"access_token": "revoked"}) as client:
        with pytest.raises(DestinationAuthError):  # a refusal is not "not found": the erasure is retried
            client.erase(PEOPLE[2:])


def test_meta_erase_removes_the_hashes(sandbox):
    audience = sandbox.fixtures.meta_audience_id
    config = {"audience_id": audience, "base_url": sandbox.url, **FAST_RETRIES}
    with create_client("meta", "meta", config, {"access_token": DEFAULT_META_ACCESS_TOKEN}) as client:
        client.add_members(PEOPLE)
        assert client.erase(PEOPLE[:1]).acknowledged == ["1"]
    assert sandbox.state.meta_audience_hashes(audience) == {normalize_and_hash(p.identity) for p in PEOPLE[1:]}


def test_webhook_erase_sends_a_signed_erase_event(sandbox):
    config = {"url": f"{sandbox.url}/webhook/crm_hook", **FAST_RETRIES}
    with create_client("webhook", "crm_hook", config, {"signing_secret": DEFAULT_WEBHOOK_SECRET}) as client:
        assert client.erase(PEOPLE[:1]).acknowledged == ["1"]
    [batch] = sandbox.state.webhook_batches("crm_hook")
    assert batch["action"] == "erase" and [r["key"] for r in batch["records"]] == ["1"]


def test_meta_erase_deletes_the_row_uploaded_and_every_other_identity_by_its_hash(sandbox):
    audience = sandbox.fixtures.meta_audience_id
    config = {"audience_id": audience, "base_url": sandbox.url, **FAST_RETRIES}
    person = Record("1", "ada@example.com", {"PHONE": "+49 30 1234567", "EXTERN_ID": "crm-1"})
    with create_client("meta", "meta", config, {"access_token": DEFAULT_META_ACCESS_TOKEN}) as client:
        added = client.add_members([person, Record("2", "bob@example.com", {"PHONE": "", "EXTERN_ID": "crm-2"})])
        client.add_members([Record("1", "ada.old@example.com")])  # an address the state no longer names
        erased = client.erase([Record("1", "ADA@example.com"), Record("1", "ada.old@example.com")],
                              {"1": added.destination_ids["1"]})
    assert sorted(erased.acknowledged) == ["1", "1"] and not erased.rejected
    bob = [normalize_and_hash("bob@example.com"), hashlib.sha256(b"EXTERN_ID:crm-2").hexdigest()]
    assert sandbox.state.meta_audience_hashes(audience) <= set(bob) and sandbox.state.meta_audience_hashes(audience)
    deletes = [parse_qs(r.body)["payload"][0] for r in sandbox.state.requests("meta") if r.method == "DELETE"]
    assert [json.loads(payload)["schema"] for payload in deletes] == [["EMAIL", "PHONE", "EXTERN_ID"], "EMAIL_SHA256"]

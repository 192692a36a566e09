"""The project-level suppression list (issues #16 and #17), against the sandbox over loopback HTTP.

A suppressed key or address that is otherwise a consented member of a synced segment is never sent to any
vendor (read from the sandbox's request log through its admin API), and one a destination holds is removed in
every mode (``add_only`` included), as a consent removal: counted apart, never held by the mass-removal guard
nor by a failed gate. Meta: https://developers.facebook.com/docs/marketing-api/reference/custom-audience/users
(``DELETE /{audience_id}/users`` removes the hashes).
"""

from __future__ import annotations

import pytest

from airflow_segprovider.core.privacy import SuppressionError, add_suppression, list_suppressions, remove_suppression
from airflow_segprovider.destinations.meta import normalize_and_hash
from support.privacy_world import META_AUDIENCE
from support.sync_constants import DAY_2
from support.sync_runs import run, sync_of

pytestmark = pytest.mark.integration

SYNCS = (("vip", "mailchimp_newsletter"), ("vip", "hubspot_crm"), ("high_intent", "meta_ads"))


def email_of(world, key: str) -> str:
    return world.warehouse.query(f"SELECT email FROM customers WHERE CAST(customer_id AS VARCHAR) = '{key}'")[0][0]


def would_add(world, segment: str, destination: str, count: int) -> list[str]:
    plan = run(world.project, world.warehouse, world.connections, sync_of(world.project, segment, destination), DAY_2,
               dry_run=True, sample_size=count).plan
    return sorted(plan.samples["add"])


def test_a_suppressed_consented_member_never_reaches_any_vendor(world):
    vip = would_add(world, "vip", "hubspot_crm", 3)
    intent = [k for k in would_add(world, "high_intent", "meta_ads", 5) if k not in vip]
    by_key, by_identity, at_meta = vip[0], vip[1], intent[0]
    emails = {k: email_of(world, k).strip().lower() for k in (by_key, by_identity, at_meta)}
    # by key, and by address as another system spells it (case and spaces differ)
    add_suppression(world.warehouse, customer_key=by_key, reason="customer request", added_by="test")
    add_suppression(world.warehouse, identity=f"  {emails[by_identity].upper()} ", reason="complaint", added_by="test")
    add_suppression(world.warehouse, customer_key=at_meta, reason="customer request", added_by="test")

    records = [run(world.project, world.warehouse, world.connections, sync_of(world.project, s, d), DAY_2)
               for s, d in SYNCS]

    assert all(record.status == "succeeded" for record in records)
    assert all(record.plan.suppressed >= 1 for record in records)
    sent = " ".join(request["body"].lower() for request in world.logged_requests())
    assert sum(record.succeeded["add"] for record in records) > 100 and sent  # the syncs did send the others
    for email in emails.values():
        assert email not in sent
        assert normalize_and_hash(email) not in sent


def test_a_suppression_removes_a_held_contact_in_add_only_mode_past_the_mass_removal_guard(world):
    sync = sync_of(world.project, "high_intent", "meta_ads")
    assert sync.mode == "add_only"
    first = run(world.project, world.warehouse, world.connections, sync, DAY_2)
    members = sorted(k for (k,) in world.warehouse.query(
        f"SELECT customer_key FROM segprovider_sync_state WHERE sync_id = '{sync.id}' AND in_destination"))
    assert first.succeeded["add"] == len(members) > 10
    # more than the sync's max_remove_fraction (0.2): a membership removal this large would be blocked
    suppressed = members[: len(members) // 2]
    assert len(suppressed) / len(members) > sync.max_remove_fraction
    for key in suppressed:
        add_suppression(world.warehouse, customer_key=key, reason="bulk opt-out", added_by="test")

    record = run(world.project, world.warehouse, world.connections, sync, DAY_2)

    assert record.status == "succeeded"
    assert (record.plan.remove, record.plan.consent_remove, record.plan.add) == (0, len(suppressed), 0)
    assert record.succeeded["consent_remove"] == len(suppressed)
    hashes = world.sandbox.state.meta_audience_hashes(META_AUDIENCE)
    assert not {normalize_and_hash(email_of(world, k)) for k in suppressed} & hashes
    assert {normalize_and_hash(email_of(world, k)) for k in members[len(suppressed):]} <= hashes


def test_a_held_sync_still_removes_a_suppressed_contact(world):
    sync = sync_of(world.project, "vip", "mailchimp_newsletter")
    run(world.project, world.warehouse, world.connections, sync, DAY_2)
    key = sorted(k for (k,) in world.warehouse.query(
        f"SELECT customer_key FROM segprovider_sync_state WHERE sync_id = '{sync.id}' AND in_destination"))[0]
    fixtures = world.sandbox.fixtures
    assert email_of(world, key).strip().lower() in world.sandbox.state.mailchimp_segment_emails(
        fixtures.mailchimp_list_id, fixtures.mailchimp_segment_id)
    add_suppression(world.warehouse, customer_key=key, reason="customer request", added_by="test")

    record = run(world.project, world.warehouse, world.connections, sync, DAY_2, held_by="segment gate vip")

    assert (record.status, record.succeeded["consent_remove"]) == ("held", 1)
    assert email_of(world, key).strip().lower() not in world.sandbox.state.mailchimp_segment_emails(
        fixtures.mailchimp_list_id, fixtures.mailchimp_segment_id)


def test_the_list_refuses_what_it_cannot_mean_and_keeps_an_unfinished_erasure(world):
    warehouse = world.warehouse
    with pytest.raises(SuppressionError, match="customer key, an identity, or both"):
        add_suppression(warehouse, reason="x", added_by="test")
    with pytest.raises(SuppressionError, match="identity is empty"):
        add_suppression(warehouse, identity="  ", reason="x", added_by="test")
    with pytest.raises(SuppressionError, match="needs a reason"):
        add_suppression(warehouse, customer_key="42", reason=" ", added_by="test")
    assert add_suppression(warehouse, identity="A@Example.com", reason="x", added_by="test")
    assert not add_suppression(warehouse, identity="a@example.com ", reason="again", added_by="test")
    assert [(s.customer_key, s.identity) for s in list_suppressions(warehouse)] == [(None, "a@example.com")]
    assert remove_suppression(warehouse, identity="A@EXAMPLE.COM") == 1 and list_suppressions(warehouse) == []
    warehouse.execute("INSERT INTO segprovider_suppressions VALUES ('7', NULL, 'erasure pending erasure__1', "
                      "TIMESTAMP '2026-12-01 00:00:00', 'test')")
    with pytest.raises(SuppressionError, match="unfinished erasure"):
        remove_suppression(warehouse, customer_key="7")

"""The sync engine against the destination sandbox over real HTTP: diffs, state, safety, consent, rejections."""

from __future__ import annotations

import dataclasses
import json

import pytest

from airflow_segprovider.core.destination import DestinationAuthError, DestinationConfigError
from airflow_segprovider.core.state.membership import MembershipStore
from airflow_segprovider.core.sync import SyncBlockedError
from airflow_segprovider.destinations.connection import build_client
from airflow_segprovider.destinations.meta import normalize_and_hash
from support.membership import remove_members
from support.sync_constants import DAY_1, DAY_2
from support.sync_runs import run, sync_of

pytestmark = pytest.mark.integration



def allowed(warehouse, channel: str, require_opt_in: bool) -> dict[str, bool]:
    """Latest consent answer per customer for ``channel`` (computed here in Python, not by the engine)."""
    latest: dict[str, tuple] = {}
    for key, opted_in, updated_at in warehouse.query(
            f"SELECT CAST(customer_id AS VARCHAR), opted_in, updated_at FROM consents WHERE channel = '{channel}'"):
        rank = (updated_at, 0 if opted_in is False else 1)
        # latest answer wins; at the same time the withdrawal wins (the safe reading)
        if key not in latest or rank[0] > latest[key][0][0] or (rank[0] == latest[key][0][0] and rank[1] == 0):
            latest[key] = (rank, opted_in)
    return {key: bool(value) for key, (_, value) in latest.items()}


def intended_emails(project, warehouse, segment, destination, as_of, arm=None) -> dict[str, str]:
    """key -> lowercased email the destination must hold after a mirror sync."""
    channel = project.destinations[destination].channel
    policy = project.model.consent.channels[channel]
    consent = allowed(warehouse, channel, policy.require_opt_in)
    members = MembershipStore(warehouse).members(segment, as_of)
    emails = dict(warehouse.query("SELECT CAST(customer_id AS VARCHAR), email FROM customers"))
    out = {}
    for key in members:
        if not consent.get(key, not policy.require_opt_in):
            continue
        if emails.get(key):
            out[key] = emails[key].lower()
    return out



def write_requests(sandbox, vendor):
    return [r for r in sandbox.state.requests(vendor) if r.method in ("POST", "PUT", "DELETE") and r.status == 200]


def test_first_sync_mirrors_the_segment_and_a_second_run_sends_nothing(project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "mailchimp_newsletter")
    record = run(project, warehouse, connections, sync, DAY_2)
    expected = intended_emails(project, warehouse, "vip", "mailchimp_newsletter", DAY_2)
    held = {e.lower() for e in sandbox.state.mailchimp_segment_emails(sandbox.fixtures.mailchimp_list_id,
                                                                     sandbox.fixtures.mailchimp_segment_id)}
    assert expected and held == set(expected.values())
    assert record.status == "succeeded" and record.succeeded["add"] == len(expected)
    writes_before = len(write_requests(sandbox, "mailchimp"))
    again = run(project, warehouse, connections, sync, DAY_2)
    assert (again.plan.add, again.plan.change, again.plan.remove) == (0, 0, 0)
    assert len(write_requests(sandbox, "mailchimp")) == writes_before


def test_day_two_sends_only_the_diff(project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "hubspot_crm")
    run(project, warehouse, connections, sync, DAY_1)
    day1 = intended_emails(project, warehouse, "vip", "hubspot_crm", DAY_1)
    day2 = intended_emails(project, warehouse, "vip", "hubspot_crm", DAY_2)
    added, removed = set(day2) - set(day1), set(day1) - set(day2)
    assert added or removed, "the generated data should change vip between the two days"
    record = run(project, warehouse, connections, sync, DAY_2)
    assert record.succeeded["add"] == len(added)
    assert record.succeeded["remove"] == len(removed)
    assert {e.lower() for e in sandbox.state.hubspot_list_emails(sandbox.fixtures.hubspot_list_id)} == set(day2.values())


def test_a_contact_who_opts_out_after_evaluation_is_never_sent(project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "mailchimp_newsletter")
    expected = intended_emails(project, warehouse, "vip", "mailchimp_newsletter", DAY_2)
    victim = sorted(expected)[0]
    # opted out after the snapshot was computed: the sync must check consent again
    warehouse.execute(f"INSERT INTO consents VALUES ({int(victim)}, 'email', false, TIMESTAMP '2026-11-24 09:00:00')")
    record = run(project, warehouse, connections, sync, DAY_2)
    assert record.plan.suppressed >= 1
    bodies = " ".join(r.body.lower() for r in sandbox.state.requests("mailchimp"))
    assert expected[victim] not in bodies
    assert record.succeeded["add"] == len(expected) - 1


def test_mirror_removes_only_what_this_project_added_and_baselines_an_existing_list(
        project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "mailchimp_newsletter")
    fixtures = sandbox.fixtures
    # the list already has someone added by hand, who is not in the segment
    outsider = build_client(project, sync, connections["mailchimp_newsletter"])
    from airflow_segprovider.core.destination import Record

    outsider.add_members([Record("manual", "hand.added@example.org", {})])
    outsider.close()
    record = run(project, warehouse, connections, sync, DAY_2)
    assert record.plan.remove == 0
    held = {e.lower() for e in sandbox.state.mailchimp_segment_emails(fixtures.mailchimp_list_id,
                                                                     fixtures.mailchimp_segment_id)}
    assert "hand.added@example.org" in held


def test_an_empty_segment_never_wipes_a_destination(project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "mailchimp_newsletter")
    run(project, warehouse, connections, sync, DAY_2)
    remove_members(warehouse, "vip", DAY_2)
    writes = len(write_requests(sandbox, "mailchimp"))
    with pytest.raises(SyncBlockedError, match="empty"):
        run(project, warehouse, connections, sync, DAY_2)
    assert len(write_requests(sandbox, "mailchimp")) == writes
    runs = warehouse.query("SELECT status FROM segprovider_sync_runs ORDER BY started_at")
    assert runs[-1][0] == "blocked"


def test_removing_more_than_the_allowed_fraction_needs_an_override(project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "mailchimp_newsletter")
    run(project, warehouse, connections, sync, DAY_2)
    kept = warehouse.query("SELECT customer_key FROM segprovider_memberships WHERE segment = 'vip' "
                           "AND as_of = TIMESTAMP '2026-11-24' ORDER BY customer_key LIMIT 10")
    remove_members(warehouse, "vip", DAY_2, keep=[k for (k,) in kept])
    with pytest.raises(SyncBlockedError, match="max_remove_fraction"):
        run(project, warehouse, connections, sync, DAY_2)
    record = run(project, warehouse, connections, sync, DAY_2, allow_mass_removal=True)
    assert record.succeeded["remove"] > 0
    held = sandbox.state.mailchimp_segment_emails(sandbox.fixtures.mailchimp_list_id,
                                                  sandbox.fixtures.mailchimp_segment_id)
    assert len(held) == len(intended_emails(project, warehouse, "vip", "mailchimp_newsletter", DAY_2))


def test_rejected_records_are_tracked_retried_and_given_up(project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "mailchimp_newsletter")
    key = sorted(intended_emails(project, warehouse, "vip", "mailchimp_newsletter", DAY_2))[0]
    warehouse.execute(f"UPDATE customers SET email = 'not-an-email' WHERE customer_id = {int(key)}")
    for attempt in (1, 2, 3):
        record = run(project, warehouse, connections, sync, DAY_2)
        rows = warehouse.query(f"SELECT error_code, message, attempts FROM segprovider_rejected_records "
                               f"WHERE customer_key = '{key}'")
        assert len(rows) == 1 and rows[0][2] == attempt and rows[0][1]
    assert record.failed["add"] == 1
    writes = len(write_requests(sandbox, "mailchimp"))
    fourth = run(project, warehouse, connections, sync, DAY_2)
    # given up after three refusals: no longer planned, no longer sent, still listed with its reason
    assert fourth.plan.add == 0 and fourth.plan.exhausted >= 1
    assert len(write_requests(sandbox, "mailchimp")) == writes
    assert warehouse.query(f"SELECT attempts FROM segprovider_rejected_records WHERE customer_key = '{key}'") == [(3,)]


def test_a_member_without_identity_is_a_rejected_record_not_silently_dropped(project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "hubspot_crm")
    before = run(project, warehouse, connections, sync, DAY_2, dry_run=True).plan.missing_identity
    key = sorted(intended_emails(project, warehouse, "vip", "hubspot_crm", DAY_2))[0]
    warehouse.execute(f"UPDATE customers SET email = NULL WHERE customer_id = {int(key)}")
    record = run(project, warehouse, connections, sync, DAY_2)
    assert record.plan.missing_identity == before + 1
    rejected = warehouse.query("SELECT customer_key, error_code FROM segprovider_rejected_records")
    assert (key, "missing_identity") in rejected and len(rejected) == before + 1


def test_dry_run_counts_and_samples_without_calling_write_endpoints(project, warehouse, sandbox, connections):
    sync = sync_of(project, "win_back", "meta_ads")
    record = run(project, warehouse, connections, sync, DAY_2, dry_run=True)
    assert record.status == "dry_run"
    assert record.plan.add == len(intended_emails(project, warehouse, "win_back", "meta_ads", DAY_2))
    assert record.plan.samples["add"] and len(record.plan.samples["add"]) <= 5
    assert record.plan.remove == 0  # nothing of ours is there, and a Meta audience cannot be read: no state
    assert not sandbox.state.requests("meta")  # a dry run does not even check credentials
    json.dumps(record.to_dict())  # the run record is JSON for XCom


def test_meta_audience_receives_hashes_and_removes_on_day_two(project, warehouse, sandbox, connections):
    sync = sync_of(project, "win_back", "meta_ads")
    run(project, warehouse, connections, sync, DAY_1)
    run(project, warehouse, connections, sync, DAY_2)
    expected = intended_emails(project, warehouse, "win_back", "meta_ads", DAY_2)
    assert sandbox.state.meta_audience_hashes(sandbox.fixtures.meta_audience_id) == {
        normalize_and_hash(e) for e in expected.values()}


def test_a_destination_that_answers_401_fails_clearly_and_changes_no_state(project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "hubspot_crm")
    bad = {**connections["hubspot_crm"], "password": "wrong-token"}
    with pytest.raises(DestinationAuthError, match="hubspot_crm"):
        run(project, warehouse, {"hubspot_crm": bad}, sync, DAY_2)
    assert warehouse.query("SELECT COUNT(*) FROM segprovider_sync_state")[0][0] == 0
    assert warehouse.query("SELECT status FROM segprovider_sync_runs")[-1][0] == "failed"


def test_a_mapping_to_a_field_the_destination_lacks_fails_before_sending_and_changes_no_state(
        project, warehouse, sandbox, connections):
    hubspot = project.destinations["hubspot_crm"]
    mapping = {**hubspot.field_mapping, "favourite_colour": "first_name"}
    edited = dataclasses.replace(project, destinations={
        **project.destinations, "hubspot_crm": dataclasses.replace(hubspot, field_mapping=mapping)})
    sync = sync_of(edited, "vip", "hubspot_crm")
    with pytest.raises(DestinationConfigError) as caught:
        run(edited, warehouse, connections, sync, DAY_2)
    assert "hubspot_crm" in str(caught.value) and "favourite_colour" in str(caught.value)
    assert "lifetime_value" not in str(caught.value)  # the example's custom property exists in the sandbox
    assert write_requests(sandbox, "hubspot") == []
    assert warehouse.query("SELECT COUNT(*) FROM segprovider_sync_state")[0][0] == 0
    assert warehouse.query("SELECT status FROM segprovider_sync_runs")[-1][0] == "failed"

    run(project, warehouse, connections, sync_of(project, "vip", "hubspot_crm"), DAY_2)  # the example mapping passes
    assert warehouse.query("SELECT COUNT(*) FROM segprovider_sync_state")[0][0] > 0

"""Repair from the destination's truth (issue #17), against the sandbox's Mailchimp segment, HubSpot list and Meta
audience over real HTTP.

A repair run reads the destination's members (Mailchimp: ``GET /lists/{id}/segments/{id}/members``,
https://mailchimp.com/developer/marketing/api/list-segment-members/; HubSpot: ``GET
/crm/v3/lists/{listId}/memberships``, https://developers.hubspot.com/docs/api/crm/lists), restores members the state
holds that were removed by hand, and reports contacts added by hand without removing them. Meta cannot list an
audience's members (https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences/), so its
run record says the repair was not possible.
"""

from __future__ import annotations

import pytest

from airflow_segprovider.core.state.sync import RUNS
from support.sync_constants import DAY_2
from support.sync_runs import accepted_writes, run, sync_of

pytestmark = pytest.mark.integration

WITHDRAWN_AT = "TIMESTAMP '2026-12-01 09:00:00'"  # later than any answer the generated data holds


def in_mailchimp(sandbox) -> set[str]:
    fixtures = sandbox.fixtures
    return {e.lower() for e in sandbox.state.mailchimp_segment_emails(fixtures.mailchimp_list_id,
                                                                       fixtures.mailchimp_segment_id)}


def in_hubspot(sandbox) -> set[str]:
    return {e.lower() for e in sandbox.state.hubspot_list_emails(sandbox.fixtures.hubspot_list_id)}


def edit_by_hand(sandbox, destination: str, email: str, present: bool) -> None:
    """A person adds or removes a contact in the tool's own UI (not a request of ours)."""
    fixtures = sandbox.fixtures
    if destination == "mailchimp_newsletter":
        sandbox.state.edit_mailchimp_segment(fixtures.mailchimp_list_id, fixtures.mailchimp_segment_id, email, present)
    else:
        sandbox.state.edit_hubspot_list(fixtures.hubspot_list_id, email, present)


HELD = {"mailchimp_newsletter": in_mailchimp, "hubspot_crm": in_hubspot}
VENDOR = {"mailchimp_newsletter": "mailchimp", "hubspot_crm": "hubspot"}


def writes(sandbox, destination: str) -> list:
    """The vendor's accepted writes, without HubSpot's batch reads (POSTs that change nothing)."""
    return [r for r in accepted_writes(sandbox, VENDOR[destination]) if not r.path.endswith("/batch/read")]


def state_keys(warehouse, sync) -> list[str]:
    return sorted(k for (k,) in warehouse.query(f"SELECT customer_key FROM segprovider_sync_state "
                                                f"WHERE sync_id = '{sync.id}' AND in_destination"))


def email_of(warehouse, key: str) -> str:
    return warehouse.query(f"SELECT LOWER(email) FROM customers WHERE customer_id = {int(key)}")[0][0]


@pytest.mark.parametrize("destination", sorted(HELD))
def test_a_repair_restores_members_removed_by_hand_and_reports_those_added_by_hand(
        destination, project, warehouse, sandbox, connections):
    sync, held = sync_of(project, "vip", destination), HELD[destination]
    run(project, warehouse, connections, sync, DAY_2)
    key = state_keys(warehouse, sync)[0]
    removed, stranger = email_of(warehouse, key), "added.by.hand@example.net"
    edit_by_hand(sandbox, destination, removed, False)
    edit_by_hand(sandbox, destination, stranger, True)

    # an ordinary run trusts its state: it neither sees nor restores the hand edit
    ordinary = run(project, warehouse, connections, sync, DAY_2, dry_run=True)
    assert (ordinary.plan.restore, ordinary.plan.added_by_hand, ordinary.repair) == (0, None, None)

    sent_before = len(writes(sandbox, destination))
    dry = run(project, warehouse, connections, sync, DAY_2, dry_run=True, repair=True)

    assert (dry.plan.restore, dry.plan.added_by_hand) == (1, 1)
    assert dry.plan.samples["restore"] == [key] and dry.plan.samples["added_by_hand"] == [stranger]
    assert len(writes(sandbox, destination)) == sent_before  # a dry run sends nothing
    assert removed not in held(sandbox)

    repaired = run(project, warehouse, connections, sync, DAY_2, repair=True)

    assert repaired.status == "succeeded" and repaired.succeeded["restore"] == 1
    assert removed in held(sandbox) and stranger in held(sandbox)  # a sync removes only what it added
    assert repaired.repair.startswith("read ") and repaired.repair.endswith(f"members from {destination}")
    row = warehouse.query_records(f"SELECT planned_restore, succeeded_restore, added_by_hand, repair FROM {RUNS} "
                                  f"WHERE run_id = '{repaired.run_id}'")[0]
    assert (row["planned_restore"], row["succeeded_restore"], row["added_by_hand"]) == (1, 1, 1)
    assert warehouse.query(f"SELECT customer_key, status FROM segprovider_sync_log WHERE run_id = "
                           f"'{repaired.run_id}' AND action = 'restore'") == [(key, "accepted")]
    again = run(project, warehouse, connections, sync, DAY_2, dry_run=True, repair=True)
    assert (again.plan.restore, again.plan.added_by_hand) == (0, 1)


def test_a_member_removed_by_hand_who_then_opted_out_is_not_restored(project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "hubspot_crm")
    run(project, warehouse, connections, sync, DAY_2)
    key = state_keys(warehouse, sync)[0]
    email = email_of(warehouse, key)
    edit_by_hand(sandbox, "hubspot_crm", email, False)
    warehouse.execute(f"INSERT INTO consents VALUES ({int(key)}, 'email', false, {WITHDRAWN_AT})")
    before = len(sandbox.state.requests("hubspot"))

    record = run(project, warehouse, connections, sync, DAY_2, repair=True)

    assert (record.plan.restore, record.succeeded["restore"], record.succeeded["consent_remove"]) == (0, 0, 1)
    assert email not in in_hubspot(sandbox) and key not in state_keys(warehouse, sync)
    sent = [r for r in sandbox.state.requests("hubspot")[before:] if email in (r.body or "").lower()]
    assert not [r for r in sent if "/memberships/add" in r.path or "batch/upsert" in r.path
                or "batch/create" in r.path]


def test_a_repair_of_an_audience_that_cannot_be_read_says_so_and_syncs_as_usual(
        project, warehouse, sandbox, connections):
    sync = sync_of(project, "high_intent", "meta_ads")
    first = run(project, warehouse, connections, sync, DAY_2)

    record = run(project, warehouse, connections, sync, DAY_2, repair=True)

    assert record.status == "succeeded" and first.succeeded["add"] > 0
    assert record.repair.startswith("not possible: meta_ads (meta) cannot list its members")
    assert (record.plan.restore, record.plan.added_by_hand) == (0, None)
    assert warehouse.query(f"SELECT repair FROM {RUNS} WHERE run_id = '{record.run_id}'") == [(record.repair,)]

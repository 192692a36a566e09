"""Identity-aware sync (issue #17, items 1 and 2), against the sandbox's Mailchimp segment and HubSpot list.

The state records the identity sent for each customer. When a member's identity changes, the old one
leaves the list and the new one is added; an identity shared by several customers stays while any
member that stays holds it.
"""

from __future__ import annotations

import pytest

from airflow_segprovider.core.sync import SyncEngine, SyncOptions
from airflow_segprovider.destinations.connection import build_client
from support.membership import remove_members
from support.sync_constants import DAY_2

pytestmark = pytest.mark.integration


def held_mailchimp(sandbox) -> set[str]:
    fixtures = sandbox.fixtures
    return {e.lower() for e in sandbox.state.mailchimp_segment_emails(fixtures.mailchimp_list_id,
                                                                       fixtures.mailchimp_segment_id)}


def held_hubspot(sandbox) -> set[str]:
    return {e.lower() for e in sandbox.state.hubspot_list_emails(sandbox.fixtures.hubspot_list_id)}


DESTINATIONS = {"mailchimp_newsletter": held_mailchimp, "hubspot_crm": held_hubspot}


def sync_of(project, destination):
    return next(s for s in project.syncs if s.segment == "vip" and s.destination == destination)


def run(project, warehouse, connections, sync, **options):
    client = build_client(project, sync, connections[sync.destination])
    try:
        return SyncEngine(project, warehouse).run(sync, client, DAY_2, options=SyncOptions(**options))
    finally:
        client.close()


def members(warehouse, sync) -> list[str]:
    return sorted(k for (k,) in warehouse.query(f"SELECT customer_key FROM segprovider_sync_state "
                                                f"WHERE sync_id = '{sync.id}' AND in_destination"))


def email_of(warehouse, key: str) -> str:
    return warehouse.query(f"SELECT LOWER(email) FROM customers WHERE customer_id = {int(key)}")[0][0]


def set_email(warehouse, key: str, email: str) -> None:
    warehouse.execute(f"UPDATE customers SET email = '{email}' WHERE customer_id = {int(key)}")


def nothing_planned(project, warehouse, connections, sync) -> bool:
    plan = run(project, warehouse, connections, sync, dry_run=True).plan
    return (plan.add, plan.change, plan.remove, plan.consent_remove, plan.reidentify, plan.released) == \
        (0, 0, 0, 0, 0, 0)


@pytest.mark.parametrize("destination", sorted(DESTINATIONS))
def test_a_changed_email_replaces_the_old_address_in_the_list(
        destination, project, warehouse, sandbox, connections):
    sync, held = sync_of(project, destination), DESTINATIONS[destination]
    run(project, warehouse, connections, sync)
    key = members(warehouse, sync)[0]
    old, new = email_of(warehouse, key), f"moved.{key}@example.org"
    assert old in held(sandbox)
    set_email(warehouse, key, new)

    record = run(project, warehouse, connections, sync)

    assert record.status == "succeeded"
    assert (record.plan.reidentify, record.plan.change, record.plan.remove) == (1, 0, 0)
    assert (record.succeeded["reidentify"], record.succeeded["add"]) == (1, 1)
    assert old not in held(sandbox) and new in held(sandbox)
    assert warehouse.query(f"SELECT identity FROM segprovider_sync_state WHERE sync_id = '{sync.id}' "
                           f"AND customer_key = '{key}' AND in_destination") == [(new,)]
    assert nothing_planned(project, warehouse, connections, sync)


@pytest.mark.parametrize("destination", sorted(DESTINATIONS))
def test_an_invalid_new_email_removes_the_old_address_and_is_rejected(
        destination, project, warehouse, sandbox, connections):
    # decided: the old address is no longer the customer's, so it leaves; the invalid one is a rejected record
    sync, held = sync_of(project, destination), DESTINATIONS[destination]
    run(project, warehouse, connections, sync)
    key = members(warehouse, sync)[0]
    old = email_of(warehouse, key)
    set_email(warehouse, key, "not-an-email")

    record = run(project, warehouse, connections, sync)

    assert record.succeeded["reidentify"] == 1 and record.failed["add"] == 1
    assert old not in held(sandbox) and "not-an-email" not in held(sandbox)
    assert key not in members(warehouse, sync)
    assert [row[0] for row in warehouse.query(
        f"SELECT operation FROM segprovider_rejected_records WHERE sync_id = '{sync.id}' "
        f"AND customer_key = '{key}'")] == ["add"]


@pytest.mark.parametrize("destination", sorted(DESTINATIONS))
def test_a_shared_address_stays_until_its_last_holder_leaves(destination, project, warehouse, sandbox, connections):
    sync, held = sync_of(project, destination), DESTINATIONS[destination]
    first, second = sorted(run(project, warehouse, connections, sync, dry_run=True, sample_size=2).plan.samples["add"])
    shared = email_of(warehouse, first)
    set_email(warehouse, second, shared)  # two customers, one address
    run(project, warehouse, connections, sync)
    everyone = members(warehouse, sync)
    assert {first, second} <= set(everyone) and shared in held(sandbox)

    remove_members(warehouse, "vip", DAY_2, keep=[k for k in everyone if k != first])
    one_left = run(project, warehouse, connections, sync)

    assert (one_left.plan.remove, one_left.plan.released) == (0, 1)
    assert shared in held(sandbox)  # the other holder is still a member
    assert first not in members(warehouse, sync) and second in members(warehouse, sync)
    assert warehouse.query(f"SELECT action FROM segprovider_sync_log WHERE run_id = '{one_left.run_id}' "
                           f"AND customer_key = '{first}'") == [("release",)]

    remove_members(warehouse, "vip", DAY_2, keep=[k for k in everyone if k not in (first, second)])
    none_left = run(project, warehouse, connections, sync)

    assert (none_left.plan.remove, none_left.succeeded["remove"]) == (1, 1)
    assert shared not in held(sandbox)
    assert nothing_planned(project, warehouse, connections, sync)


WITHDRAWN_AT = "TIMESTAMP '2026-12-01 09:00:00'"  # later than any answer the generated data holds


def withdraw_email(warehouse, key: str) -> None:
    warehouse.execute(f"INSERT INTO consents VALUES ({int(key)}, 'email', false, {WITHDRAWN_AT})")


@pytest.mark.parametrize("destination", sorted(DESTINATIONS))
def test_an_opt_out_of_one_holder_of_a_shared_address_takes_the_address_out_for_both(
        destination, project, warehouse, sandbox, connections):
    # issue #17, bug a: two customers, one address; one withdraws consent. The address left the list (a
    # withdrawal removes the address whoever else shares it) but the other holder's state row kept saying
    # "in the destination", so the state held one member more than the list. The address is one contact:
    # its owner's opt-out takes it out for both rows, and it is never sent again for the other holder.
    sync, held = sync_of(project, destination), DESTINATIONS[destination]
    first, second = sorted(run(project, warehouse, connections, sync, dry_run=True, sample_size=2).plan.samples["add"])
    shared = email_of(warehouse, first)
    set_email(warehouse, second, shared)
    run(project, warehouse, connections, sync)
    assert shared in held(sandbox)
    withdraw_email(warehouse, first)

    record = run(project, warehouse, connections, sync)

    assert (record.status, record.succeeded["consent_remove"]) == ("succeeded", 2)
    assert shared not in held(sandbox)
    assert {first, second}.isdisjoint(members(warehouse, sync))  # the state holds what the list holds
    assert SyncEngine(project, warehouse).destination_count(sync) == len(held(sandbox))
    assert warehouse.query(f"SELECT action FROM segprovider_sync_log WHERE run_id = '{record.run_id}' "
                           f"AND customer_key = '{second}'") == [("consent_remove",)]
    # the other holder is still a consenting member, but the address is withdrawn: never sent again
    after = len(sandbox.state.requests())
    again = run(project, warehouse, connections, sync)
    assert (again.plan.add, again.plan.change, again.succeeded["add"]) == (0, 0, 0)
    assert again.plan.suppressed >= 2 and shared not in held(sandbox)
    assert not [r for r in sandbox.state.requests()[after:] if shared in (r.body or "").lower()]


def test_a_final_refusal_blocks_the_refused_address_not_the_customer(project, warehouse, sandbox, connections):
    # issue #17, bug b: Mailchimp refuses for good to subscribe a cleaned (bounced) address ("Member In
    # Compliance State": https://mailchimp.com/developer/marketing/docs/errors/). The refusal was keyed by the
    # customer, so once the customer gave a new, valid address it was never sent either.
    sync, held = sync_of(project, "mailchimp_newsletter"), held_mailchimp
    [key] = run(project, warehouse, connections, sync, dry_run=True, sample_size=1).plan.samples["add"]
    bounced = f"bounced.{key}@example.org"
    set_email(warehouse, key, bounced)
    list_id = sandbox.fixtures.mailchimp_list_id
    sandbox.state.edit_mailchimp_audience(list_id, bounced, True)
    sandbox.state.edit_mailchimp_member(list_id, bounced, status="cleaned")

    first = run(project, warehouse, connections, sync)

    assert first.failed["add"] == 1 and bounced not in held(sandbox)
    assert warehouse.query(f"SELECT final, identity FROM segprovider_rejected_records WHERE sync_id = '{sync.id}' "
                           f"AND customer_key = '{key}'") == [(True, bounced)]
    assert run(project, warehouse, connections, sync, dry_run=True).plan.add == 0  # never retried as it is

    fixed = f"fixed.{key}@example.org"
    set_email(warehouse, key, fixed)
    second = run(project, warehouse, connections, sync)

    assert (second.plan.add, second.succeeded["add"]) == (1, 1)
    assert fixed in held(sandbox) and key in members(warehouse, sync)
    # accepted now: no longer a rejected record
    assert warehouse.query(f"SELECT COUNT(*) FROM segprovider_rejected_records WHERE sync_id = '{sync.id}' "
                           f"AND customer_key = '{key}'") == [(0,)]

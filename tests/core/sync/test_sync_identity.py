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

"""Consent above every mode, guard and gate (issue #17, items 7, 8 and 10), against the sandbox over real HTTP.

A withdrawn consent removes the contact in every mode (``add_only`` included), is never held back by
the mass-removal or empty-segment guards (they judge membership removals only) nor by a failed gate,
is counted apart in the run record, and on an e-mail destination also unsubscribes the contact.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from airflow_segprovider.core.state.sync import ADDED_COLUMNS, RUNS, ensure_tables
from airflow_segprovider.core.sync import SyncBlockedError, SyncOptions, SyncPlan
from airflow_segprovider.core.sync.safety import check_safety
from airflow_segprovider.destinations.meta import normalize_and_hash
from support.membership import remove_members
from support.sync_constants import DAY_2
from support.sync_runs import run, sync_of
from support.warehouse_matrix import open_warehouse

pytestmark = pytest.mark.integration

#: later than any answer the generated data holds: the latest answer, so it wins
WITHDRAWN_AT = "TIMESTAMP '2026-12-01 09:00:00'"




def state_keys(warehouse, sync) -> list[str]:
    return sorted(k for (k,) in warehouse.query(f"SELECT customer_key FROM segprovider_sync_state "
                                                f"WHERE sync_id = '{sync.id}' AND in_destination"))


def emails_of(warehouse, keys) -> dict[str, str]:
    rows = warehouse.query("SELECT CAST(customer_id AS VARCHAR), email FROM customers")
    wanted = set(keys)
    return {k: e.lower() for k, e in rows if k in wanted}


def withdraw(warehouse, keys, channel: str) -> None:
    for key in keys:
        warehouse.execute(f"INSERT INTO consents VALUES ({int(key)}, '{channel}', false, {WITHDRAWN_AT})")


def last_run(warehouse, sync) -> dict:
    return warehouse.query_records(f"SELECT * FROM {RUNS} WHERE sync_id = '{sync.id}' "
                                   "ORDER BY started_at DESC LIMIT 1")[0]


def mailchimp_segment(sandbox) -> set[str]:
    fixtures = sandbox.fixtures
    return {e.lower() for e in sandbox.state.mailchimp_segment_emails(fixtures.mailchimp_list_id,
                                                                       fixtures.mailchimp_segment_id)}


def test_add_only_removes_a_member_who_withdrew_consent(project, warehouse, sandbox, connections):
    # the example project's high_intent -> meta_ads: the hash that stayed in the audience
    sync = sync_of(project, "high_intent", "meta_ads")
    assert sync.mode == "add_only"
    first = run(project, warehouse, connections, sync, DAY_2)
    members = state_keys(warehouse, sync)
    assert first.succeeded["add"] == len(members) > 2
    leaving, withdrawing = members[0], members[1]
    remove_members(warehouse, "high_intent", DAY_2, keep=[k for k in members if k != leaving])
    withdraw(warehouse, [withdrawing], project.destinations["meta_ads"].channel)

    record = run(project, warehouse, connections, sync, DAY_2)

    # the member who left stays (add_only), the one who withdrew consent is removed
    assert (record.plan.remove, record.plan.consent_remove) == (0, 1)
    assert (record.succeeded["remove"], record.succeeded["consent_remove"]) == (0, 1)
    assert state_keys(warehouse, sync) == [k for k in members if k != withdrawing]
    hashes = sandbox.state.meta_audience_hashes("23850000000000002")
    email = emails_of(warehouse, [withdrawing, leaving])
    assert normalize_and_hash(email[withdrawing]) not in hashes
    assert normalize_and_hash(email[leaving]) in hashes
    assert last_run(warehouse, sync)["succeeded_consent_remove"] == 1


def test_opt_outs_pass_the_mass_removal_guard_that_holds_an_equal_membership_drop(
        project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "hubspot_crm")
    run(project, warehouse, connections, sync, DAY_2)
    members = state_keys(warehouse, sync)
    opting_out = members[: int(len(members) * 0.3)]
    assert len(opting_out) > sync.max_remove_fraction * len(members)  # an equal membership drop is blocked
    withdraw(warehouse, opting_out, "email")

    record = run(project, warehouse, connections, sync, DAY_2)

    assert record.status == "succeeded"
    assert (record.plan.remove, record.plan.consent_remove) == (0, len(opting_out))
    assert record.succeeded["consent_remove"] == len(opting_out) and record.succeeded["remove"] == 0
    held = {e.lower() for e in sandbox.state.hubspot_list_emails(sandbox.fixtures.hubspot_list_id)}
    assert not held & set(emails_of(warehouse, opting_out).values())
    # listed apart in the run record: consent removals are not membership removals
    row = last_run(warehouse, sync)
    assert (row["planned_remove"], row["planned_consent_remove"]) == (0, len(opting_out))
    assert (row["succeeded_remove"], row["succeeded_consent_remove"]) == (0, len(opting_out))
    assert row["failed_consent_remove"] == 0

    # the same share leaving the segment is a membership removal: the guard holds it back
    remaining = state_keys(warehouse, sync)
    dropped = remaining[: int(len(remaining) * 0.3)]
    remove_members(warehouse, "vip", DAY_2, keep=[k for k in remaining if k not in dropped])
    with pytest.raises(SyncBlockedError, match="max_remove_fraction"):
        run(project, warehouse, connections, sync, DAY_2)
    assert state_keys(warehouse, sync) == remaining


def test_the_guards_judge_membership_removals_only():
    sync = type("S", (), {"id": "s", "destination": "d", "max_remove_fraction": 0.2})()
    # every member withdrew consent: nothing is a membership removal, nothing is held back
    all_opted_out = SyncPlan(add=0, change=0, remove=0, suppressed=100, missing_identity=0, exhausted=0,
                             destination_size=100, consent_remove=100)
    check_safety(sync, all_opted_out, SyncOptions())
    with pytest.raises(SyncBlockedError, match="empty"):
        check_safety(sync, dataclasses.replace(all_opted_out, remove=100, consent_remove=0), SyncOptions())


def test_an_email_opt_out_unsubscribes_the_mailchimp_contact(project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "mailchimp_newsletter")
    run(project, warehouse, connections, sync, DAY_2)
    members = state_keys(warehouse, sync)
    withdrawing, staying = members[0], members[1]
    email = emails_of(warehouse, [withdrawing, staying])
    list_id = sandbox.fixtures.mailchimp_list_id
    assert sandbox.state.mailchimp_member(list_id, email[withdrawing])["status"] == "subscribed"
    withdraw(warehouse, [withdrawing], "email")

    record = run(project, warehouse, connections, sync, DAY_2)

    assert record.succeeded["consent_remove"] == 1 and record.failed["consent_remove"] == 0
    assert sandbox.state.mailchimp_member(list_id, email[withdrawing])["status"] == "unsubscribed"
    assert sandbox.state.mailchimp_member(list_id, email[staying])["status"] == "subscribed"
    assert email[withdrawing] not in mailchimp_segment(sandbox) and email[staying] in mailchimp_segment(sandbox)
    # the sync log names the action: a consent removal, not a membership one
    assert warehouse.query(f"SELECT action FROM segprovider_sync_log WHERE run_id = '{record.run_id}' "
                           f"AND customer_key = '{withdrawing}'") == [("consent_remove",)]


def test_an_email_opt_out_unsubscribes_the_hubspot_contact(project, warehouse, sandbox, connections):
    # issue #17, bug d: taken out of the list, the contact still received HubSpot's marketing e-mail, whose
    # subscription status lives in the subscription preferences API
    # (https://developers.hubspot.com/docs/api-reference/legacy/communication-preferences/v3/guide)
    sync = sync_of(project, "vip", "hubspot_crm")
    run(project, warehouse, connections, sync, DAY_2)
    members = state_keys(warehouse, sync)
    withdrawing, staying, never = members[0], members[1], members[2]
    email = emails_of(warehouse, [withdrawing, staying, never])
    for key in (withdrawing, staying):  # their own sign-up to marketing e-mail
        sandbox.state.set_hubspot_subscription(email[key], "1", "SUBSCRIBED")
    withdraw(warehouse, [withdrawing, never], "email")
    before = len(sandbox.state.requests("hubspot"))

    record = run(project, warehouse, connections, sync, DAY_2)

    assert record.succeeded["consent_remove"] == 2 and record.failed["consent_remove"] == 0
    assert sandbox.state.hubspot_subscriptions(email[withdrawing]) == {"1": "NOT_SUBSCRIBED"}
    assert sandbox.state.hubspot_subscriptions(email[staying]) == {"1": "SUBSCRIBED"}
    assert sandbox.state.hubspot_subscriptions(email[never]) == {}  # never opted in: nothing to change
    held = {e.lower() for e in sandbox.state.hubspot_list_emails(sandbox.fixtures.hubspot_list_id)}
    assert email[withdrawing] not in held and email[staying] in held
    sent = sandbox.state.requests("hubspot")[before:]
    assert not [r for r in sent if r.path.endswith("/subscribe") and not r.path.endswith("/unsubscribe")]
    assert [json.loads(r.body)["emailAddress"] for r in sent if r.path.endswith("/unsubscribe")] == [email[withdrawing]]


def test_a_held_sync_still_sends_consent_removals_and_nothing_else(project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "mailchimp_newsletter")
    run(project, warehouse, connections, sync, DAY_2)
    members = state_keys(warehouse, sync)
    withdrawing, leaving = members[0], members[1]
    email = emails_of(warehouse, [withdrawing, leaving])
    withdraw(warehouse, [withdrawing], "email")
    remove_members(warehouse, "vip", DAY_2, keep=[k for k in members if k != leaving])

    record = run(project, warehouse, connections, sync, DAY_2, held_by="gate segment_size")

    assert record.status == "held" and "1 consent removals sent" in record.error
    assert record.succeeded == {"add": 0, "change": 0, "remove": 0, "consent_remove": 1, "reidentify": 0, "restore": 0}
    held = mailchimp_segment(sandbox)
    assert email[withdrawing] not in held and email[leaving] in held  # the membership change waits
    assert sandbox.state.mailchimp_member(sandbox.fixtures.mailchimp_list_id,
                                          email[withdrawing])["status"] == "unsubscribed"
    # released, the next run sends the held membership removal only
    free = run(project, warehouse, connections, sync, DAY_2)
    assert (free.succeeded["remove"], free.succeeded["consent_remove"]) == (1, 0)
    assert email[leaving] not in mailchimp_segment(sandbox)


@pytest.mark.parametrize("kind", ["duckdb", "postgres", "snowflake", "bigquery_sql"])
def test_a_runs_table_of_an_earlier_version_gains_the_consent_columns(kind):
    with open_warehouse(kind) as warehouse:
        warehouse.execute(f"CREATE TABLE {RUNS} (run_id VARCHAR NOT NULL, sync_id VARCHAR NOT NULL, "
                          "planned_remove BIGINT, PRIMARY KEY (run_id, sync_id))")
        warehouse.execute(f"INSERT INTO {RUNS} VALUES ('r1', 's1', 3)")
        ensure_tables(warehouse)
        ensure_tables(warehouse)  # twice: adding a column is idempotent
        columns = {c.lower() for c in warehouse.columns(RUNS)}
        assert {column for table, column, _ in ADDED_COLUMNS if table == RUNS} <= columns
        assert warehouse.query(f"SELECT planned_remove, planned_consent_remove FROM {RUNS}") == [(3, None)]

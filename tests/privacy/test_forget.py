"""Erasure end to end (issue #16): a forgotten customer is deleted in every sandbox vendor and every project
table, and never sent again after re-ingest, re-evaluation and sync. DuckDB warehouse, sandbox over loopback HTTP.

Vendor behaviour asserted here:
Mailchimp https://mailchimp.com/developer/marketing/api/list-members/delete-list-member/ (``delete-permanent``:
the member and its data are gone and the address cannot be re-imported);
HubSpot https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/gdpr/gdpr-delete-contact;
Meta https://developers.facebook.com/docs/marketing-api/reference/custom-audience/users (``DELETE`` removes hashes).
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.privacy import SuppressionError, forget, pending_erasures, remove_suppression
from airflow_segprovider.core.privacy.tables import key_tables
from airflow_segprovider.core.state.privacy import ERASURES, SUPPRESSIONS, TOMBSTONES, salted_hash
from airflow_segprovider.destinations.connection import build_client
from airflow_segprovider.destinations.meta import normalize_and_hash
from support.privacy_world import META_AUDIENCE, SALT
from support.sync_constants import DAY_2
from support.sync_runs import run, sync_of

pytestmark = pytest.mark.integration

#: the syncs that reach each vendor of the example: vip to Mailchimp and HubSpot, high_intent to Meta
SYNCS = (("vip", "mailchimp_newsletter"), ("vip", "hubspot_crm"), ("high_intent", "meta_ads"))


def sync_all(world) -> dict[str, object]:
    return {f"{segment}->{dest}": run(world.project, world.warehouse, world.connections,
                                      sync_of(world.project, segment, dest), DAY_2) for segment, dest in SYNCS}


def state_keys(world, segment: str, destination: str) -> set[str]:
    sync = sync_of(world.project, segment, destination)
    return {k for (k,) in world.warehouse.query(
        f"SELECT customer_key FROM segprovider_sync_state WHERE sync_id = '{sync.id}' AND in_destination")}


def email_of(world, key: str) -> str:
    return world.warehouse.query(f"SELECT email FROM customers WHERE CAST(customer_id AS VARCHAR) = '{key}'")[0][0]


def clients(world):
    return lambda sync: build_client(world.project, sync, world.connections[sync.destination])


#: a column that names a customer: the state's ``customer_key``, the model's ``customer_id``, the compiled
#: evaluation's ``k``/``k_text`` (``customers`` columns are counts, not people)
CUSTOMER_COLUMN = r"^(.*customer_(key|id)|k|k_text)$"


def customer_columns(world) -> list[tuple[str, str]]:
    """Every (base table, column) of the warehouse that names a customer, found from information_schema,
    independently of the erasure's own table discovery."""
    return world.warehouse.query(
        "SELECT c.table_name, c.column_name FROM information_schema.columns AS c JOIN information_schema.tables "
        "AS t USING (table_schema, table_name) WHERE t.table_type = 'BASE TABLE' "
        f"AND regexp_matches(LOWER(c.column_name), '{CUSTOMER_COLUMN}') ORDER BY 1, 2")


def rows_naming(world, key: str) -> dict[str, int]:
    """Rows that still hold ``key`` in any table of the warehouse, in any column that names a customer."""
    found = {}
    for table, column in customer_columns(world):
        count = world.warehouse.query(f'SELECT COUNT(*) FROM "{table}" WHERE CAST("{column}" AS VARCHAR) = \'{key}\'')
        if count[0][0]:
            found[f"{table}.{column}"] = count[0][0]
    return found


def test_a_forgotten_customer_is_deleted_everywhere_and_never_sent_again(world):
    sync_all(world)
    both = sorted(state_keys(world, "vip", "mailchimp_newsletter") & state_keys(world, "vip", "hubspot_crm"))
    at_meta = sorted(state_keys(world, "high_intent", "meta_ads") - set(both))
    assert both and at_meta
    person, other = both[0], at_meta[0]
    emails = {person: email_of(world, person).strip().lower(), other: email_of(world, other).strip().lower()}
    fixtures, state = world.sandbox.fixtures, world.sandbox.state
    assert state.mailchimp_member(fixtures.mailchimp_list_id, emails[person]) is not None
    assert state.hubspot_contact(emails[person]) is not None
    assert normalize_and_hash(emails[other]) in state.meta_audience_hashes(META_AUDIENCE)
    assert rows_naming(world, person)  # the project holds them in its tables before

    results = forget(world.project, world.warehouse, [person, other], clients=clients(world), salt=SALT,
                     requested_by="test")

    assert [r.status for r in results] == ["erased", "erased"]
    # every vendor: Mailchimp's member and HubSpot's contact are gone for good, Meta's hash left the audience
    assert state.mailchimp_member(fixtures.mailchimp_list_id, emails[person]) is None
    assert state.hubspot_contact(emails[person]) is None
    assert normalize_and_hash(emails[other]) not in state.meta_audience_hashes(META_AUDIENCE)
    erase_calls = [(r["vendor"], r["method"], r["path"]) for r in world.logged_requests()
                   if "delete-permanent" in r["path"] or "gdpr-delete" in r["path"]]
    assert {vendor for vendor, _, _ in erase_calls} == {"mailchimp", "hubspot"}
    # every project table: no row holds either key, the tombstones hold their salted hashes only
    assert rows_naming(world, person) == {} and rows_naming(world, other) == {}
    tombstones = {h for (h,) in world.warehouse.query(f"SELECT key_hash FROM {TOMBSTONES}")}
    assert tombstones == {salted_hash(SALT, person), salted_hash(SALT, other)}
    logged = world.warehouse.query(f"SELECT * FROM {ERASURES}") + world.warehouse.query(f"SELECT * FROM {TOMBSTONES}")
    assert not [row for row in logged for value in row if value in (person, other, emails[person], emails[other])]
    assert world.warehouse.query(f"SELECT COUNT(*) FROM {SUPPRESSIONS}")[0][0] == 0  # the block became a tombstone
    # counts of past snapshots are history: they stay
    assert world.warehouse.query("SELECT COUNT(*) FROM segprovider_snapshots WHERE segment = 'vip'")[0][0] > 0

    # the upstream still exports them: ingest drops their rows, evaluation and every sync never see them again
    after = len(world.logged_requests())
    results = world.ingest_and_evaluate()
    assert sum(result.rows_forgotten for result in results) > 0
    assert rows_naming(world, person) == {} and rows_naming(world, other) == {}
    sync_all(world)
    sent_since = " ".join(r["body"].lower() for r in world.logged_requests()[after:])
    for email in emails.values():
        assert email not in sent_since and normalize_and_hash(email) not in sent_since
    assert re.search(r"\b" + re.escape(person) + r"\b", sent_since) is None


def test_forgetting_twice_sends_nothing_and_changes_nothing(world):
    sync_all(world)
    person = sorted(state_keys(world, "vip", "hubspot_crm"))[0]
    first = forget(world.project, world.warehouse, [person], clients=clients(world), salt=SALT, requested_by="test")
    before = len(world.logged_requests())
    again = forget(world.project, world.warehouse, [person], clients=clients(world), salt=SALT, requested_by="test")
    assert (first[0].status, again[0].status) == ("erased", "already_forgotten")
    assert again[0].request_id == first[0].request_id and again[0].destinations == []
    assert [r for r in world.logged_requests()[before:] if r["vendor"] != "sandbox"] == []
    assert world.warehouse.query(f"SELECT COUNT(*) FROM {TOMBSTONES}")[0][0] == 1


def test_a_failed_destination_leaves_the_person_suppressed_and_the_next_run_finishes(world):
    sync_all(world)
    person = sorted(state_keys(world, "vip", "mailchimp_newsletter") & state_keys(world, "vip", "hubspot_crm"))[0]
    email = email_of(world, person).strip().lower()
    broken = {**world.connections, "hubspot_crm": {**world.connections["hubspot_crm"], "password": "revoked"}}

    first = forget(world.project, world.warehouse, [person], salt=SALT, requested_by="test",
                   clients=lambda sync: build_client(world.project, sync, broken[sync.destination]))

    assert first[0].status == "pending"
    assert {o.destination: o.status for o in first[0].destinations} == {
        "mailchimp_newsletter": "erased", "hubspot_crm": "failed"}
    assert pending_erasures(world.warehouse) == [person]
    assert world.warehouse.query(f"SELECT COUNT(*) FROM {TOMBSTONES}")[0][0] == 0
    assert rows_naming(world, person)  # kept: the retry needs to know what HubSpot holds
    # meanwhile nothing sends them: the pending erasure suppresses them in every sync
    after = len(world.logged_requests())
    world.warehouse.execute(f"DELETE FROM segprovider_sync_state WHERE customer_key = '{person}' "
                            "AND sync_id LIKE 'vip__mailchimp%'")  # as if Mailchimp's list had never had them
    sync_all(world)
    assert email not in " ".join(r["body"].lower() for r in world.logged_requests()[after:] if r["method"] != "GET"
                                 and "gdpr-delete" not in r["path"])
    # ...and the sync took them out of HubSpot's list at once (a consent removal), before any erasure there
    assert email not in world.sandbox.state.hubspot_list_emails(world.sandbox.fixtures.hubspot_list_id)
    assert world.sandbox.state.hubspot_contact(email) is not None

    retried = forget(world.project, world.warehouse, pending_erasures(world.warehouse), clients=clients(world),
                     salt=SALT, requested_by="test")

    assert retried[0].status == "erased" and pending_erasures(world.warehouse) == []
    assert rows_naming(world, person) == {}


def test_the_erasure_covers_every_table_of_the_state_that_holds_a_customer(world):
    # fails when a table with a customer column is added (to core/state, or by a model) and the erasure does
    # not reach it: every table a full run leaves (ingest, two evaluations, syncs, privacy) is checked
    sync_all(world)
    world.ingest_and_evaluate()
    covered = set(key_tables(world.project, world.warehouse))
    holding = {(table, column) for table, column in customer_columns(world)}
    assert holding - covered == set()
    assert {"segprovider_membership_words", "segprovider_sync_state", "segprovider_sync_log", "customers"} <= {
        table for table, _ in covered}


def test_a_person_a_table_the_project_only_reads_still_holds_stays_suppressed_until_erased_upstream(world):
    # the customers table loaded by another tool: the project cannot erase it, and evaluation reads it
    project = dataclasses.replace(world.project, sources={name: source for name, source in
                                                          world.project.sources.items() if name != "crm_customers"})
    world.project = project
    sync_all(world)
    person = sorted(state_keys(world, "vip", "hubspot_crm"))[0]
    email = email_of(world, person).strip().lower()

    [result] = forget(project, world.warehouse, [person], clients=clients(world), salt=SALT, requested_by="test")

    assert (result.status, result.external_tables) == ("erased", ["customers"])
    assert "customers.customer_id" in rows_naming(world, person)  # not the project's to delete
    with pytest.raises(SuppressionError, match="still holds them"):
        remove_suppression(world.warehouse, customer_key=person)
    after = len(world.logged_requests())
    evaluate(project, world.warehouse, DAY_2, run_id="again")  # the person is a vip member again...
    sync_all(world)
    assert email not in " ".join(r["body"].lower() for r in world.logged_requests()[after:])  # ...and never sent

    world.warehouse.execute(f"DELETE FROM customers WHERE CAST(customer_id AS VARCHAR) = '{person}'")  # upstream
    [again] = forget(project, world.warehouse, [person], clients=clients(world), salt=SALT, requested_by="test")
    assert (again.status, again.external_tables) == ("already_forgotten", [])
    assert rows_naming(world, person) == {}

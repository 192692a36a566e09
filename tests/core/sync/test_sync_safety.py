"""Sync safety in every mode that removes, against the destination sandbox over real HTTP (issue #16).

The guards used to run for ``mirror`` only: an ``upsert`` sync of an emptied segment removed every
member it had added. These tests hold each mode to what it promises: ``mirror`` and ``upsert`` are
guarded alike, ``add_only`` never removes, a batch the destination refuses as a whole is split to
isolate the bad record, and a dry run previews its removals without sending anything.
"""

from __future__ import annotations

import dataclasses

import pytest

from airflow_segprovider.core.destination import (
    BatchResult,
    Record,
    TerminalDestinationError,
    TransientDestinationError,
)
from airflow_segprovider.core.sync import SyncBlockedError, SyncOptions, SyncPlan
from airflow_segprovider.core.sync.execute import send_isolating
from airflow_segprovider.core.sync.plan import REMOVING_MODES
from airflow_segprovider.core.sync.safety import check_safety
from support.membership import remove_members
from support.sync_constants import DAY_1, DAY_2
from support.sync_runs import run, sync_of

pytestmark = pytest.mark.integration

HUBSPOT_WRITES = ("POST", "PUT", "DELETE")




def writes(sandbox, vendor):
    return [r for r in sandbox.state.requests(vendor) if r.method in HUBSPOT_WRITES and r.status == 200]


def state_keys(warehouse, sync) -> set[str]:
    return {k for (k,) in warehouse.query(f"SELECT customer_key FROM segprovider_sync_state "
                                          f"WHERE sync_id = '{sync.id}' AND in_destination")}


# the guards, on plans alone


@pytest.mark.parametrize("mode", ["mirror", "upsert"])
def test_every_removing_mode_is_guarded_on_its_plan(project, mode):
    sync = sync_of(project, "vip", "hubspot_crm", mode)
    emptied = SyncPlan(add=0, change=0, remove=260, suppressed=0, missing_identity=0, exhausted=0,
                       destination_size=260)
    with pytest.raises(SyncBlockedError, match="empty"):
        check_safety(sync, emptied, SyncOptions())
    shrunk = dataclasses.replace(emptied, remove=100)
    with pytest.raises(SyncBlockedError, match="max_remove_fraction"):
        check_safety(sync, shrunk, SyncOptions())
    check_safety(sync, shrunk, SyncOptions(allow_mass_removal=True))  # the override lifts both


def test_add_only_is_the_only_mode_that_never_removes():
    assert set(REMOVING_MODES) == {"mirror", "upsert"}


@pytest.mark.parametrize("field", ["concurrency", "batch_size", "max_attempts", "log_retention_days"])
@pytest.mark.parametrize("value", [0, -1])
def test_sync_options_refuse_counts_below_one_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"SyncOptions.{field} must be a whole number >= 1, got {value}"):
        SyncOptions(**{field: value})


def test_sync_options_keep_their_optional_counts_optional():
    options = SyncOptions(batch_size=None, log_retention_days=None)
    # concurrency None: the connector's batches_in_flight (4; Mailchimp 20)
    assert (options.batch_size, options.log_retention_days, options.concurrency) == (None, None, None)


# the guards, end to end


def test_an_upsert_sync_of_an_emptied_segment_is_blocked_like_a_mirror_sync(project, warehouse, sandbox, connections):
    # the list holds the segment (a mirror run puts them there; upsert's adds only upsert the contacts),
    # then the same sync runs as upsert on an emptied segment: the 260 of 260
    first = run(project, warehouse, connections, sync_of(project, "vip", "hubspot_crm"), DAY_2)
    held = sandbox.state.hubspot_list_emails(sandbox.fixtures.hubspot_list_id)
    assert first.succeeded["add"] > 0 and len(held) == first.succeeded["add"]
    sync = sync_of(project, "vip", "hubspot_crm", "upsert")
    remove_members(warehouse, "vip", DAY_2)
    before = len(writes(sandbox, "hubspot"))

    with pytest.raises(SyncBlockedError, match="segment is empty"):
        run(project, warehouse, connections, sync, DAY_2)

    assert len(writes(sandbox, "hubspot")) == before  # nothing sent
    assert sandbox.state.hubspot_list_emails(sandbox.fixtures.hubspot_list_id) == held
    assert warehouse.query("SELECT mode, status FROM segprovider_sync_runs ORDER BY started_at")[-1] == \
        ("upsert", "blocked")
    # the same override as mirror's empties it on purpose
    emptied = run(project, warehouse, connections, sync, DAY_2, allow_mass_removal=True)
    assert emptied.succeeded["remove"] == len(held)
    assert not sandbox.state.hubspot_list_emails(sandbox.fixtures.hubspot_list_id)


def test_an_upsert_sync_removing_more_than_the_allowed_fraction_needs_an_override(
        project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "hubspot_crm", "upsert")
    run(project, warehouse, connections, sync, DAY_2)
    kept = sorted(state_keys(warehouse, sync))[:5]
    remove_members(warehouse, "vip", DAY_2, keep=kept)
    with pytest.raises(SyncBlockedError, match="max_remove_fraction"):
        run(project, warehouse, connections, sync, DAY_2)
    record = run(project, warehouse, connections, sync, DAY_2, allow_mass_removal=True)
    assert record.succeeded["remove"] > 0 and state_keys(warehouse, sync) <= set(kept)


def test_add_only_keeps_members_who_left_the_segment(project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "mailchimp_newsletter", "add_only")
    fixtures = sandbox.fixtures
    first = run(project, warehouse, connections, sync, DAY_2)
    held = set(sandbox.state.mailchimp_segment_emails(fixtures.mailchimp_list_id, fixtures.mailchimp_segment_id))
    assert first.succeeded["add"] > 0 and len(held) == first.succeeded["add"]
    # half of them leave the segment, then all of them: add_only removes no one, and nothing holds it back
    members = sorted(state_keys(warehouse, sync))
    remove_members(warehouse, "vip", DAY_2, keep=members[: len(members) // 2])
    half = run(project, warehouse, connections, sync, DAY_2)
    remove_members(warehouse, "vip", DAY_2)
    empty = run(project, warehouse, connections, sync, DAY_2)

    for record in (half, empty):
        assert record.status == "succeeded"
        assert (record.plan.remove, record.succeeded["remove"]) == (0, 0)
    assert not [r for r in sandbox.state.requests("mailchimp") if r.method == "DELETE" or "/remove" in r.path]
    assert set(sandbox.state.mailchimp_segment_emails(fixtures.mailchimp_list_id,
                                                      fixtures.mailchimp_segment_id)) == held
    assert state_keys(warehouse, sync) == set(members)


# the batch split that isolates a bad record


def test_a_batch_refused_as_a_whole_is_split_until_the_bad_record_is_isolated():
    records = [Record(str(i), f"user{i}@example.org") for i in range(8)]
    calls: list[list[str]] = []

    def send(batch):
        calls.append([r.key for r in batch])
        if any(r.key == "5" for r in batch):
            raise TerminalDestinationError("invalid property value", status=400, destination="hubspot_crm")
        return BatchResult(acknowledged=[r.key for r in batch])

    result = send_isolating(send, records, {}, "add")

    assert sorted(result.acknowledged) == ["0", "1", "2", "3", "4", "6", "7"]
    assert [(r.key, r.code) for r in result.rejected] == [("5", "http_400")]
    # bisected: 8 -> 4 + 4 -> 2 + 2 -> 1 + 1, never one call per record
    assert len(calls) == 7 and ["5"] in calls


@pytest.mark.parametrize("error", [
    TerminalDestinationError("forbidden", status=403, destination="hubspot_crm"),
    TransientDestinationError("unavailable", status=503, destination="hubspot_crm"),
])
def test_a_refusal_about_the_destination_is_never_split(error):
    calls = []

    def send(batch):
        calls.append(batch)
        raise error

    with pytest.raises(type(error)):
        send_isolating(send, [Record(str(i), f"user{i}@example.org") for i in range(4)], {}, "add")
    assert len(calls) == 1


def test_a_bad_value_refusing_a_hubspot_batch_rejects_only_its_record(project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "hubspot_crm")
    members = sorted(run(project, warehouse, connections, sync, DAY_2, dry_run=True, sample_size=1000)
                     .plan.samples["add"])
    bad = members[len(members) // 2]
    # a number property HubSpot refuses: the whole batch upsert answers 400 VALIDATION_ERROR
    warehouse.execute("ALTER TABLE customers ALTER lifetime_value TYPE VARCHAR")
    warehouse.execute(f"UPDATE customers SET lifetime_value = 'a lot' WHERE customer_id = {int(bad)}")

    record = run(project, warehouse, connections, sync, DAY_2, batch_size=50)

    assert record.status == "partial" and record.failed["add"] == 1
    assert record.succeeded["add"] == len(members) - 1
    assert warehouse.query(f"SELECT customer_key, error_code FROM segprovider_rejected_records "
                           f"WHERE sync_id = '{sync.id}' AND error_code <> 'missing_identity'") == [(bad, "http_400")]
    assert state_keys(warehouse, sync) == set(members) - {bad}
    refused = [r for r in sandbox.state.requests("hubspot") if r.status == 400]
    assert refused, "the sandbox refused the whole batch at least once"


# the dry run's delete preview


def test_a_dry_run_previews_its_removals_with_sample_keys_and_sends_nothing(project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "mailchimp_newsletter")
    run(project, warehouse, connections, sync, DAY_1)
    on_day_1 = state_keys(warehouse, sync)
    desired_day_2 = {k for (k,) in warehouse.query(
        "SELECT customer_key FROM segprovider_memberships WHERE segment = 'vip' AND as_of = TIMESTAMP '2026-11-24'")}
    leaving = sorted(on_day_1 - desired_day_2)
    assert leaving, "the generated data should drop some vip members between the two days"
    before, state_before = len(writes(sandbox, "mailchimp")), warehouse.query(
        "SELECT * FROM segprovider_sync_state ORDER BY customer_key")

    preview = run(project, warehouse, connections, sync, DAY_2, dry_run=True, sample_size=3)

    assert preview.status == "dry_run" and preview.plan.remove == len(leaving)
    assert preview.plan.samples["remove"] == leaving[:3]  # sample keys of who would be removed
    assert len(writes(sandbox, "mailchimp")) == before
    assert warehouse.query("SELECT * FROM segprovider_sync_state ORDER BY customer_key") == state_before
    # and the real run removes exactly the previewed set
    done = run(project, warehouse, connections, sync, DAY_2)
    assert done.succeeded["remove"] == len(leaving) and not (state_keys(warehouse, sync) & set(leaving))

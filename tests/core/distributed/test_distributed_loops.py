"""No loops, and what every change leaves behind: audit rows, rejected records, consent, the change-set gate."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_segprovider.core.distributed import ChangeSetTooLargeError, ReconcileError, Reconciler
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.state.distributed import PULLS
from support.distributed_world import (
    client_factory,
    last_request_id,
    make_project,
    membership_writes,
    reset,
)

TWO_SYSTEMS = ("hubspot_crm", "mailchimp_newsletter")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@pytest.fixture(scope="module")
def two_system_project(module_tmp):
    root = make_project(module_tmp / "two", "reconcile:\n  - {segment: sales_priority, policy: most_recent, "
                        "tie_break: add, max_change_fraction: 1.0}\n", third_system=False)
    return load_project(root)


@pytest.fixture
def systems(warehouse, sandbox):
    reset(warehouse, sandbox.systems)
    return sandbox.systems


def test_two_systems_that_a_naive_rule_would_bounce_forever_converge_in_one_cycle_and_stay(
        two_system_project, warehouse, customers, sandbox, systems) -> None:
    emails = list(customers.values())[:10]
    reconciler = Reconciler(two_system_project, warehouse, client_factory(two_system_project, sandbox))
    # agreed start: 0-5 in both; then each tool is edited, both ways
    for system in TWO_SYSTEMS:
        for email in emails[:6]:
            systems.edit(system, email, True, _now() - dt.timedelta(hours=2))
    reconciler.reconcile(allow_large_change=True)
    systems.edit("hubspot_crm", emails[6], True)            # added in the CRM
    systems.edit("mailchimp_newsletter", emails[7], True)   # added in Mailchimp
    systems.edit("hubspot_crm", emails[0], False)           # removed in the CRM
    systems.edit("mailchimp_newsletter", emails[1], False)  # removed in Mailchimp

    cycles = []
    for _ in range(10):
        before = last_request_id(sandbox)
        result = reconciler.reconcile(allow_large_change=True)
        writes = membership_writes(sandbox, before)
        cycles.append((result, sum(len(w) for w in writes.values()), systems.held()))

    first, sent, held = cycles[0]
    assert sent == first["plan"]["total_changes"] > 0
    assert held["hubspot_crm"] == held["mailchimp_newsletter"]
    assert held["hubspot_crm"] == set(emails[2:8])  # 0 and 1 removed, 6 and 7 added
    for result, sent, now_held in cycles[1:]:
        assert result["plan"]["total_changes"] == 0 and sent == 0
        assert reconciler.audit(result["run_id"]) == []
        assert now_held == held

    # the naive rule ("a membership whose timestamp is newer than the last pull is an edit") would
    # have taken our own writes of cycle 1 for new edits in cycle 2 and pushed them back
    second_run = cycles[1][0]["run_id"]
    first_pull = warehouse.query(f"SELECT MAX(pulled_at) FROM {PULLS} WHERE run_id = '{first['run_id']}'")[0][0]
    echoes = warehouse.query(f"SELECT COUNT(*) FROM {PULLS} WHERE run_id = '{second_run}' AND changed_at > "
                             f"TIMESTAMP '{first_pull.isoformat(sep=' ')}'")[0][0]
    assert echoes > 0


def test_refused_records_are_not_in_the_audit_log_and_are_kept_as_rejected(
        two_system_project, warehouse, customers, sandbox, systems) -> None:
    emails = list(customers.values())[:4]
    # a customer whose address Mailchimp refuses (HubSpot takes it)
    key = next(iter(customers))
    warehouse.execute(f"UPDATE customers SET email = 'not-an-address@@example' WHERE CAST(customer_id AS VARCHAR) "
                      f"= '{key}'")
    try:
        systems.edit("hubspot_crm", "not-an-address@@example", True)
        for email in emails[1:]:
            systems.edit("hubspot_crm", email, True)
        reconciler = Reconciler(two_system_project, warehouse, client_factory(two_system_project, sandbox))
        before = last_request_id(sandbox)
        result = reconciler.reconcile(allow_large_change=True)
        audit = reconciler.audit(result["run_id"])
        assert key not in {a["customer_key"] for a in audit}
        assert len(audit) == len(membership_writes(sandbox, before)["mailchimp_newsletter"]) == 3
        rejected = warehouse.query("SELECT customer_key, operation FROM segprovider_rejected_records")
        assert rejected == [(key, "add")]
        assert result["applied"]["sales_priority"]["mailchimp_newsletter"]["rejected"] == 1
    finally:
        warehouse.execute(f"UPDATE customers SET email = '{customers[key]}' WHERE CAST(customer_id AS VARCHAR) "
                          f"= '{key}'")


def test_a_member_without_consent_is_removed_not_spread_and_the_reason_says_so(
        two_system_project, warehouse, customers, sandbox, systems) -> None:
    opted_out = warehouse.query(
        "SELECT CAST(c.customer_id AS VARCHAR), LOWER(c.email) FROM customers c WHERE c.email IS NOT NULL AND "
        "c.customer_id NOT IN (SELECT customer_id FROM consents WHERE channel = 'email' AND opted_in) LIMIT 1")
    key, email = opted_out[0]
    systems.edit("hubspot_crm", email, True)
    reconciler = Reconciler(two_system_project, warehouse, client_factory(two_system_project, sandbox))
    result = reconciler.reconcile(allow_large_change=True)
    assert systems.held() == {"hubspot_crm": set(), "mailchimp_newsletter": set(), "mailchimp_tags": set()}
    [row] = reconciler.audit(result["run_id"])
    assert (row["system"], row["customer_key"], row["member_after"], row["rule"]) == ("hubspot_crm", key, False,
                                                                                      "consent")


def test_the_change_set_gate_stops_before_anything_is_sent_and_apply_refuses_the_run(
        warehouse, customers, sandbox, systems, module_tmp) -> None:
    project = load_project(make_project(module_tmp / "gated", "reconcile:\n  - {segment: sales_priority, "
                                        "policy: authoritative, authority: hubspot_crm, max_change_fraction: 0.3}\n",
                                        third_system=False))
    emails = list(customers.values())[:10]
    for system in TWO_SYSTEMS:
        for email in emails:
            systems.edit(system, email, True, _now() - dt.timedelta(hours=2))
    reconciler = Reconciler(project, warehouse, client_factory(project, sandbox))
    reconciler.reconcile()
    for email in emails[:4]:  # someone empties 40% of the CRM list
        systems.edit("hubspot_crm", email, False)
    before = last_request_id(sandbox)
    with pytest.raises(ChangeSetTooLargeError) as caught:
        reconciler.reconcile(run_id="reconcile__blocked")
    assert "mailchimp_newsletter: 4 changes (+0 -4) to a list of 10 = 40% > max_change_fraction 30%" in str(
        caught.value)
    assert not any(membership_writes(sandbox, before).values())
    assert len(systems.held()["mailchimp_newsletter"]) == 10
    with pytest.raises(ReconcileError, match="blocked by the change-set gate"):
        reconciler.apply("reconcile__blocked")
    # a wrong (or unrendered) run id is an error, never an empty success
    for step in (reconciler.apply, reconciler.drift_report):
        with pytest.raises(ReconcileError, match="'None' has pulled nothing"):
            step("None")
    assert not any(membership_writes(sandbox, before).values())
    # an explicit override lets a new run through, and the audit says which rule removed them
    result = reconciler.reconcile(allow_large_change=True)
    assert {(a["system"], a["rule"]) for a in reconciler.audit(result["run_id"])} == {
        ("mailchimp_newsletter", "authoritative:hubspot_crm")}
    assert systems.held()["mailchimp_newsletter"] == set(emails[4:])


def test_a_list_that_cannot_be_read_back_receives_the_resolved_list_and_reports_its_count(
        warehouse, customers, sandbox, systems, module_tmp) -> None:
    from airflow_segprovider.destinations.meta import normalize_and_hash

    root = make_project(module_tmp / "with_meta", "reconcile:\n  - {segment: sales_priority, policy: union, "
                        "max_change_fraction: 1.0}\n", third_system=False)
    (root / "meta_sync.yml").write_text(
        "syncs:\n  - {segment: sales_priority, destination: meta_ads, mode: mirror, max_remove_fraction: 1.0,\n"
        "     target: {audience_id: \"23850000000000003\"}}\n")
    project = load_project(root)
    assert project.reconcile["sales_priority"].systems == TWO_SYSTEMS  # Meta has no say, it only receives
    sandbox.state.seed_meta_audience("23850000000000003", "1234567890", "sales_priority_ads")
    emails = list(customers.values())[:6]
    for email in emails[:3]:
        systems.edit("hubspot_crm", email, True)
    for email in emails[3:]:
        systems.edit("mailchimp_newsletter", email, True)
    reconciler = Reconciler(project, warehouse, client_factory(project, sandbox))
    result = reconciler.reconcile(allow_large_change=True)
    audience = sandbox.state.meta_audience_hashes("23850000000000003")
    sent = {a["customer_key"] for a in reconciler.audit(result["run_id"]) if a["system"] == "meta_ads"}
    assert audience == {normalize_and_hash(customers[key]) for key in sent} and sent  # ads consent may drop some
    counts = warehouse.query("SELECT system, readable, reported_count, pulled_members FROM "
                             f"segprovider_reconcile_counts WHERE run_id = '{result['run_id']}' ORDER BY system")
    assert counts[-1][:2] == ("meta_ads", False) and counts[-1][3] is None and counts[-1][2] is not None
    again = reconciler.reconcile(allow_large_change=True)
    assert again["plan"]["total_changes"] == 0

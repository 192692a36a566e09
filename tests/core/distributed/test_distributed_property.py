"""Property: three sandbox systems diverged at random agree after one reconcile, under every policy,
and a second reconcile right after changes nothing.

The systems are the Mailchimp static segment ``sales_priority``, the Mailchimp tag
``sales_priority_tag`` and the HubSpot list 102, read and written over loopback HTTP. Divergence is
made as a person would make it in each tool: adds and removes, some with stale timestamps (a HubSpot
membership dated before our last write is a stale source and is skipped; Mailchimp only dates the
member, so its edits are dated when seen).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_segprovider.core.distributed.reconciler import Reconciler
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.sync import SyncOptions
from support.distributed_world import (
    SYSTEMS,
    client_factory,
    last_request_id,
    make_project,
    membership_writes,
    reset,
    with_policy,
)

CUSTOMERS = 12
POLICIES = st.one_of(
    st.builds(lambda a: {"policy": "authoritative", "authority": a}, st.sampled_from(SYSTEMS)),
    st.builds(lambda t: {"policy": "most_recent", "tie_break": t}, st.sampled_from(("add", "remove", *SYSTEMS))),
    st.just({"policy": "union"}),
    st.just({"policy": "intersection"}),
)
EDITS = st.lists(st.tuples(st.sampled_from(SYSTEMS), st.integers(0, CUSTOMERS - 1), st.booleans(),
                           st.sampled_from(("fresh", "fresh", "stale"))), max_size=14)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@given(policy=POLICIES, initial=st.sets(st.integers(0, CUSTOMERS - 1)), edits=EDITS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
def test_one_reconcile_makes_three_diverged_systems_agree_and_the_next_changes_nothing(
        tmp_path_factory, warehouse, customers, sandbox, policy, initial, edits) -> None:
    systems = sandbox.systems
    reset(warehouse, systems)
    base = _project(tmp_path_factory)
    project = with_policy(base, authority=policy.get("authority"), tie_break=policy.get("tie_break", "remove"),
                          policy=policy["policy"], max_change_fraction=1.0)
    emails = list(customers.values())[:CUSTOMERS]
    reconciler = Reconciler(project, warehouse, client_factory(project, sandbox))
    options = SyncOptions(allow_mass_removal=True)

    seeded = _now() - dt.timedelta(hours=2)
    for system in SYSTEMS:
        for index in initial:
            systems.edit(system, emails[index], True, seeded)
    first = reconciler.reconcile(options=options, allow_large_change=True)
    assert first["plan"]["total_changes"] == 0  # the lists agreed: the first run only learns them
    assert set().union(*systems.held().values()) == {emails[i] for i in initial}

    # a person edits the three tools
    stale = _now() - dt.timedelta(hours=1)  # before the first reconcile wrote down what each system held
    last_edit: dict[tuple[str, int], str] = {}
    for order, (system, index, present, timing) in enumerate(edits):
        at = stale if timing == "stale" else _now() + dt.timedelta(milliseconds=order + 1)
        systems.edit(system, emails[index], present, at)
        last_edit[(system, index)] = timing
    diverged = systems.held()

    before = last_request_id(sandbox)
    second = reconciler.reconcile(options=options, allow_large_change=True)
    held = systems.held()
    assert held[SYSTEMS[0]] == held[SYSTEMS[1]] == held[SYSTEMS[2]], (policy, edits, held)
    final = held[SYSTEMS[0]]

    # what each policy promises
    start = {emails[i] for i in initial}
    stale_hubspot_adds = {emails[i] for (s, i), timing in last_edit.items()
                          if s == "hubspot_crm" and timing == "stale" and emails[i] in diverged[s] - start}
    effective = {s: diverged[s] - (stale_hubspot_adds if s == "hubspot_crm" else set()) for s in SYSTEMS}
    if policy["policy"] == "authoritative":
        assert final == diverged[policy["authority"]]
    elif policy["policy"] == "union":
        assert final == set().union(*effective.values())
    elif policy["policy"] == "intersection":
        assert final == set.intersection(*effective.values())
    else:  # a customer changed in one place only ends up as that change made it
        changed = Counter(i for (s, i) in last_edit
                          if (emails[i] in diverged[s]) != (emails[i] in start) and emails[i] not in stale_hubspot_adds)
        for (system, index) in last_edit:
            email = emails[index]
            if changed[index] == 1 and (email in diverged[system]) != (email in start) \
                    and email not in stale_hubspot_adds and sum(1 for (_, i) in last_edit if i == index) == 1:
                assert (email in final) == (email in diverged[system]), (system, email)

    # every change the sandbox received is in the audit log, with its rule and reason
    writes = membership_writes(sandbox, before)
    audit = reconciler.audit(second["run_id"])
    for system in SYSTEMS:
        logged = [a for a in audit if a["system"] == system]
        assert sorted(a["member_after"] for a in logged) == sorted(op == "add" for op, _ in writes[system])
        assert all(a["rule"] and a["reason"] and a["rule"] != "unplanned" for a in logged)
        assert len(logged) == len(held[system] ^ diverged[system])
    assert len(audit) == second["plan"]["total_changes"]

    # the very next run: nothing to do, nothing sent, nothing logged
    before = last_request_id(sandbox)
    third = reconciler.reconcile(options=options, allow_large_change=True)
    assert third["plan"]["total_changes"] == 0
    assert not any(membership_writes(sandbox, before).values())
    assert reconciler.audit(third["run_id"]) == []
    assert systems.held() == held


_PROJECTS: dict[str, object] = {}


def _project(tmp_path_factory):
    if "project" not in _PROJECTS:
        root = make_project(tmp_path_factory.mktemp("property"),
                            "reconcile:\n  - {segment: sales_priority, policy: union, max_change_fraction: 1.0}\n")
        _PROJECTS["project"] = load_project(root)
    return _PROJECTS["project"]

"""The distributed model honours the suppression list: a reconcile never spreads a suppressed member to the other
systems and takes it out of the one that holds it. Sandbox over loopback HTTP (Mailchimp segments, a HubSpot list).
"""

from __future__ import annotations

import pytest

from airflow_segprovider.core.distributed import Reconciler
from airflow_segprovider.core.privacy import add_suppression
from airflow_segprovider.core.project.loader import load_project
from support.distributed_world import client_factory, make_project, reset

pytestmark = pytest.mark.integration


def test_a_reconcile_never_spreads_a_suppressed_member(warehouse, customers, sandbox, module_tmp) -> None:
    project = load_project(make_project(module_tmp / "two", "reconcile:\n  - {segment: sales_priority, "
                                        "policy: most_recent, tie_break: add, max_change_fraction: 1.0}\n",
                                        third_system=False))
    systems = sandbox.systems
    reset(warehouse, systems)
    (kept_key, kept), (suppressed_key, suppressed) = sorted(customers.items())[:2]
    for email in (kept, suppressed):  # both added by hand in HubSpot: the policy spreads such an edit
        systems.edit("hubspot_crm", email, True)
    add_suppression(warehouse, identity=suppressed.upper(), reason="complaint", added_by="test")

    Reconciler(project, warehouse, client_factory(project, sandbox)).reconcile(allow_large_change=True)

    held = systems.held()
    assert kept in held["mailchimp_newsletter"] and kept in held["hubspot_crm"]
    assert suppressed not in held["mailchimp_newsletter"] and suppressed not in held["hubspot_crm"]
    sent = " ".join((r.body or "").lower() for r in sandbox.state.requests("mailchimp"))
    assert suppressed not in sent

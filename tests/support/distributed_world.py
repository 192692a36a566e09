"""Helpers for the distributed-model tests: three readable sandbox systems holding one segment.

The project is the example project plus a third readable system for ``sales_priority``: a Mailchimp
tag in the same audience (``mailchimp_tags``). The three systems are the Mailchimp static segment
``sales_priority``, the Mailchimp tag ``sales_priority_tag`` and the HubSpot list 102. Edits "by a
person" go straight into the sandbox's store (as a person in the tool's UI would make them), so the sandbox's request
log holds exactly what this project sent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.example.generate import generate
from segprovider_sandbox import serve

REPO = Path(__file__).resolve().parents[2]
FAST_RETRIES = {"backoff_base": 0.01, "backoff_max": 0.05, "max_attempts": 6}
TAG_SEGMENT_ID = 1003  # 1001 and 1002 are the demo fixtures' static segments (vip, sales_priority)
TAG_NAME = "sales_priority_tag"
SYSTEMS = ("hubspot_crm", "mailchimp_newsletter", "mailchimp_tags")

THIRD_SYSTEM = """
destinations:
  - name: mailchimp_tags
    kind: mailchimp
    connection_id: segprovider_mailchimp
    channel: email
    identity: email
    description: The same audience, membership kept as a tag.
    config:
      list_id: a1b2c3d4e5
      membership: tags
      tag: sales_priority_tag

syncs:
  - {segment: sales_priority, destination: mailchimp_tags, mode: mirror, max_remove_fraction: 1.0}
"""


def make_project(tmp_path: Path, reconcile_yaml: str | None = None, *, third_system: bool = True) -> Path:
    """A copy of the example project, with a third system and (optionally) its own reconcile section."""
    project = tmp_path / "segments_project"
    shutil.copytree(EXAMPLE_PROJECT, project, ignore=shutil.ignore_patterns("landing"))
    if third_system:
        (project / "third_system.yml").write_text(THIRD_SYSTEM)
    if reconcile_yaml is not None:
        (project / "reconcile.yml").write_text(reconcile_yaml)
    return project


def connections(sandbox: Any) -> dict[str, dict[str, Any]]:
    from segprovider_sandbox import DEFAULT_HUBSPOT_TOKEN, DEFAULT_MAILCHIMP_API_KEY, DEFAULT_META_ACCESS_TOKEN

    mailchimp = {"host": f"{sandbox.url}/3.0", "password": DEFAULT_MAILCHIMP_API_KEY, "extra": FAST_RETRIES}
    return {"mailchimp_newsletter": mailchimp, "mailchimp_tags": mailchimp,
            "hubspot_crm": {"host": sandbox.url, "password": DEFAULT_HUBSPOT_TOKEN, "extra": FAST_RETRIES},
            "meta_ads": {"host": sandbox.url, "password": DEFAULT_META_ACCESS_TOKEN, "extra": FAST_RETRIES}}


def client_factory(project: Any, sandbox: Any):
    from airflow_segprovider.destinations.connection import build_client

    conns = connections(sandbox)
    return lambda sync: build_client(project, sync, conns[sync.destination])


@dataclass
class Systems:
    """Read and edit the three systems of ``sales_priority`` in the sandbox, by email."""

    sandbox: Any
    list_id: str = "a1b2c3d4e5"
    segment_id: int = 1002
    hubspot_list: str = "102"
    emails_by_key: dict[str, str] = field(default_factory=dict)

    def held(self) -> dict[str, set[str]]:
        state = self.sandbox.state
        return {
            "mailchimp_newsletter": {e.lower() for e in state.mailchimp_segment_emails(self.list_id, self.segment_id)},
            "mailchimp_tags": {e.lower() for e in state.mailchimp_segment_emails(self.list_id, TAG_SEGMENT_ID)},
            "hubspot_crm": {e.lower() for e in state.hubspot_list_emails(self.hubspot_list)},
        }

    def edit(self, system: str, email: str, present: bool, at: dt.datetime | None = None) -> None:
        epoch = at.replace(tzinfo=dt.timezone.utc).timestamp() if at is not None else None
        state = self.sandbox.state
        if system == "hubspot_crm":
            state.edit_hubspot_list(self.hubspot_list, email, present, at=epoch)
        else:
            segment = self.segment_id if system == "mailchimp_newsletter" else TAG_SEGMENT_ID
            state.edit_mailchimp_segment(self.list_id, segment, email, present, at=epoch)


def seed_sandbox(sandbox: Any) -> Systems:
    fixtures = sandbox.state.seed_demo_fixtures()
    sandbox.state.seed_mailchimp_static_segment(fixtures.mailchimp_list_id, TAG_SEGMENT_ID, TAG_NAME)
    sandbox.state.seed_meta_audience("23850000000000002", fixtures.meta_ad_account_id, "high_intent")
    return Systems(sandbox, fixtures.mailchimp_list_id, fixtures.reconciled_mailchimp_segment_id,
                   fixtures.reconciled_hubspot_list_id)


def consenting_customers(warehouse: Any, limit: int) -> dict[str, str]:
    """Customer key -> email of customers who may receive email (opted in, latest answer), with an email."""
    rows = warehouse.query(
        "SELECT CAST(c.customer_id AS VARCHAR), LOWER(c.email) FROM customers c JOIN ("
        "  SELECT customer_id, opted_in, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY updated_at DESC,"
        "  opted_in ASC) AS rn FROM consents WHERE channel = 'email') k ON k.customer_id = c.customer_id AND k.rn = 1"
        f" WHERE k.opted_in AND c.email IS NOT NULL ORDER BY c.customer_id LIMIT {int(limit)}")
    return dict(rows)


def with_policy(project: Any, **changes: Any) -> Any:
    """The project with ``sales_priority``'s reconcile policy changed (e.g. ``policy="union"``)."""
    policy = dataclasses.replace(project.reconcile["sales_priority"], **changes)
    return dataclasses.replace(project, reconcile={**project.reconcile, "sales_priority": policy})


def membership_writes(sandbox: Any, since_id: int = 0) -> dict[str, list[tuple[str, str]]]:
    """Membership changes the sandbox received, per system: ``(add|remove, email or contact id)``.

    Mailchimp: ``members_to_add``/``members_to_remove`` of ``POST /lists/{id}/segments/{segment}``;
    HubSpot: ``recordIdsToAdd``/``recordIdsToRemove`` of ``PUT /crm/v3/lists/{id}/memberships/add-and-remove``.
    """
    out: dict[str, list[tuple[str, str]]] = {s: [] for s in SYSTEMS}
    for request in sandbox.state.requests():
        if request.id <= since_id or request.status is None or request.status >= 300:
            continue
        path = request.path.rstrip("/")
        if request.method == "POST" and "/segments/" in path and not path.endswith("/members"):
            body = json.loads(request.body or "{}")
            system = "mailchimp_tags" if path.endswith(f"/{TAG_SEGMENT_ID}") else "mailchimp_newsletter"
            out[system] += [("add", e.lower()) for e in body.get("members_to_add") or []]
            out[system] += [("remove", e.lower()) for e in body.get("members_to_remove") or []]
        elif request.method == "PUT" and path.endswith("/memberships/add-and-remove"):
            body = json.loads(request.body or "{}")
            out["hubspot_crm"] += [("add", str(i)) for i in body.get("recordIdsToAdd") or []]
            out["hubspot_crm"] += [("remove", str(i)) for i in body.get("recordIdsToRemove") or []]
    return out


def last_request_id(sandbox: Any) -> int:
    requests = sandbox.state.requests()
    return requests[-1].id if requests else 0


def _state_tables() -> tuple[str, ...]:
    """Every table the reconcile and the sync engine keep state in, from their own constants."""
    from airflow_segprovider.core.state import distributed, sync

    return (distributed.PULLS, distributed.COUNTS, distributed.DECISIONS, distributed.PLAN, distributed.AUDIT,
            distributed.AGREED, distributed.RUNS, distributed.DRIFT, sync.STATE, sync.REJECTED, sync.RUNS)


def reset(warehouse: Any, systems: Systems) -> None:
    """Forget every reconcile and empty the three lists (between property-test examples)."""
    for table in _state_tables():
        warehouse.execute(f"DROP TABLE IF EXISTS {table}")
    with systems.sandbox.state.write() as cursor:
        cursor.execute("DELETE FROM mailchimp_segment_members")
        cursor.execute("DELETE FROM hubspot_list_members")


# Fixtures (module-scoped: one warehouse and one seeded sandbox per test module), imported by the
# conftest of tests/core/distributed and by the CLI test of the distributed model.
@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("distributed")


@pytest.fixture(scope="module")
def warehouse(module_tmp):
    warehouse = DuckDBWarehouse(module_tmp / "warehouse.duckdb")
    generate(warehouse, 400, seed=5)
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="module")
def customers(warehouse) -> dict[str, str]:
    """Customer key -> email of 40 customers who may receive email."""
    return consenting_customers(warehouse, 40)


@pytest.fixture(scope="module")
def sandbox(module_tmp):
    with serve(db_path=module_tmp / "sandbox.db") as running:
        running.systems = seed_sandbox(running)
        yield running

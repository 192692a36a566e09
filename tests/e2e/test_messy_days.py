"""Messy data, end to end (issue #17): four days of the real ``segprovider`` CLI against a sandbox process.

The example project, 500 generated customers, the sandbox started as its own process (``segprovider sandbox
--seed``), credentials in ``AIRFLOW_CONN_*`` as in production, and Meta's token wrong throughout. Each day the
``vip`` segment is synced to Mailchimp and HubSpot, and every Meta sync is attempted. Over the days:

1. a first sync; Meta's syncs fail and are reported, the others run;
2. addresses change, to a valid and to an invalid one; two customers come to share an address; in Mailchimp
   and HubSpot a member is removed and a stranger added by hand; the sync runs with ``--repair``;
3. 30% of the ``vip`` segment opts out of e-mail (one holder of the shared address among them); a member is
   removed by hand again;
4. a last sync with ``--repair``.

At the end every Mailchimp and HubSpot list holds exactly the intended members (computed here from the
warehouse with plain SQL, not by the engine: the segment, minus anyone whose latest e-mail answer is not yes,
minus invalid addresses, minus any address a customer who opted out holds, plus the strangers added by hand,
which a sync never removes), Meta's syncs are reported failed, and the sandbox's request log holds no add,
upsert or subscribe of an address that was not allowed that day.

Vendor behaviour relied on: Mailchimp's batch subscribe (https://mailchimp.com/developer/marketing/api/lists/
batch-subscribe-or-unsubscribe/) and static segment members; HubSpot's batch upsert
(https://developers.hubspot.com/docs/api/crm/contacts) and list memberships
(https://developers.hubspot.com/docs/api/crm/lists), each as the sandbox's contract tests pin them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
import shutil
from pathlib import Path

import pytest

from airflow_segprovider.cli.demo import connection_variables, sandbox_connections
from airflow_segprovider.cli.main import EXIT_ERROR, EXIT_OK, main
from airflow_segprovider.cli.sandbox import sandbox_process
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.state.membership import MEMBERSHIPS
from airflow_segprovider.core.state.sync import STATE
from airflow_segprovider.core.sync import centralized_syncs
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.example import EXAMPLE_PROJECT
from segprovider_sandbox import admin
from segprovider_sandbox.admin.directory import find_list, list_members
from segprovider_sandbox.store import SandboxState
from support.sandbox import SANDBOX_CREDENTIALS

pytestmark = pytest.mark.integration

DAYS = [dt.date(2026, 11, 22), dt.date(2026, 11, 23), dt.date(2026, 11, 24), dt.date(2026, 11, 25)]
#: after every answer the generated data holds: the latest answer, so it wins
OPTED_OUT_AT = "TIMESTAMP '2026-12-01 09:00:00'"
STRANGER = "walked.in.by.hand@example.net"
VALID = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: the syncs run each day: the vip segment to Mailchimp and HubSpot, and every Meta sync (whose token is wrong)
SELECTED = ("--sync", "vip", "--sync", "meta_ads")
#: the CLI's retries, kept short: a wrong token is refused at once anyway
RETRY = {"backoff_base": 0.02, "backoff_max": 0.1, "max_attempts": 3}


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


class World:
    """The project copy, the warehouse file and the running sandbox of the test."""

    def __init__(self, root: Path, sandbox_db: Path) -> None:
        self.project_dir = root / "project"
        self.db = root / "warehouse.duckdb"
        self.state = SandboxState(sandbox_db)
        self.sandbox_db = sandbox_db
        self.project = load_project(self.project_dir)
        #: per day: (first request id of the day, addresses not allowed that day)
        self.windows: list[tuple[int, set[str]]] = []

    def sql(self, statement: str) -> list[tuple]:
        warehouse = DuckDBWarehouse(self.db)
        try:
            return warehouse.query(statement)
        finally:
            warehouse.close()

    def execute(self, *statements: str) -> None:
        warehouse = DuckDBWarehouse(self.db)
        try:
            for statement in statements:
                warehouse.execute(statement)
        finally:
            warehouse.close()

    def held_keys(self, sync_id: str) -> list[str]:
        return sorted(k for (k,) in self.sql(f"SELECT customer_key FROM {STATE} WHERE sync_id = '{sync_id}' "
                                             "AND in_destination"))

    def email(self, key: str) -> str:
        return self.sql(f"SELECT LOWER(TRIM(email)) FROM customers WHERE customer_id = {int(key)}")[0][0]

    def not_allowed(self) -> set[str]:
        """Addresses nobody may be sent on e-mail now: held by a customer whose latest answer is not yes."""
        rows = self.sql(
            "SELECT LOWER(TRIM(c.email)) FROM customers AS c LEFT JOIN (SELECT customer_id, opted_in, ROW_NUMBER() "
            "OVER (PARTITION BY customer_id ORDER BY updated_at DESC, opted_in ASC) AS rn FROM consents "
            "WHERE channel = 'email') AS a ON a.customer_id = c.customer_id AND a.rn = 1 "
            "WHERE c.email IS NOT NULL AND NOT COALESCE(a.opted_in, FALSE)")
        return {email for (email,) in rows}

    def day(self, index: int, *extra: str) -> tuple[int, str, str]:
        """Evaluate the day's snapshot and run the selected syncs, as a daily job would."""
        as_of = DAYS[index].isoformat()
        code, out, err = cli("evaluate", str(self.project_dir), "--db", str(self.db), "--as-of", as_of)
        assert code == EXIT_OK, err
        self.windows.append((self.last_request_id() + 1, self.not_allowed()))
        return cli("sync", str(self.project_dir), "--db", str(self.db), "--as-of", as_of, *SELECTED, *extra)

    def last_request_id(self) -> int:
        requests = self.state.requests()
        return requests[-1].id if requests else 0

    def by_hand(self, operation: str, vendor: str, list_name: str, email: str) -> None:
        assert admin.main([operation, vendor, list_name, email, "--db", str(self.sandbox_db)]) == 0

    def in_list(self, vendor: str, name: str) -> set[str]:
        return {m.key.lower() for m in list_members(self.state, find_list(self.state, vendor, name))}


def intended(world: World, segment: str, arm: str | None, as_of: dt.date) -> set[str]:
    """The addresses a list must hold, from the warehouse alone: members allowed on e-mail, with a valid address."""
    arm_filter = f" AND m.arm = '{arm}'" if arm else ""
    rows = world.sql(f"SELECT LOWER(TRIM(c.email)) FROM {MEMBERSHIPS} AS m JOIN customers AS c "
                     f"ON CAST(c.customer_id AS VARCHAR) = m.customer_key WHERE m.segment = '{segment}' "
                     f"AND m.as_of = TIMESTAMP '{as_of.isoformat()}'{arm_filter} AND c.email IS NOT NULL")
    blocked = world.not_allowed()
    return {email for (email,) in rows if VALID.match(email) and email not in blocked}


def added_addresses(world: World, request) -> set[str]:
    """The addresses an accepted write request adds, upserts or subscribes (never its removals or unsubscribes)."""
    if request.status not in (200, 207) or not request.body:
        return set()
    try:
        body = json.loads(request.body)
    except ValueError:
        return set()
    path, found = request.path, set()
    if request.vendor == "mailchimp":
        if isinstance(body, dict) and isinstance(body.get("members"), list):  # batch subscribe
            found |= {m.get("email_address", "") for m in body["members"] if m.get("status") != "unsubscribed"}
        if isinstance(body, dict) and "members_to_add" in body:
            found |= set(body["members_to_add"])
        if request.method == "PUT" and isinstance(body, dict) and "email_address" in body:
            found.add(body["email_address"])
    elif request.vendor == "hubspot":
        ids: list[str] = []
        if path.endswith(("/batch/upsert", "/batch/create", "/batch/update")):
            for item in body.get("inputs", []):
                email = (item.get("properties") or {}).get("email")
                if item.get("idProperty") == "email":
                    email = item.get("id")
                if email:
                    found.add(email)
                elif item.get("id"):
                    ids.append(str(item["id"]))
        elif "/memberships/" in path:
            ids += [str(i) for i in (body.get("recordIdsToAdd", []) if isinstance(body, dict) else
                                     body if path.endswith("/memberships/add") else [])]
        elif path.endswith("/communication-preferences/v3/subscribe"):
            found.add(body.get("emailAddress", ""))
        with world.state.read() as cursor:
            for contact_id in ids:
                row = cursor.execute("SELECT email FROM hubspot_contacts WHERE id = ?", (int(contact_id),)).fetchone()
                if row:
                    found.add(row[0])
    elif request.vendor == "meta":
        found.add("<a Meta upload>")
    return {email.strip().lower() for email in found if email}


def test_four_messy_days_leave_every_healthy_list_exact_and_never_send_an_address_without_consent(tmp_path):
    shutil.copytree(EXAMPLE_PROJECT, tmp_path / "project", ignore=shutil.ignore_patterns("landing", "*.duckdb"))
    assert cli("generate", "--customers", "500", "--db", str(tmp_path / "warehouse.duckdb"))[0] == EXIT_OK
    with sandbox_process(tmp_path / "sandbox.db", seed=True) as sandbox, pytest.MonkeyPatch.context() as env:
        connections = sandbox_connections(tmp_path / "warehouse.duckdb", sandbox.url, f"{sandbox.url}/webhook/alerts",
                                          SANDBOX_CREDENTIALS, retry=RETRY)
        connections["segprovider_meta"]["password"] = "a-wrong-token"
        for name, value in connection_variables(connections).items():
            env.setenv(name, value)
        world = World(tmp_path, tmp_path / "sandbox.db")
        syncs = [s for s in centralized_syncs(world.project) if s.segment == "vip" or s.destination == "meta_ads"]
        mailchimp_vip = next(s for s in syncs if s.segment == "vip" and s.destination == "mailchimp_newsletter")
        hubspot_vip = next(s for s in syncs if s.segment == "vip" and s.destination == "hubspot_crm")

        # day 1: everything is sent; Meta's token is wrong, its syncs fail and the others run
        code, out, err = world.day(0)
        assert code == EXIT_ERROR and "Traceback" not in err
        assert all(s.id in err for s in syncs if s.destination == "meta_ads"), err
        assert "syncs failed" in err.splitlines()[-1]

        # day 2: addresses change (valid, invalid), two customers share one, lists are edited by hand
        members = [k for k in world.held_keys(mailchimp_vip.id) if k in world.held_keys(hubspot_vip.id)]
        moved, broken, sharer, holder, removed_mc, removed_hs = members[:6]
        world.execute(f"UPDATE customers SET email = 'moved.{moved}@example.org' WHERE customer_id = {int(moved)}",
                      f"UPDATE customers SET email = 'not-an-email-{broken}' WHERE customer_id = {int(broken)}",
                      f"UPDATE customers SET email = (SELECT email FROM customers WHERE customer_id = {int(holder)}) "
                      f"WHERE customer_id = {int(sharer)}")
        shared = world.email(holder)
        world.by_hand("remove-member", "mailchimp", "vip", world.email(removed_mc))
        world.by_hand("remove-member", "hubspot", "101", world.email(removed_hs))
        world.by_hand("add-member", "mailchimp", "vip", STRANGER)
        world.by_hand("add-member", "hubspot", "101", STRANGER)

        code, out, err = world.day(1, "--repair")
        assert code == EXIT_ERROR and "Traceback" not in err
        assert f"moved.{moved}@example.org" in world.in_list("mailchimp", "vip") | world.in_list("hubspot", "101")
        assert "repair: read" in out and "added by hand" in out
        assert world.email(removed_mc) in world.in_list("mailchimp", "vip")  # restored from the tool's truth
        assert world.email(removed_hs) in world.in_list("hubspot", "101")
        assert STRANGER in world.in_list("mailchimp", "vip") and STRANGER in world.in_list("hubspot", "101")
        assert "repair: not possible: meta_ads" not in out  # Meta's syncs failed before they were planned

        # day 3: 30% of vip opts out of e-mail, one holder of the shared address among them; a hand edit again
        vip = sorted(world.held_keys(mailchimp_vip.id))
        opting_out = sorted({sharer, *vip[:: max(1, round(1 / 0.3))]})
        assert len(opting_out) >= 0.3 * len(vip)
        world.execute(*(f"INSERT INTO consents VALUES ({int(k)}, 'email', false, {OPTED_OUT_AT})" for k in opting_out))
        still_member = next(k for k in world.held_keys(hubspot_vip.id) if k not in opting_out)
        world.by_hand("remove-member", "hubspot", "101", world.email(still_member))
        code, out, err = world.day(2)
        assert code == EXIT_ERROR and "Traceback" not in err

        # day 4: a repair run brings back what the hand took, and says what the hand added
        code, out, err = world.day(3, "--repair")
        assert code == EXIT_ERROR and "Traceback" not in err
        failed_line = err.strip().splitlines()[-1]
        assert failed_line.startswith(f"{sum(s.destination == 'meta_ads' for s in syncs)} of {len(syncs)} syncs "
                                      "failed"), err

        # every healthy list holds exactly the intended members, and the strangers a person added
        last = DAYS[-1]
        for sync in syncs:
            if sync.destination == "meta_ads":
                continue
            vendor, name = (("mailchimp", sync.target.get("segment_name")) if sync.destination == "mailchimp_newsletter"
                            else ("hubspot", sync.target.get("list_id")))
            expected = intended(world, sync.segment, sync.arm, last)
            if sync in (mailchimp_vip, hubspot_vip):
                expected.add(STRANGER)
            actual = world.in_list(vendor, name)
            assert actual == expected, (sync.id, sorted(actual - expected), sorted(expected - actual))
            # and the sync state says what the list holds: its next run plans from the truth
            recorded = {i.strip().lower() for (i,) in world.sql(
                f"SELECT identity FROM {STATE} WHERE sync_id = '{sync.id}' AND in_destination")}
            assert recorded == actual - {STRANGER}, (sync.id, sorted(recorded ^ (actual - {STRANGER})))
        vip_now = world.in_list("mailchimp", "vip")
        assert shared not in vip_now and world.email(holder) == shared  # the holder's address is the opted-out one's
        assert f"not-an-email-{broken}" not in vip_now
        # removed by hand on day 3, restored on day 4 if still intended (the exact comparison above says so)
        assert (world.email(still_member) in world.in_list("hubspot", "101")) == \
            (world.email(still_member) in intended(world, "vip", None, last))

        # the request log: nothing added, upserted or subscribed that was not allowed that day; Meta took nothing
        requests = world.state.requests()
        bounds = [start for start, _ in world.windows[1:]] + [requests[-1].id + 1]
        for (start, forbidden), end in zip(world.windows, bounds):
            for request in (r for r in requests if start <= r.id < end):
                sent = added_addresses(world, request)
                assert "<a Meta upload>" not in sent, request
                assert not sent & forbidden, (request.method, request.path, sorted(sent & forbidden))
        assert world.windows[2][1] >= {world.email(k) for k in opting_out if k != broken}

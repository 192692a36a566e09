"""Benchmark: one reconcile of two lists of ``--members`` members that diverged by ``--diverge``.

Run: ``uv run python benchmarks/reconcile.py`` (``--members``, ``--diverge``, ``--customers``).
The sandbox (in this process, over loopback HTTP) holds the example project's Mailchimp static
segment ``sales_priority`` and HubSpot list 102 with the same members; a first reconcile learns them.
Then a fraction of the members is removed from one list and as many customers are added to the other, as
people would in the tools, and a second reconcile pulls, plans and applies; a third must change
nothing. Prints one JSON object on its last line with the seconds of each step of the second run,
``members_per_s`` (pulled list entries per second of the whole run), the changes applied, and
``third_run_changes`` (0 when nothing loops).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from airflow_segprovider.example import EXAMPLE_PROJECT

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from airflow_segprovider.core.distributed import Reconciler, new_run_id  # noqa: E402
from airflow_segprovider.core.project.loader import load_project  # noqa: E402
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse  # noqa: E402
from airflow_segprovider.destinations.connection import build_client  # noqa: E402
from airflow_segprovider.example.generate import generate  # noqa: E402
from segprovider_sandbox import DEFAULT_HUBSPOT_TOKEN, DEFAULT_MAILCHIMP_API_KEY, serve  # noqa: E402
from segprovider_sandbox.store import subscriber_hash  # noqa: E402

RECONCILE = "reconcile:\n  - {segment: sales_priority, policy: union, max_change_fraction: 1.0}\n"


def seed(state, fixtures, emails: list[str], when: float) -> None:
    """Both lists hold ``emails`` (bulk inserts: a person's UI would take longer)."""
    with state.write() as cursor:
        cursor.executemany(
            "INSERT OR IGNORE INTO mailchimp_members (list_id, subscriber_hash, email_address, status, merge_fields,"
            " created_at, updated_at) VALUES (?, ?, ?, 'subscribed', '{}', ?, ?)",
            [(fixtures.mailchimp_list_id, subscriber_hash(e), e, when, when) for e in emails])
        cursor.executemany("INSERT OR IGNORE INTO mailchimp_segment_members (segment_id, subscriber_hash, added_at)"
                           " VALUES (?, ?, ?)", [(fixtures.reconciled_mailchimp_segment_id, subscriber_hash(e), when)
                                                 for e in emails])
        cursor.executemany("INSERT OR IGNORE INTO hubspot_contacts (email, properties, created_at, updated_at)"
                           " VALUES (?, ?, ?, ?)", [(e, json.dumps({"email": e}), when, when) for e in emails])
        cursor.execute(f"INSERT OR IGNORE INTO hubspot_list_members (list_id, contact_id, added_at) SELECT "
                       f"{int(fixtures.reconciled_hubspot_list_id)}, id, ? FROM hubspot_contacts", (when,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--diverge", type=float, default=0.02, help="fraction removed from one list and added "
                        "to the other (0.02)")
    parser.add_argument("--customers", type=int, default=60_000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="segprovider-reconcile-bench-"))
    try:
        project_dir = work / "project"
        shutil.copytree(EXAMPLE_PROJECT, project_dir,
                        ignore=shutil.ignore_patterns("landing"))
        (project_dir / "reconcile.yml").write_text(RECONCILE)
        project = load_project(project_dir)
        warehouse = DuckDBWarehouse(work / "warehouse.duckdb")
        generate(warehouse, args.customers, seed=3, events_per_customer=1.0)
        # everyone may receive email: the benchmark measures reconciling, not consent suppression
        warehouse.execute("UPDATE consents SET opted_in = TRUE")
        emails = [e for (e,) in warehouse.query(
            "SELECT DISTINCT LOWER(email) FROM customers WHERE email IS NOT NULL ORDER BY 1")]
        members, spare = emails[:args.members], emails[args.members:]
        changed = int(args.members * args.diverge)
        with serve(db_path=work / "sandbox.db") as sandbox:
            fixtures = sandbox.state.seed_demo_fixtures()
            seed(sandbox.state, fixtures, members, time.time() - 3600)
            connections = {
                "mailchimp_newsletter": {"host": f"{sandbox.url}/3.0", "password": DEFAULT_MAILCHIMP_API_KEY},
                "hubspot_crm": {"host": sandbox.url, "password": DEFAULT_HUBSPOT_TOKEN},
            }
            reconciler = Reconciler(project, warehouse,
                                    lambda sync: build_client(project, sync, connections[sync.destination]))
            reconciler.reconcile(allow_large_change=True)

            for email in members[:changed]:
                sandbox.state.edit_hubspot_list(fixtures.reconciled_hubspot_list_id, email, False)
            for email in spare[:changed]:
                sandbox.state.edit_mailchimp_segment(fixtures.mailchimp_list_id,
                                                     fixtures.reconciled_mailchimp_segment_id, email, True)
            run_id = new_run_id()
            started = time.perf_counter()
            reconciler.pull(run_id, reconciler_now())
            pulled = time.perf_counter()
            reconciler.plan(run_id)
            planned = time.perf_counter()
            plan = reconciler.check_change_set(run_id, allow_large_change=True)
            reconciler.apply(run_id)
            applied = time.perf_counter()
            third = reconciler.reconcile(allow_large_change=True)
            entries = sum(c.size_before for c in plan.change_sets)
            result = {
                "benchmark": "reconcile", "members": args.members, "changed_per_list": changed,
                "pull_s": round(pulled - started, 2), "plan_s": round(planned - pulled, 2),
                "apply_s": round(applied - planned, 2), "total_s": round(applied - started, 2),
                "members_per_s": round(entries / (applied - started), 1),
                "changes_applied": len(reconciler.audit(run_id)), "planned_changes": plan.total_changes,
                "third_run_changes": third["plan"]["total_changes"],
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        warehouse.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


def reconciler_now():
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


if __name__ == "__main__":
    main()

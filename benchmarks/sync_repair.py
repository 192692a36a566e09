"""Benchmark: what a repair run and the withdrawn-address rule cost a sync (issue #17).

Run: ``uv run python benchmarks/sync_repair.py`` (``--customers N``; default 20,000). The example project's
``vip`` segment is evaluated and synced to the sandbox's Mailchimp segment (in-process sandbox, loopback HTTP),
10% of its members are removed by hand, then:

* ``dry_run_s``: a dry run as every sync plans (no repair);
* ``plan_counts_s`` and ``plan_counts_without_withdrawn_s``: the plan's queries counted as the engine counts them,
  with and without the withdrawn-address clause (what the plan cost before one holder's opt-out covered every
  holder of a shared address);
* ``repair_dry_run_s``: a dry run with ``repair``: the segment's members read back, then planned;
* ``repair_run_s``: the repair itself (the members removed by hand re-added).

Prints one JSON object on its last line with those times, ``members``, ``removed_by_hand``, ``restored`` and
``read_back`` (members the repair listed). Goal: a repair costs less than one more plan plus the listing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.sync import SyncEngine, SyncOptions
from airflow_segprovider.core.sync.consent import not_allowed_keys_sql
from airflow_segprovider.core.sync.plan import count_rows, plan_queries
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.destinations.connection import build_client
from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.example.generate import generate
from segprovider_sandbox import DEFAULT_MAILCHIMP_API_KEY, serve

AS_OF = dt.datetime(2026, 11, 24)
OPERATIONS = ("add", "change", "remove", "consent_remove", "reidentify", "restore", "release", "suppressed",
              "missing_identity")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    args = parser.parse_args(argv)
    project = load_project(EXAMPLE_PROJECT)
    sync = next(s for s in project.syncs if s.segment == "vip" and s.destination == "mailchimp_newsletter")
    destination = project.destinations[sync.destination]
    with tempfile.TemporaryDirectory() as folder:
        warehouse = DuckDBWarehouse(Path(folder) / "warehouse.duckdb")
        generate(warehouse, args.customers, seed=7)
        evaluate(project, warehouse, AS_OF, run_id="bench")
        with serve(db_path=Path(folder) / "sandbox.db") as sandbox:
            sandbox.state.seed_example_project()
            fixtures = sandbox.state.seed_demo_fixtures()
            connection = {"host": f"{sandbox.url}/3.0", "password": DEFAULT_MAILCHIMP_API_KEY}
            engine = SyncEngine(project, warehouse)

            def run(**options) -> tuple[float, object]:
                client = build_client(project, sync, connection)
                try:
                    started = time.perf_counter()
                    record = engine.run(sync, client, AS_OF, options=SyncOptions(**options))
                    return time.perf_counter() - started, record
                finally:
                    client.close()

            run()
            members = sorted(i for (i,) in warehouse.query(
                f"SELECT LOWER(identity) FROM segprovider_sync_state WHERE sync_id = '{sync.id}' AND in_destination"))
            removed = members[::10]
            for email in removed:
                sandbox.state.edit_mailchimp_segment(fixtures.mailchimp_list_id, fixtures.mailchimp_segment_id,
                                                     email, False)
            plan_s, _ = run(dry_run=True)
            desired = engine._desired_sql(sync, destination, AS_OF)
            not_allowed = not_allowed_keys_sql(project.model.consent, destination.channel, None, identities=desired)
            counted = {}
            for name, queries in (("with", engine._plan_sql(sync, destination, AS_OF, 3)),
                                  ("without", plan_queries(sync, destination, desired, 3, warehouse.dialect,
                                                           not_allowed))):
                started = time.perf_counter()
                for operation in OPERATIONS:
                    count_rows(warehouse, queries[operation])
                counted[name] = time.perf_counter() - started
            repair_dry_s, dry = run(dry_run=True, repair=True)
            repair_s, repaired = run(repair=True)
        warehouse.close()
    result = {"customers": args.customers, "members": len(members), "removed_by_hand": len(removed),
              "dry_run_s": round(plan_s, 3), "plan_counts_s": round(counted["with"], 3),
              "plan_counts_without_withdrawn_s": round(counted["without"], 3),
              "repair_dry_run_s": round(repair_dry_s, 3), "repair_run_s": round(repair_s, 3),
              "planned_restore": dry.plan.restore, "restored": repaired.succeeded["restore"],
              "read_back": int(repaired.repair.split()[1])}
    print(json.dumps(result))
    return 0 if repaired.succeeded["restore"] == len(removed) else 1


if __name__ == "__main__":
    sys.exit(main())

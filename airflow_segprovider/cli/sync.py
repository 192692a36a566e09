"""``segprovider sync``: send the membership changes of an evaluated snapshot to the destinations."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from airflow_segprovider.cli.common import (
    AS_OF_HELP,
    EXIT_ERROR,
    EXIT_OK,
    add_db_arguments,
    as_of_arg,
    as_of_type,
    int_at_least,
    load,
    open_warehouse,
)
from airflow_segprovider.core.errors import SegproviderError, TerminalError
from airflow_segprovider.core.state.sync import RUNS as SYNC_RUNS

if TYPE_CHECKING:
    from airflow_segprovider.cli.common import AddCommand
    from airflow_segprovider.core.project.spec import Project

#: ``--concurrency``: batches in flight; vendors throttle long before this.
MAX_CONCURRENCY = 64


def env_client(project: Project, sync):
    """The destination client of ``sync``, with credentials from ``AIRFLOW_CONN_<CONNECTION_ID>``."""
    from airflow_segprovider.destinations.connection import build_client, connection_from_env

    destination = project.destinations[sync.destination]
    return build_client(project, sync, connection_from_env(destination.connection_id, destination=destination.name))


def cmd_sync(args: argparse.Namespace) -> int:
    import json
    import logging

    from airflow_segprovider.core.sync import SyncEngine, SyncOptions, select_syncs
    from airflow_segprovider.core.sync.safety import newer_snapshot

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s")
    project = load(args.project)
    # before the warehouse is opened: a sync the distributed model owns is refused outright
    chosen = select_syncs(project, args.sync)
    warehouse = open_warehouse(project, args.db, args.wait_for_lock)
    engine = SyncEngine(project, warehouse)
    as_of = as_of_arg(args.as_of)
    newest = None if args.allow_older_snapshot else newer_snapshot(
        warehouse, sorted({sync.segment for sync in chosen}), as_of)
    if newest is not None:
        raise TerminalError(f"not syncing: a newer snapshot exists (as_of {newest.isoformat()} > {as_of.isoformat()}); "
                            "only the latest snapshot is synced, history is never pushed (as in the DAG); pass "
                            "--as-of of the newest snapshot, or --allow-older-snapshot to push this one anyway")
    options = SyncOptions(dry_run=args.dry_run, allow_mass_removal=args.allow_mass_removal,
                          batch_size=args.batch_size, concurrency=args.concurrency, repair=args.repair)
    status = EXIT_OK
    results = []
    failures: list[tuple[str, str]] = []
    for sync in chosen:
        # every selected sync is attempted: one destination's failure (a revoked token, an outage, a blocked
        # sync) never keeps the others, and their opt-out removals, from going out
        try:
            client = env_client(project, sync)
            try:
                record = engine.run(sync, client, as_of, options=options, run_id=args.run_id)
            finally:
                client.close()
        except SegproviderError as exc:
            failures.append((sync.id, str(exc)))
            print(f"{sync.id}: failed: {exc}", file=sys.stderr)
            continue
        results.append(record.to_dict())
        plan = record.plan
        assert plan is not None
        removes = "unknown" if plan.remove is None else f"{plan.remove:,}"
        if args.dry_run:
            print(f"{sync.id}: would add {plan.add:,}, change {plan.change:,}, remove {removes}, "
                  f"remove for withdrawn consent {plan.consent_remove:,}, replace changed identities "
                  f"{plan.reidentify:,}, release shared identities {plan.released:,} "
                  f"(suppressed by consent {plan.suppressed:,}, no identity {plan.missing_identity:,}, "
                  f"given up after retries {plan.exhausted:,})")
            if record.repair is not None:
                print(f"    repair: {record.repair}" + (
                    "" if plan.added_by_hand is None else
                    f"; would restore {plan.restore:,} removed by hand; {plan.added_by_hand:,} added by hand "
                    "(reported, never removed)"))
            for operation, keys in plan.samples.items():
                if keys:
                    print(f"    sample {operation}: {', '.join(keys)}")
        else:
            print(f"{sync.id}: {record.status}: added {record.succeeded['add']:,}, changed "
                  f"{record.succeeded['change']:,}, removed {record.succeeded['remove']:,}, removed for withdrawn "
                  f"consent {record.succeeded['consent_remove']:,}, replaced identities "
                  f"{record.succeeded['reidentify']:,}; rejected {sum(record.failed.values()):,} "
                  f"(of planned {plan.add:,}/{plan.change:,}/{removes}/{plan.consent_remove:,}) "
                  f"in {record.duration_s:.1f}s")
            if record.repair is not None:
                print(f"    repair: {record.repair}" + (
                    "" if plan.added_by_hand is None else
                    f"; restored {record.succeeded['restore']:,} of {plan.restore:,} removed by hand; "
                    f"{plan.added_by_hand:,} added by hand (reported, never removed)"))
        if record.status == "partial":
            status = EXIT_ERROR
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    if failures:
        print(f"{len(failures)} of {len(chosen)} syncs failed: " + ", ".join(sync_id for sync_id, _ in failures)
              + f"; {len(chosen) - len(failures)} ran", file=sys.stderr)
        status = EXIT_ERROR
    return status


def register(command: AddCommand) -> None:
    """Add this group's command to the ``segprovider`` parser."""
    p = command("sync", cmd_sync, "Send membership changes of an evaluated snapshot to the destinations. "
                "Credentials come from AIRFLOW_CONN_<CONNECTION_ID> (Airflow's JSON or URI form).")
    p.add_argument("project")
    p.add_argument("--as-of", type=as_of_type, help="the snapshot to sync (" + AS_OF_HELP + ")")
    p.add_argument("--sync", action="append", help="only syncs matching this id, segment or destination (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="plan and print counts with samples; send nothing")
    p.add_argument("--allow-mass-removal", action="store_true",
                   help="allow removing more than a sync's max_remove_fraction, or emptying a destination")
    p.add_argument("--repair", action="store_true",
                   help="read each destination's members first (Mailchimp, HubSpot) and restore members removed "
                        "by hand; contacts added by hand are reported, never removed (Meta cannot be read: "
                        "the run says so)")
    p.add_argument("--allow-older-snapshot", action="store_true",
                   help="sync this --as-of although a newer snapshot exists (by default only the latest is synced)")
    p.add_argument("--batch-size", type=int_at_least(1), help="records per call (default: the vendor's maximum)")
    p.add_argument("--concurrency", type=int_at_least(1, MAX_CONCURRENCY), default=None,
                   help="batches in flight at once (default: the destination's: 4; Mailchimp 20, to keep its 10 "
                        "connections busy)")
    p.add_argument("--run-id", help=f"run id recorded in {SYNC_RUNS}")
    p.add_argument("--json", action="store_true", help="also print the run records as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="log plans and progress")
    add_db_arguments(p)

"""``segprovider distributed``: one reconcile run of the distributed model (pull, plan, gate, apply, report).

``segprovider reconcile`` is the same command under its earlier name.

Credentials come from ``AIRFLOW_CONN_<CONNECTION_ID>`` like ``segprovider sync``; the warehouse is
the embedded DuckDB file. Exit 0 when the run applied every planned change (or the dry run planned),
1 when the change-set gate stopped the run, a destination refused records, or anything failed; the
drift report after the run is printed, not judged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
from typing import TYPE_CHECKING, Any

from airflow_segprovider.cli.common import EXIT_ERROR, EXIT_OK, add_db_arguments, int_at_least
from airflow_segprovider.core.errors import TerminalError

if TYPE_CHECKING:
    from airflow_segprovider.cli.common import AddCommand


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", help="folder holding the project's YAML files (with a 'reconcile:' section)")
    parser.add_argument("--segment", action="append", help="only this reconciled segment (repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="pull and plan; print the conflicts and the change set; send nothing")
    parser.add_argument("--allow-large-change", action="store_true",
                        help="let this run change more than max_change_fraction (and max_remove_fraction) of a list")
    parser.add_argument("--run-id", help="reconcile run id (default: a new one)")
    parser.add_argument("--conflicts", type=int_at_least(0), default=10, help="conflicts to print, with both sides (10)")
    parser.add_argument("--json", action="store_true", help="also print the plan, what was applied and the drift")
    parser.add_argument("-v", "--verbose", action="store_true", help="log pulls, plans and progress")
    add_db_arguments(parser, "DuckDB warehouse file (default: the project's warehouse.path)")


def run(args: argparse.Namespace) -> int:
    from airflow_segprovider.cli.common import load, open_warehouse
    from airflow_segprovider.cli.sync import env_client
    from airflow_segprovider.core.distributed import ChangeSetTooLargeError, Reconciler, new_run_id
    from airflow_segprovider.core.state.distributed import AUDIT, PLAN

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s")
    project = load(args.project)
    unknown = [name for name in args.segment or () if name not in project.reconcile]
    if unknown:  # also when the project reconciles nothing: a mistyped --segment never passes silently
        raise TerminalError(f"--segment: no reconcile policy for {', '.join(map(repr, unknown))}; reconciled "
                            f"segments: {', '.join(project.reconcile) or '(none: the project has no reconcile:)'}")
    warehouse = open_warehouse(project, args.db, args.wait_for_lock)

    reconciler = Reconciler(project, warehouse, lambda sync: env_client(project, sync))
    run_id = args.run_id or new_run_id()
    as_of = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    reconciler.pull(run_id, as_of, args.segment)
    plan = reconciler.plan(run_id, args.segment)
    for name, summary in plan.segments.items():
        print(f"{name} ({summary['policy']}): {summary['customers']:,} customers, {summary['conflicts']:,} conflicts, "
              f"{summary['stale_edits']:,} stale edits skipped, {summary['planned_changes']:,} changes planned")
    for change_set in plan.change_sets:
        print(f"    {change_set.system}: {change_set.size_before:,} members, +{change_set.add:,} "
              f"-{change_set.remove:,} ({change_set.fraction:.0%})" + ("" if change_set.readable else " [receives only]"))
    for conflict in reconciler.conflicts(run_id)[:args.conflicts]:
        print(f"  conflict {conflict['segment']}/{conflict['customer_key']}: in {conflict['present_in'] or '-'}, "
              f"not in {conflict['absent_from'] or '-'} -> {'member' if conflict['member'] else 'not a member'} "
              f"({conflict['rule']}: {conflict['reason']})")
    result: dict[str, Any] = {"run_id": run_id, "plan": plan.to_dict()}
    status = EXIT_OK
    try:
        reconciler.check_change_set(run_id, allow_large_change=args.allow_large_change)
    except ChangeSetTooLargeError as exc:
        print(f"error: {exc}")
        status = EXIT_ERROR
    if status == EXIT_OK and not args.dry_run:
        applied = reconciler.apply(run_id, segments=args.segment, allow_large_change=args.allow_large_change)
        result["applied"] = applied
        for name, systems in applied.items():
            for system, done in systems.items():
                print(f"{name} -> {system}: {done['status']}: added {done['added']:,}, removed {done['removed']:,}, "
                      f"rejected {done['rejected']:,}")
                if done["rejected"]:
                    status = EXIT_ERROR
        result["drift"] = reconciler.drift_report(run_id)
        for row in result["drift"]:
            print(f"{row['segment']} in {row['system']}: {row['reported_after']} members, "
                  f"{row['resolved_members']} resolved, drift {row['drift']}")
        print(f"reconcile {run_id}: audit log in {AUDIT}")
    elif args.dry_run:
        print(f"dry run {run_id}: nothing sent; the plan is in {PLAN}")
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    return status


def register(command: AddCommand) -> None:
    """Add this group's command to the ``segprovider`` parser (``reconcile`` is its earlier name)."""
    p = command("distributed", run, "The distributed model: pull every tool's list of each reconciled "
                "segment, resolve disagreements by the segment's policy, push the fixes and log each change.",
                aliases=("reconcile",))
    add_arguments(p)

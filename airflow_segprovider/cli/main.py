"""The ``segprovider`` command line: validate, describe, compile, evaluate and sync a segments project.

Every sub-command exits 0 on success and non-zero with a readable message on
failure; no traceback reaches the user for a problem in their project or data.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Callable, Sequence

from airflow_segprovider.core.errors import ProjectValidationError, SegproviderError

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _load(path: str) -> Project:
    from airflow_segprovider.core.project.loader import load_project

    return load_project(path)


def cmd_validate(args: argparse.Namespace) -> int:
    project = _load(args.project)
    print(f"OK: project {project.name!r} is valid: {len(project.segments)} segments, "
          f"{len(project.destinations)} destinations, {len(project.syncs)} syncs.")
    return EXIT_OK


def cmd_describe(args: argparse.Namespace) -> int:
    from airflow_segprovider.core.evaluate.describe import describe_project

    print("\n".join(describe_project(_load(args.project))))
    return EXIT_OK


def open_warehouse(project: Project | None, db: str | None):
    """The embedded DuckDB warehouse: ``--db``, else the project's ``warehouse.path`` (relative to the project)."""
    from pathlib import Path

    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

    if db is None:
        if project is None:
            raise SegproviderError("give --db PATH or --project PROJECT to locate the DuckDB warehouse")
        if project.warehouse.kind != "duckdb":
            raise SegproviderError(
                f"project {project.name!r} uses a {project.warehouse.kind} warehouse; the CLI runs on the embedded "
                "DuckDB warehouse (pass --db PATH), deployments run through the Airflow operators")
        db = str(Path(project.root) / project.warehouse.path)
    return DuckDBWarehouse(db, schema=project.warehouse.schema if project else "main")


def env_client(project: Project, sync):
    """The destination client of ``sync``, with credentials from ``AIRFLOW_CONN_<CONNECTION_ID>``."""
    from airflow_segprovider.core.sync.engine import build_client
    from airflow_segprovider.destinations.connection import connection_from_env

    destination = project.destinations[sync.destination]
    return build_client(project, sync, connection_from_env(destination.connection_id, destination=destination.name))


def _as_of(text: str | None):
    import datetime as dt

    from airflow_segprovider.core.evaluate.engine import parse_as_of

    if text is None:  # default: the start of the current UTC day, so repeated runs in a day agree
        today = dt.datetime.now(dt.timezone.utc).date()
        return dt.datetime(today.year, today.month, today.day)
    return parse_as_of(text)


def cmd_generate(args: argparse.Namespace) -> int:
    import time

    from airflow_segprovider.example.generate import DEFAULT_ANCHOR, generate

    project = _load(args.project) if args.project else None
    warehouse = open_warehouse(project, args.db)
    started = time.perf_counter()
    anchor = _as_of(args.anchor) if args.anchor else DEFAULT_ANCHOR
    counts = generate(warehouse, args.customers, seed=args.seed, events_per_customer=args.events_per_customer,
                      anchor=anchor)
    warehouse.close()
    print(f"generated {counts.customers:,} customers, {counts.events:,} events, {counts.orders:,} orders, "
          f"{counts.consents:,} consent answers (seed {args.seed}, newest data {anchor:%Y-%m-%d}) "
          f"into {warehouse.path} in {time.perf_counter() - started:.1f}s")
    return EXIT_OK


def cmd_compile(args: argparse.Namespace) -> int:
    from airflow_segprovider.core.evaluate.compiler import SegmentCompiler

    project = _load(args.project)
    if args.segment and args.segment not in project.segments:
        raise SegproviderError(f"unknown segment {args.segment!r}; segments: {', '.join(project.segments)}")
    compiled = SegmentCompiler(project, args.dialect, project.warehouse.schema).compile(
        _as_of(args.as_of), segments=[args.segment] if args.segment else None)
    print(compiled.sql(pretty=True) + ";")
    return EXIT_OK


def cmd_preview(args: argparse.Namespace) -> int:
    from airflow_segprovider.core.evaluate.engine import preview

    project = _load(args.project)
    result = preview(project, open_warehouse(project, args.db), args.segment, _as_of(args.as_of), args.sample)
    print(f"segment {result.segment} at {result.as_of:%Y-%m-%d %H:%M:%S}: {result.members:,} members")
    for arm, count in result.arms.items():
        print(f"  arm {arm}: {count:,}")
    print("sample: " + (", ".join(result.sample) or "(empty)"))
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from airflow_segprovider.core.evaluate.engine import evaluate

    project = _load(args.project)
    result = evaluate(project, open_warehouse(project, args.db), _as_of(args.as_of), run_id=args.run_id,
                      segments=args.segment or None)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return EXIT_OK
    print(f"evaluated {len(result.diffs)} segments at {result.as_of:%Y-%m-%d %H:%M:%S} "
          f"(run {result.run_id}) in {result.seconds:.2f}s")
    width = max(len(d.segment) for d in result.diffs)
    print(f"  {'segment':<{width}}  {'members':>10}  {'added':>8}  {'removed':>8}  previous")
    for d in result.diffs:
        previous = f"{d.previous_as_of:%Y-%m-%d %H:%M}" if d.previous_as_of else "(first snapshot)"
        print(f"  {d.segment:<{width}}  {d.members:>10,}  {d.added:>8,}  {d.removed:>8,}  {previous}")
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from airflow_segprovider.core.evaluate.explain import explain

    project = _load(args.project)
    print(explain(project, open_warehouse(project, args.db), args.segment, args.customer,
                  _as_of(args.as_of)).text())
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    import json
    import logging

    from airflow_segprovider.core.sync.engine import SyncEngine, SyncOptions, select_syncs

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s")
    project = _load(args.project)
    # before the warehouse is opened: a sync the distributed model owns is refused outright
    chosen = select_syncs(project, args.sync)
    warehouse = open_warehouse(project, args.db)
    engine = SyncEngine(project, warehouse)
    as_of = _as_of(args.as_of)
    options = SyncOptions(dry_run=args.dry_run, allow_mass_removal=args.allow_mass_removal,
                          batch_size=args.batch_size, concurrency=args.concurrency)
    status = EXIT_OK
    results = []
    for sync in chosen:
        client = env_client(project, sync)
        try:
            record = engine.run(sync, client, as_of, options=options, run_id=args.run_id)
        finally:
            client.close()
        results.append(record.to_dict())
        plan = record.plan
        assert plan is not None
        removes = "unknown" if plan.remove is None else f"{plan.remove:,}"
        if args.dry_run:
            print(f"{sync.id}: would add {plan.add:,}, change {plan.change:,}, remove {removes} "
                  f"(suppressed by consent {plan.suppressed:,}, no identity {plan.missing_identity:,}, "
                  f"given up after retries {plan.exhausted:,})")
            for operation, keys in plan.samples.items():
                if keys:
                    print(f"    sample {operation}: {', '.join(keys)}")
        else:
            print(f"{sync.id}: {record.status}: added {record.succeeded['add']:,}, changed "
                  f"{record.succeeded['change']:,}, removed {record.succeeded['remove']:,}; rejected "
                  f"{sum(record.failed.values()):,} (of planned {plan.add:,}/{plan.change:,}/{removes}) "
                  f"in {record.duration_s:.1f}s")
        if record.status == "partial":
            status = EXIT_ERROR
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    return status


def cmd_ingest(args: argparse.Namespace) -> int:
    from airflow_segprovider.cli.ingest import run

    return run(args)


def cmd_reconcile(args: argparse.Namespace) -> int:
    from airflow_segprovider.cli.distributed import run

    return run(args)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from segprovider_sandbox.server import main as sandbox_main

    return sandbox_main(args.sandbox_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segprovider",
        description="One segmentation logic for marketing data: validate, evaluate and sync a segments project.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        return p

    p = command("validate", cmd_validate, "Validate a segments project and report every error with file and line.")
    p.add_argument("project", help="folder holding the project's YAML files")
    p = command("describe", cmd_describe, "Print the segments, their rules, dependencies and destinations.")
    p.add_argument("project", help="folder holding the project's YAML files")

    as_of_help = "evaluation time, ISO 8601 (UTC unless an offset is given); default: today 00:00 UTC"
    db_help = "DuckDB warehouse file (default: the project's warehouse.path, relative to the project folder)"
    p = command("generate", cmd_generate, "Write a deterministic synthetic dataset into the DuckDB warehouse.")
    p.add_argument("--customers", type=int, required=True, help="number of customers")
    p.add_argument("--events-per-customer", type=float, default=20.0, help="mean events per customer (20)")
    p.add_argument("--seed", type=int, default=42, help="random seed (42)")
    p.add_argument("--anchor", help="timestamp of the newest data (default 2026-11-24)")
    p.add_argument("--project", help="project whose warehouse receives the data")
    p.add_argument("--db", help=db_help)
    p = command("compile", cmd_compile, "Print the SQL that evaluates the project's segments.")
    p.add_argument("project")
    p.add_argument("--segment", help="only this segment and what it depends on")
    p.add_argument("--as-of", help=as_of_help)
    p.add_argument("--dialect", default="duckdb", choices=["duckdb", "postgres", "snowflake", "bigquery"])
    p = command("preview", cmd_preview, "Count and sample a segment's members without writing a snapshot.")
    p.add_argument("project")
    p.add_argument("segment")
    p.add_argument("--as-of", help=as_of_help)
    p.add_argument("--sample", type=int, default=10, help="sample size (10)")
    p.add_argument("--db", help=db_help)
    p = command("evaluate", cmd_evaluate, "Evaluate every segment, write the membership snapshot and its diff.")
    p.add_argument("project")
    p.add_argument("--as-of", help=as_of_help)
    p.add_argument("--run-id", help="run id recorded with the snapshot")
    p.add_argument("--segment", action="append", help="only this segment (repeatable) and its dependencies")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--db", help=db_help)
    p = command("explain", cmd_explain, "Explain why a customer is (not) in a segment, node by node.")
    p.add_argument("project")
    p.add_argument("segment")
    p.add_argument("customer", help="customer key")
    p.add_argument("--as-of", help=as_of_help)
    p.add_argument("--db", help=db_help)
    p = command("ingest", cmd_ingest, "Load the project's sources (files, warehouse tables, REST APIs) into the "
                "warehouse, typed by the data model; bad rows are quarantined with their reason.")
    from airflow_segprovider.cli.ingest import add_arguments as add_ingest_arguments

    add_ingest_arguments(p)
    p = command("sync", cmd_sync, "Send membership changes of an evaluated snapshot to the destinations. "
                "Credentials come from AIRFLOW_CONN_<CONNECTION_ID> (Airflow's JSON or URI form).")
    p.add_argument("project")
    p.add_argument("--as-of", help="the snapshot to sync (" + as_of_help + ")")
    p.add_argument("--sync", action="append", help="only syncs matching this id, segment or destination (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="plan and print counts with samples; send nothing")
    p.add_argument("--allow-mass-removal", action="store_true",
                   help="allow removing more than a sync's max_remove_fraction, or emptying a destination")
    p.add_argument("--batch-size", type=int, help="records per call (default: the vendor's maximum)")
    p.add_argument("--concurrency", type=int, default=4, help="batches in flight at once (4)")
    p.add_argument("--run-id", help="run id recorded in segprovider_sync_runs")
    p.add_argument("--json", action="store_true", help="also print the run records as JSON")
    p.add_argument("-v", "--verbose", action="store_true", help="log plans and progress")
    p.add_argument("--db", help=db_help)
    p = command("reconcile", cmd_reconcile, "The distributed model: pull every tool's list of each reconciled "
                "segment, resolve disagreements by the segment's policy, push the fixes and log each change.")
    from airflow_segprovider.cli.distributed import add_arguments as add_reconcile_arguments

    add_reconcile_arguments(p)
    p = command("sandbox", cmd_sandbox, "Run the local destination sandbox (Mailchimp, HubSpot, Meta, webhook); "
                "options: --host, --port, --db, --config, --seed (see segprovider sandbox --help).")
    p.add_argument("sandbox_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ProjectValidationError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_ERROR
    except SegproviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

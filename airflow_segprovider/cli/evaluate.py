"""``segprovider generate``, ``preview``, ``evaluate`` and ``explain``: the centralized model's evaluation on DuckDB."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from airflow_segprovider.cli.common import (
    AS_OF_HELP,
    EXIT_OK,
    add_db_arguments,
    as_of_arg,
    as_of_type,
    int_at_least,
    load,
    number_between,
    open_warehouse,
    require_segments,
)

if TYPE_CHECKING:
    from airflow_segprovider.cli.common import AddCommand

#: Bounds of ``generate``: the benchmark's 1M customers x 20 events, with room to spare; more is a typo.
MAX_CUSTOMERS = 100_000_000
MAX_EVENTS_PER_CUSTOMER = 1_000.0
#: ``preview --sample``: members printed on one line.
MAX_SAMPLE = 100_000


def cmd_generate(args: argparse.Namespace) -> int:
    import time

    from airflow_segprovider.example.generate import DEFAULT_ANCHOR, generate

    project = load(args.project) if args.project else None
    warehouse = open_warehouse(project, args.db, args.wait_for_lock)
    started = time.perf_counter()
    anchor = as_of_arg(args.anchor) if args.anchor else DEFAULT_ANCHOR
    counts = generate(warehouse, args.customers, seed=args.seed, events_per_customer=args.events_per_customer,
                      anchor=anchor)
    warehouse.close()
    print(f"generated {counts.customers:,} customers, {counts.events:,} events, {counts.orders:,} orders, "
          f"{counts.consents:,} consent answers (seed {args.seed}, newest data {anchor:%Y-%m-%d}) "
          f"into {warehouse.path} in {time.perf_counter() - started:.1f}s")
    return EXIT_OK


def cmd_preview(args: argparse.Namespace) -> int:
    from airflow_segprovider.core.evaluate.engine import preview

    project = load(args.project)
    result = preview(project, open_warehouse(project, args.db, args.wait_for_lock), args.segment, as_of_arg(args.as_of), args.sample)
    print(f"segment {result.segment} at {result.as_of:%Y-%m-%d %H:%M:%S}: {result.members:,} members")
    for arm, count in result.arms.items():
        print(f"  arm {arm}: {count:,}")
    print("sample: " + (", ".join(result.sample) or "(empty)"))
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from airflow_segprovider.core.evaluate.engine import evaluate

    project = load(args.project)
    require_segments(project, args.segment or [], "--segment")
    result = evaluate(project, open_warehouse(project, args.db, args.wait_for_lock), as_of_arg(args.as_of),
                      run_id=args.run_id, segments=args.segment or None, full=args.full)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return EXIT_OK
    print(f"evaluated {len(result.diffs)} segments at {result.as_of:%Y-%m-%d %H:%M:%S} "
          f"(run {result.run_id}) in {result.seconds:.2f}s")
    print(f"  {result.mode} evaluation: {result.reason}")
    width = max(len(d.segment) for d in result.diffs)
    print(f"  {'segment':<{width}}  {'members':>10}  {'added':>8}  {'removed':>8}  previous")
    for d in result.diffs:
        previous = f"{d.previous_as_of:%Y-%m-%d %H:%M}" if d.previous_as_of else "(first snapshot)"
        print(f"  {d.segment:<{width}}  {d.members:>10,}  {d.added:>8,}  {d.removed:>8,}  {previous}")
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from airflow_segprovider.core.evaluate.explain import explain

    project = load(args.project)
    warehouse = open_warehouse(project, args.db, args.wait_for_lock)
    print(explain(project, warehouse, args.segment, args.customer, as_of_arg(args.as_of)).text())
    return EXIT_OK


def register(command: AddCommand) -> None:
    """Add this group's commands to the ``segprovider`` parser."""
    p = command("generate", cmd_generate, "Write a deterministic synthetic dataset into the DuckDB warehouse.")
    p.add_argument("--customers", type=int_at_least(1, MAX_CUSTOMERS), required=True, help="number of customers")
    p.add_argument("--events-per-customer", type=number_between(0, MAX_EVENTS_PER_CUSTOMER), default=20.0, help="mean events per customer (20)")
    p.add_argument("--seed", type=int_at_least(0, 2**63 - 1), default=42, help="random seed (42)")
    p.add_argument("--anchor", type=as_of_type, help="timestamp of the newest data (default 2026-11-24)")
    p.add_argument("--project", help="project whose warehouse receives the data")
    add_db_arguments(p)
    p = command("preview", cmd_preview, "Count and sample a segment's members without writing a snapshot.")
    p.add_argument("project")
    p.add_argument("segment")
    p.add_argument("--as-of", type=as_of_type, help=AS_OF_HELP)
    p.add_argument("--sample", type=int_at_least(0, MAX_SAMPLE), default=10, help="sample size (10)")
    add_db_arguments(p)
    p = command("evaluate", cmd_evaluate, "Evaluate every segment, write the membership snapshot and its diff.")
    p.add_argument("project")
    p.add_argument("--as-of", type=as_of_type, help=AS_OF_HELP)
    p.add_argument("--run-id", help="run id recorded with the snapshot")
    p.add_argument("--segment", action="append", help="only this segment (repeatable) and its dependencies")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--full", action="store_true",
                   help="evaluate every customer, even when an incremental run (only what changed since the "
                        "latest snapshot) could")
    add_db_arguments(p)
    p = command("explain", cmd_explain, "Explain why a customer is (not) in a segment, node by node.")
    p.add_argument("project")
    p.add_argument("segment")
    p.add_argument("customer", help="customer key")
    p.add_argument("--as-of", type=as_of_type, help=AS_OF_HELP)
    add_db_arguments(p)

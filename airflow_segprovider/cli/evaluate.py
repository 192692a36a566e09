"""``segprovider generate``, ``preview``, ``evaluate`` and ``explain``: the centralized model's evaluation on DuckDB."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from airflow_segprovider.cli.common import AS_OF_HELP, DB_HELP, EXIT_OK, as_of_arg, load, open_warehouse

if TYPE_CHECKING:
    from airflow_segprovider.cli.common import AddCommand


def cmd_generate(args: argparse.Namespace) -> int:
    import time

    from airflow_segprovider.example.generate import DEFAULT_ANCHOR, generate

    project = load(args.project) if args.project else None
    warehouse = open_warehouse(project, args.db)
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
    result = preview(project, open_warehouse(project, args.db), args.segment, as_of_arg(args.as_of), args.sample)
    print(f"segment {result.segment} at {result.as_of:%Y-%m-%d %H:%M:%S}: {result.members:,} members")
    for arm, count in result.arms.items():
        print(f"  arm {arm}: {count:,}")
    print("sample: " + (", ".join(result.sample) or "(empty)"))
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from airflow_segprovider.core.evaluate.engine import evaluate

    project = load(args.project)
    result = evaluate(project, open_warehouse(project, args.db), as_of_arg(args.as_of), run_id=args.run_id,
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

    project = load(args.project)
    print(explain(project, open_warehouse(project, args.db), args.segment, args.customer,
                  as_of_arg(args.as_of)).text())
    return EXIT_OK


def register(command: AddCommand) -> None:
    """Add this group's commands to the ``segprovider`` parser."""
    p = command("generate", cmd_generate, "Write a deterministic synthetic dataset into the DuckDB warehouse.")
    p.add_argument("--customers", type=int, required=True, help="number of customers")
    p.add_argument("--events-per-customer", type=float, default=20.0, help="mean events per customer (20)")
    p.add_argument("--seed", type=int, default=42, help="random seed (42)")
    p.add_argument("--anchor", help="timestamp of the newest data (default 2026-11-24)")
    p.add_argument("--project", help="project whose warehouse receives the data")
    p.add_argument("--db", help=DB_HELP)
    p = command("preview", cmd_preview, "Count and sample a segment's members without writing a snapshot.")
    p.add_argument("project")
    p.add_argument("segment")
    p.add_argument("--as-of", help=AS_OF_HELP)
    p.add_argument("--sample", type=int, default=10, help="sample size (10)")
    p.add_argument("--db", help=DB_HELP)
    p = command("evaluate", cmd_evaluate, "Evaluate every segment, write the membership snapshot and its diff.")
    p.add_argument("project")
    p.add_argument("--as-of", help=AS_OF_HELP)
    p.add_argument("--run-id", help="run id recorded with the snapshot")
    p.add_argument("--segment", action="append", help="only this segment (repeatable) and its dependencies")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--db", help=DB_HELP)
    p = command("explain", cmd_explain, "Explain why a customer is (not) in a segment, node by node.")
    p.add_argument("project")
    p.add_argument("segment")
    p.add_argument("customer", help="customer key")
    p.add_argument("--as-of", help=AS_OF_HELP)
    p.add_argument("--db", help=DB_HELP)

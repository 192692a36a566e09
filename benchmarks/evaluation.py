"""Benchmark: evaluate 25 segments over 1M customers and 20M events on DuckDB.

Run: ``uv run python benchmarks/evaluation.py`` (``--customers`` to scale down).
Prints progress, then one JSON object on its last line with at least
``engine_s``, ``per_segment_s``, ``speedup``, ``diff_s``, ``peak_rss_mb``.

* ``engine_s``: the engine evaluating all 25 segments together and writing the
  membership snapshot (first ``as_of``), as :func:`evaluate` does it.
* ``per_segment_s``: the same work as one query per segment (each computes its
  own aggregates and writes its members), on the same data.
* ``diff_s``: the diff of the second ``as_of``'s snapshot against the first.
* ``peak_rss_mb``: peak resident memory of this process, which only evaluates;
  the data is generated beforehand in a child process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from airflow_segprovider.core.compiler import SegmentCompiler  # noqa: E402
from airflow_segprovider.core.engine import evaluate  # noqa: E402
from airflow_segprovider.core.project import load_project  # noqa: E402
from airflow_segprovider.core.warehouse import DuckDBWarehouse  # noqa: E402

AS_OF = dt.datetime(2026, 11, 24)


def _generate(db: str, customers: int, events_per_customer: float) -> None:
    from airflow_segprovider.core.generate import generate

    warehouse = DuckDBWarehouse(db)
    generate(warehouse, customers, events_per_customer=events_per_customer, anchor=AS_OF)
    warehouse.close()


def per_segment(project, warehouse: DuckDBWarehouse, as_of: dt.datetime) -> float:
    """One query per segment: each evaluates its own rule (and dependencies) and writes its members."""
    warehouse.execute("CREATE OR REPLACE TABLE bench_members (segment VARCHAR, customer_key VARCHAR, "
                      "as_of TIMESTAMP, run_id VARCHAR, arm VARCHAR)")
    compiler = SegmentCompiler(project, "duckdb", "main")
    started = time.perf_counter()
    for name in project.segments:
        compiled = compiler.compile(as_of, segments=[name])
        members = compiled.membership_query("flags", [name]).sql(dialect="duckdb")
        warehouse.execute(f"INSERT INTO bench_members WITH flags AS ({compiled.sql(pretty=False)}) "
                          f"SELECT segment, customer_key, TIMESTAMP '{as_of}', 'per_segment', arm FROM ({members})")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events-per-customer", type=float, default=20.0)
    parser.add_argument("--db", help="reuse this DuckDB file (generated if missing)")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="segprovider-bench-")
    db = args.db or str(Path(workdir) / "bench.duckdb")
    if not Path(db).exists():
        started = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(
            target=_generate, args=(db, args.customers, args.events_per_customer))
        child.start()
        child.join()
        if child.exitcode:
            raise SystemExit("data generation failed")
        print(f"generated {args.customers:,} customers in {time.perf_counter() - started:.1f}s", file=sys.stderr)

    project = load_project(ROOT / "eval_project")
    warehouse = DuckDBWarehouse(db)
    events = warehouse.query("SELECT COUNT(*) FROM events")[0][0]
    customers = warehouse.query("SELECT COUNT(*) FROM customers")[0][0]
    warehouse.execute("DROP TABLE IF EXISTS segprovider_memberships; DROP TABLE IF EXISTS segprovider_snapshots; "
                      "DROP TABLE IF EXISTS segprovider_membership_changes; DROP TABLE IF EXISTS bench_members")
    warehouse.execute("CHECKPOINT")

    per_segment_s = per_segment(project, warehouse, AS_OF)
    print(f"one query per segment: {per_segment_s:.2f}s", file=sys.stderr)
    warehouse.execute("DROP TABLE bench_members")
    warehouse.execute("CHECKPOINT")

    first = evaluate(project, warehouse, AS_OF, run_id="bench_1")
    memberships = sum(d.members for d in first.diffs)
    print(f"engine, all 25 segments + snapshot: {first.seconds:.2f}s {first.timings} ({memberships:,} memberships)",
          file=sys.stderr)
    second = evaluate(project, warehouse, AS_OF + dt.timedelta(days=1), run_id="bench_2")
    print(f"second as_of: {second.seconds:.2f}s {second.timings}", file=sys.stderr)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "customers": customers,
        "events": events,
        "segments": len(project.segments),
        "memberships": memberships,
        # the engine's evaluation and snapshot write; the diff is reported on its own
        "engine_s": round(first.timings["flags_s"] + first.timings["write_s"], 3),
        "engine_total_s": round(first.seconds, 3),
        "engine_flags_s": round(first.timings["flags_s"], 3),
        "engine_write_s": round(first.timings["write_s"], 3),
        "per_segment_s": round(per_segment_s, 3),
        "speedup": round(per_segment_s / (first.timings["flags_s"] + first.timings["write_s"]), 2),
        "diff_s": round(second.timings["diff_s"], 3),
        "diff_added": sum(d.added for d in second.diffs),
        "diff_removed": sum(d.removed for d in second.diffs),
        "second_engine_s": round(second.seconds, 3),
        "peak_rss_mb": round(peak_rss_mb, 1),
    }
    warehouse.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()

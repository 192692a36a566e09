"""Benchmark: evaluate 25 segments over 1M customers and 20M events on DuckDB.

Run: ``uv run python benchmarks/evaluation.py`` (``--customers`` to scale down, ``--repeat`` for more
samples, ``--db`` to reuse generated data). Prints progress, then one JSON object on its last line with
at least ``engine_s``, ``per_segment_s``, ``speedup``, ``diff_s``, ``peak_rss_mb``.

After one warm-up round that is not counted, both plans run ``--repeat`` times (default 5) in the
same process on the same data, in alternating order (per segment first on even rounds, the engine
first on odd ones), each from an empty membership store; every figure is the **median** of its
samples, and the samples are printed too. Each diff round diffs a new day-2 snapshot. A single run on
a shared 2-core machine varies by 20 to 40%, and the first query of a process pays for cold caches: one
sample per side is not a measurement.

* ``engine_s``: the engine evaluating all 25 segments together and writing the membership snapshot
  (first ``as_of``), as :func:`evaluate` does it: one statement computing the flags and writing the
  snapshot packed, one row per member customer with a bit per segment, with the store's registry rows
  (timed inside its transaction: the commit follows the diff and is in ``engine_total_s``).
* ``per_segment_s``: the same work as one query per segment (each computes its own aggregates and
  writes its members, one row per membership), on the same data.
* ``speedup``: ``per_segment_s / engine_s``.
* ``diff_s``: the diff of the second ``as_of``'s snapshot against the first.
* ``peak_rss_mb``: peak resident memory of this process, which only evaluates; the data is generated
  beforehand in a child process.
* ``aggregates_s``: each distinct aggregate of the plan computed alone (the per-table aggregate
  queries, no join, no flags, nothing written): compare with ``engine_s`` to see what joining, flags,
  references, splits and the write add.
* ``write_rows_s``: the same snapshot, already computed, written one row per membership (the
  per-segment plan's layout, and the store's before it was packed) alone into an empty table;
  ``write_packed_s``: the same, packed as the store holds it (one row per member customer).
* ``engine_total_s``: all of :func:`evaluate` (compile, source and key checks, evaluation, write,
  diff, commit); ``speedup_whole_evaluate`` = ``per_segment_s / engine_total_s``.
* ``engine_s_with_history``: the engine's evaluation and write of the second ``as_of``, into a store
  that holds the first (the diff rounds): ``engine_s`` writes into an empty store.
* ``evaluation_speedup`` = ``(per_segment_s - write_rows_s) / (engine_s - write_packed_s)``: the
  speedup of the evaluation work alone, each side's write taken out (the shared plan's share of
  ``speedup``, the rest being the packed store's).
* ``speedup_if_only_aggregates`` = ``per_segment_s / (aggregates_s + write_packed_s)``: the end-to-end
  speedup of a plan that cost no more than computing its aggregates and writing them packed (joins,
  flags, references and splits free): the most this plan shape can give here.

The component figures (aggregates, writes) are measured in every round, right after that round's two
plans, and every ratio is the median over rounds of that round's ratio: the machine's speed drifts
between rounds, so figures from different moments are never divided by one another.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from airflow_segprovider.core.evaluate.compiler import SegmentCompiler  # noqa: E402
from airflow_segprovider.core.evaluate.engine import evaluate  # noqa: E402
from airflow_segprovider.core.project.loader import load_project  # noqa: E402
from airflow_segprovider.core.sql.dialects import to_sql, ts_literal  # noqa: E402
from airflow_segprovider.core.state.membership import BITS, CHANGES, MEMBERSHIPS, SNAPSHOTS, WORDS  # noqa: E402
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse  # noqa: E402

AS_OF = dt.datetime(2026, 11, 24)


def _generate(db: str, customers: int, events_per_customer: float) -> None:
    from airflow_segprovider.example.generate import generate

    warehouse = DuckDBWarehouse(db)
    generate(warehouse, customers, events_per_customer=events_per_customer, anchor=AS_OF)
    warehouse.close()


def ensure_data(db: str, customers: int, events_per_customer: float) -> None:
    """Generate the benchmark's data into ``db`` unless it exists, in a child process (its memory is not ours)."""
    if Path(db).exists():
        return
    started = time.perf_counter()
    child = multiprocessing.get_context("spawn").Process(target=_generate, args=(db, customers, events_per_customer))
    child.start()
    child.join()
    if child.exitcode:
        raise SystemExit("data generation failed")
    print(f"generated {customers:,} customers in {time.perf_counter() - started:.1f}s", file=sys.stderr)


def per_segment(project, warehouse: DuckDBWarehouse, as_of: dt.datetime) -> float:
    """One query per segment: each evaluates its own rule (and dependencies) and writes its members."""
    warehouse.execute("CREATE OR REPLACE TABLE bench_members (segment VARCHAR, customer_key VARCHAR, "
                      "as_of TIMESTAMP, run_id VARCHAR, arm VARCHAR)")
    compiler = SegmentCompiler(project, "duckdb", "main")
    statements = []  # compiled before the clock starts, as the engine's plan is (evaluate times only SQL)
    for name in project.segments:
        compiled = compiler.compile(as_of, segments=[name])
        members = compiled.membership_query("flags", [name]).sql(dialect="duckdb")
        statements.append(f"INSERT INTO bench_members WITH flags AS ({compiled.sql(pretty=False)}) "
                          f"SELECT segment, customer_key, TIMESTAMP '{as_of}', 'per_segment', arm FROM ({members})")
    started = time.perf_counter()
    for statement in statements:
        warehouse.execute(statement)
    seconds = time.perf_counter() - started
    warehouse.execute("DROP TABLE bench_members")
    warehouse.execute("CHECKPOINT")
    return seconds


_STORE_TABLES = (WORDS, BITS, SNAPSHOTS, CHANGES)


def drop_store(warehouse: DuckDBWarehouse) -> None:
    for (kind,) in warehouse.query(f"SELECT table_type FROM information_schema.tables WHERE table_name = '{MEMBERSHIPS}'"):
        # a view now; a table in a database kept from a benchmark of the earlier row-per-member store
        warehouse.execute(f"DROP {'VIEW' if kind == 'VIEW' else 'TABLE'} {MEMBERSHIPS}")
    for table in _STORE_TABLES:
        warehouse.execute(f"DROP TABLE IF EXISTS {table}")
    warehouse.execute("CHECKPOINT")


def engine(project, warehouse: DuckDBWarehouse, as_of: dt.datetime, run_id: str):
    """The engine from an empty membership store: a first snapshot, as on a new deployment."""
    drop_store(warehouse)
    return evaluate(project, warehouse, as_of, run_id=run_id)


def aggregates_once(project, warehouse: DuckDBWarehouse, as_of: dt.datetime) -> float:
    """Each distinct aggregate of the plan computed once: the per-table aggregate queries alone."""
    compiled = SegmentCompiler(project, "duckdb", "main").compile(as_of)
    ctes = [cte for cte in compiled.flags_query.ctes if cte.alias.startswith("agg__")]
    started = time.perf_counter()
    for cte in ctes:
        warehouse.execute(f"CREATE OR REPLACE TEMP TABLE bench_aggregate AS {to_sql(cte.this, 'duckdb')}")
    seconds = time.perf_counter() - started
    warehouse.execute("DROP TABLE bench_aggregate")
    return seconds


# The snapshot's rows, already computed, written one row per membership into an empty table.
ROWS = ("SELECT * FROM bench_rows LIMIT 0", "SELECT * FROM bench_rows")
# ...and packed, as the store holds it: one row per member customer and word.
PACKED = ("SELECT * FROM bench_packed LIMIT 0", "SELECT * FROM bench_packed")


def write_once(warehouse: DuckDBWarehouse, rows: tuple[str, str]) -> float:
    """Time writing ``rows`` (an empty-table query and the rows' query) in one transaction."""
    shape, select = rows
    warehouse.execute(f"CREATE OR REPLACE TABLE bench_write AS {shape}")
    warehouse.execute("CHECKPOINT")
    started = time.perf_counter()
    with warehouse.transaction():
        warehouse.execute(f"INSERT INTO bench_write {select}")
    seconds = time.perf_counter() - started
    warehouse.execute("DROP TABLE bench_write")
    warehouse.execute("CHECKPOINT")
    return seconds


def median(samples: list[float]) -> float:
    return round(statistics.median(samples), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events-per-customer", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=5, help="samples per figure (median reported)")
    parser.add_argument("--db", help="reuse this DuckDB file (generated if missing)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    db = args.db or str(Path(tempfile.mkdtemp(prefix="segprovider-bench-")) / "bench.duckdb")
    ensure_data(db, args.customers, args.events_per_customer)

    project = load_project(ROOT / "eval_project")
    warehouse = DuckDBWarehouse(db)
    events = warehouse.query("SELECT COUNT(*) FROM events")[0][0]
    customers = warehouse.query("SELECT COUNT(*) FROM customers")[0][0]
    for table in ("bench_members", "bench_write"):
        warehouse.execute(f"DROP TABLE IF EXISTS {table}")
    drop_store(warehouse)

    # Warm-up, not counted: the first queries of a process read the tables into DuckDB's buffers.
    per_segment(project, warehouse, AS_OF)
    engine(project, warehouse, AS_OF, "bench_warm_up")
    print("warm-up round done (not counted)", file=sys.stderr)

    samples: dict[str, list[float]] = {name: [] for name in (
        "per_segment_s", "engine_s", "engine_total_s", "aggregates_s", "write_rows_s", "write_packed_s")}
    first = None
    for round_ in range(args.repeat):
        def run_engine() -> None:
            nonlocal first
            first = engine(project, warehouse, AS_OF, f"bench_1_{round_}")
            samples["engine_s"].append(first.timings["evaluate_s"])
            samples["engine_total_s"].append(first.seconds)
            print(f"round {round_}: engine {first.timings['evaluate_s']:.2f}s "
                  f"{ {k: round(v, 3) for k, v in first.timings.items()} }", file=sys.stderr)

        def run_per_segment() -> None:
            samples["per_segment_s"].append(per_segment(project, warehouse, AS_OF))
            print(f"round {round_}: one query per segment {samples['per_segment_s'][-1]:.2f}s", file=sys.stderr)

        for step in ((run_per_segment, run_engine) if round_ % 2 == 0 else (run_engine, run_per_segment)):
            step()
        # What the speedup is made of, measured in the same round (the machine's speed drifts between
        # rounds): every distinct aggregate alone, and the snapshot's rows written alone.
        if round_ == 0:
            warehouse.execute(f"CREATE OR REPLACE TEMP TABLE bench_packed AS SELECT * FROM {WORDS} "
                              f"WHERE as_of = {ts_literal(AS_OF)}")
            warehouse.execute(f"CREATE OR REPLACE TEMP TABLE bench_rows AS SELECT segment, customer_key, as_of, "
                              f"run_id, arm FROM {MEMBERSHIPS} "
                              f"WHERE as_of = {ts_literal(AS_OF)}")
        samples["aggregates_s"].append(aggregates_once(project, warehouse, AS_OF))
        samples["write_rows_s"].append(write_once(warehouse, ROWS))
        samples["write_packed_s"].append(write_once(warehouse, PACKED))
        print(f"round {round_}: aggregates alone {samples['aggregates_s'][-1]:.2f}s, snapshot written one row "
              f"per membership {samples['write_rows_s'][-1]:.2f}s, packed {samples['write_packed_s'][-1]:.2f}s",
              file=sys.stderr)
    warehouse.execute("DROP TABLE bench_rows")
    warehouse.execute("DROP TABLE bench_packed")
    assert first is not None
    memberships = sum(d.members for d in first.diffs)
    rounds = [dict(zip(samples, values)) for values in zip(*samples.values())]

    # The store now holds the first as_of's snapshot (the last engine round): diff the next day against it.
    diff_samples: list[float] = []
    with_history: list[float] = []  # the second as_of's evaluation, into a store holding the first
    second = None
    day_2 = ts_literal(AS_OF + dt.timedelta(days=1))
    for round_ in range(args.repeat):
        # each round diffs a new snapshot: the previous round's day-2 snapshot is removed, off the clock
        for table in _STORE_TABLES:
            warehouse.execute(f"DELETE FROM {table} WHERE as_of = {day_2}")
        warehouse.execute("CHECKPOINT")
        second = evaluate(project, warehouse, AS_OF + dt.timedelta(days=1), run_id=f"bench_2_{round_}")
        diff_samples.append(second.timings["diff_s"])
        with_history.append(second.timings["evaluate_s"])
        print(f"second as_of, round {round_}: diff {second.timings['diff_s']:.2f}s", file=sys.stderr)
    assert second is not None

    def ratio(numerator, denominator) -> float:
        """Median over rounds of a ratio of that round's figures."""
        return round(statistics.median(numerator(r) / denominator(r) for r in rounds), 2)

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "customers": customers,
        "events": events,
        "segments": len(project.segments),
        "memberships": memberships,
        "repeat": args.repeat,
        # the engine's evaluation and snapshot write; the diff is reported on its own
        **{name: median(values) for name, values in samples.items() if name != "per_segment_s"},
        "per_segment_s": median(samples["per_segment_s"]),
        "speedup": ratio(lambda r: r["per_segment_s"], lambda r: r["engine_s"]),
        "diff_s": median(diff_samples),
        "diff_added": sum(d.added for d in second.diffs),
        "diff_removed": sum(d.removed for d in second.diffs),
        "engine_s_with_history": median(with_history),
        "speedup_whole_evaluate": ratio(lambda r: r["per_segment_s"], lambda r: r["engine_total_s"]),
        "evaluation_speedup": ratio(lambda r: r["per_segment_s"] - r["write_rows_s"],
                                    lambda r: r["engine_s"] - r["write_packed_s"]),
        "speedup_if_only_aggregates": ratio(lambda r: r["per_segment_s"],
                                            lambda r: r["aggregates_s"] + r["write_packed_s"]),
        "samples": {**{name: [round(x, 3) for x in values] for name, values in samples.items()},
                    "diff_s": [round(x, 3) for x in diff_samples],
                    "engine_s_with_history": [round(x, 3) for x in with_history]},
        "peak_rss_mb": round(peak_rss_mb, 1),
    }
    warehouse.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()

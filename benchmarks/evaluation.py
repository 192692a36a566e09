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
  (first ``as_of``), as :func:`evaluate` does it (``engine_flags_s`` + ``engine_write_s``).
* ``per_segment_s``: the same work as one query per segment (each computes its own aggregates and
  writes its members), on the same data.
* ``speedup``: ``per_segment_s / engine_s``.
* ``diff_s``: the diff of the second ``as_of``'s snapshot against the first.
* ``peak_rss_mb``: peak resident memory of this process, which only evaluates; the data is generated
  beforehand in a child process.
* ``aggregates_s``: each distinct aggregate of the plan computed alone (the per-table aggregate
  queries, no join, no flags): compare with ``engine_flags_s`` to see what joining, flags, references
  and splits add.
* ``write_floor_s``: the snapshot's rows, already computed, written alone into an empty membership
  table; ``write_minimal_s``: the same rows reduced to ``(segment, key as BIGINT)``, the least a
  snapshot can hold. Both plans write the same rows, so the write is work the engine cannot share.
* ``engine_total_s``: all of :func:`evaluate` (compile, source checks, evaluation, write, diff, commit).
* ``write_packed_s``: the snapshot as one row per member customer (key, ``as_of``, run id, one bit per
  segment, split arms), written from the engine's flags: a layout only a plan evaluating every segment
  at once can write (not the membership store's; measured to size that alternative).
* ``evaluation_speedup`` = ``(per_segment_s - write_floor_s) / (engine_s - write_floor_s)``: the
  speedup of the evaluation work alone, each side's write taken as ``write_floor_s``.
* ``speedup_if_only_aggregates`` = ``per_segment_s / (aggregates_s + write_floor_s)``: the end-to-end
  speedup of a plan that cost no more than computing its aggregates and writing the snapshot (joins,
  flags, references and splits free): the most this plan shape can give here.
* ``speedup_minimal_write``: the end-to-end speedup if the snapshot cost only ``write_minimal_s`` to
  write (each side's write taken as above). ``speedup_packed_store`` =
  ``per_segment_s / (engine_flags_s + write_packed_s)``: the end-to-end speedup with a packed
  per-customer store, the per-segment plan keeping its own (cheaper) row-per-member write.

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

from airflow_segprovider.core.compiler import SegmentCompiler  # noqa: E402
from airflow_segprovider.core.dialects import to_sql  # noqa: E402
from airflow_segprovider.core.engine import evaluate  # noqa: E402
from airflow_segprovider.core.membership import MEMBERSHIPS, ts_literal  # noqa: E402
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


_STORE_TABLES = ("segprovider_memberships", "segprovider_snapshots", "segprovider_membership_changes")


def engine(project, warehouse: DuckDBWarehouse, as_of: dt.datetime, run_id: str):
    """The engine from an empty membership store: a first snapshot, as on a new deployment."""
    for table in _STORE_TABLES:
        warehouse.execute(f"DROP TABLE IF EXISTS {table}")
    warehouse.execute("CHECKPOINT")
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


# The snapshot's rows, already computed, written into an empty table: as the membership table holds
# them, and reduced to (segment, BIGINT key), the least a snapshot can hold.
FULL_ROWS = ("SELECT * FROM segprovider_memberships LIMIT 0", "SELECT * FROM bench_rows")
MINIMAL_ROWS = ("SELECT segment, CAST(customer_key AS BIGINT) AS customer_key FROM bench_rows LIMIT 0",
                "SELECT segment, CAST(customer_key AS BIGINT) FROM bench_rows")


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


def write_packed_once(project, warehouse: DuckDBWarehouse, as_of: dt.datetime) -> float:
    """The snapshot as one row per member customer (key, as_of, run id, a bit per segment, split arms),
    written from the engine's flags: a store layout only a plan that evaluates every segment at once
    can write. Not what the membership store does; measured to size that alternative."""
    compiled = SegmentCompiler(project, "duckdb", "main").compile(as_of)
    names = list(project.segments)
    arms = [f'"arm__{n}"' for n in names if project.segments[n].split]
    mask = " + ".join(f'CASE WHEN "m__{n}" THEN {1 << i} ELSE 0 END' for i, n in enumerate(names))
    warehouse.execute(f"CREATE OR REPLACE TEMP TABLE bench_flags AS {compiled.sql(pretty=False)}")
    warehouse.execute(f"CREATE OR REPLACE TABLE bench_write AS SELECT k_text AS customer_key, "
                      f"CAST(NULL AS TIMESTAMP) AS as_of, 'r' AS run_id, CAST(0 AS BIGINT) AS segments"
                      f"{''.join(', ' + a for a in arms)} FROM bench_flags LIMIT 0")
    warehouse.execute("CHECKPOINT")
    started = time.perf_counter()
    with warehouse.transaction():
        warehouse.execute(f"INSERT INTO bench_write SELECT k_text, {ts_literal(as_of)}, 'bench', {mask}"
                          f"{''.join(', ' + a for a in arms)} FROM bench_flags WHERE ({mask}) <> 0")
    seconds = time.perf_counter() - started
    warehouse.execute("DROP TABLE bench_write")
    warehouse.execute("DROP TABLE bench_flags")
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
    for table in (*_STORE_TABLES, "bench_members", "bench_write"):
        warehouse.execute(f"DROP TABLE IF EXISTS {table}")
    warehouse.execute("CHECKPOINT")

    # Warm-up, not counted: the first queries of a process read the tables into DuckDB's buffers.
    per_segment(project, warehouse, AS_OF)
    engine(project, warehouse, AS_OF, "bench_warm_up")
    print("warm-up round done (not counted)", file=sys.stderr)

    samples: dict[str, list[float]] = {name: [] for name in (
        "per_segment_s", "engine_flags_s", "engine_write_s", "engine_total_s", "aggregates_s", "write_floor_s",
        "write_minimal_s", "write_packed_s")}
    first = None
    for round_ in range(args.repeat):
        def run_engine() -> None:
            nonlocal first
            first = engine(project, warehouse, AS_OF, f"bench_1_{round_}")
            samples["engine_flags_s"].append(first.timings["flags_s"])
            samples["engine_write_s"].append(first.timings["write_s"])
            samples["engine_total_s"].append(first.seconds)
            print(f"round {round_}: engine {first.timings['flags_s'] + first.timings['write_s']:.2f}s "
                  f"{ {k: round(v, 3) for k, v in first.timings.items()} }", file=sys.stderr)

        def run_per_segment() -> None:
            samples["per_segment_s"].append(per_segment(project, warehouse, AS_OF))
            print(f"round {round_}: one query per segment {samples['per_segment_s'][-1]:.2f}s", file=sys.stderr)

        for step in ((run_per_segment, run_engine) if round_ % 2 == 0 else (run_engine, run_per_segment)):
            step()
        # What the speedup is made of, measured in the same round (the machine's speed drifts between
        # rounds): every distinct aggregate alone, and the snapshot's rows written alone.
        if round_ == 0:
            warehouse.execute(f"CREATE OR REPLACE TEMP TABLE bench_rows AS SELECT * FROM {MEMBERSHIPS} "
                              f"WHERE as_of = {ts_literal(AS_OF)}")
        samples["aggregates_s"].append(aggregates_once(project, warehouse, AS_OF))
        samples["write_floor_s"].append(write_once(warehouse, FULL_ROWS))
        samples["write_minimal_s"].append(write_once(warehouse, MINIMAL_ROWS))
        samples["write_packed_s"].append(write_packed_once(project, warehouse, AS_OF))
        print(f"round {round_}: aggregates alone {samples['aggregates_s'][-1]:.2f}s, snapshot write alone "
              f"{samples['write_floor_s'][-1]:.2f}s, (segment, BIGINT key) alone {samples['write_minimal_s'][-1]:.2f}s, "
              f"packed per customer {samples['write_packed_s'][-1]:.2f}s",
              file=sys.stderr)
    warehouse.execute("DROP TABLE bench_rows")
    assert first is not None
    memberships = sum(d.members for d in first.diffs)
    rounds = [dict(zip(samples, values)) for values in zip(*samples.values())]
    engine_samples = [r["engine_flags_s"] + r["engine_write_s"] for r in rounds]

    # The store now holds the first as_of's snapshot (the last engine round): diff the next day against it.
    diff_samples: list[float] = []
    second = None
    day_2 = ts_literal(AS_OF + dt.timedelta(days=1))
    for round_ in range(args.repeat):
        # each round diffs a new snapshot: the previous round's day-2 snapshot is removed, off the clock
        for table in _STORE_TABLES:
            warehouse.execute(f"DELETE FROM {table} WHERE as_of = {day_2}")
        warehouse.execute("CHECKPOINT")
        second = evaluate(project, warehouse, AS_OF + dt.timedelta(days=1), run_id=f"bench_2_{round_}")
        diff_samples.append(second.timings["diff_s"])
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
        "engine_s": median(engine_samples),
        **{name: median(values) for name, values in samples.items() if name != "per_segment_s"},
        "per_segment_s": median(samples["per_segment_s"]),
        "speedup": ratio(lambda r: r["per_segment_s"], lambda r: r["engine_flags_s"] + r["engine_write_s"]),
        "diff_s": median(diff_samples),
        "diff_added": sum(d.added for d in second.diffs),
        "diff_removed": sum(d.removed for d in second.diffs),
        "evaluation_speedup": ratio(lambda r: r["per_segment_s"] - r["write_floor_s"],
                                    lambda r: r["engine_flags_s"] + r["engine_write_s"] - r["write_floor_s"]),
        "speedup_if_only_aggregates": ratio(lambda r: r["per_segment_s"],
                                            lambda r: r["aggregates_s"] + r["write_floor_s"]),
        "speedup_minimal_write": ratio(
            lambda r: r["per_segment_s"] - r["write_floor_s"] + r["write_minimal_s"],
            lambda r: r["engine_flags_s"] + r["engine_write_s"] - r["write_floor_s"] + r["write_minimal_s"]),
        "speedup_packed_store": ratio(lambda r: r["per_segment_s"],
                                      lambda r: r["engine_flags_s"] + r["write_packed_s"]),
        "samples": {"engine_s": [round(x, 3) for x in engine_samples],
                    **{name: [round(x, 3) for x in values] for name, values in samples.items()},
                    "diff_s": [round(x, 3) for x in diff_samples]},
        "peak_rss_mb": round(peak_rss_mb, 1),
    }
    warehouse.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()

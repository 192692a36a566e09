"""Benchmark: incremental evaluation against a full one, after a day of change.

Run: ``uv run python benchmarks/incremental.py`` (``--customers`` to scale down, ``--db`` to reuse generated
data, ``--postgres-customers 0`` to skip PostgreSQL). Prints progress, then one JSON object on its last line.

Data: ``benchmarks/evaluation.py``'s generator and 25-segment project (1M customers, 20M events by default),
its event, order and consent tables marked as one ingest load (``_segprovider_load``, as ingest's append
sources write them). A first, full evaluation at ``2026-11-24`` keeps the incremental state. Then a day of
change: new events, about 0.3% of the history, dated in the new day (a tenth of them late: dated in the
week before), as one new load, and 1% of the customers with changed attributes (lifetime value, plan,
last seen). The evaluation at the next day runs twice, on two copies of that warehouse: incremental (the
default) and ``full=True``.

* ``full_s``, ``incremental_s``: the whole :func:`evaluate` call of each (checks, evaluation, snapshot,
  diff, state, commit); ``speedup`` = ``full_s / incremental_s``; ``mode`` what the incremental run did.
* ``identical``: true only if the two snapshots of the day are equal row for row (segment, customer, arm),
  and so are their diffs against the first day.
* ``large_change``: the same with 30% of the history as new events and 30% of the customers changed: the
  incremental run must fall back to a full one by itself (``mode``, ``reason``) and cost no more.
* ``postgres``: the small change on PostgreSQL (``--postgres-customers``, default 100,000), with
  ``postgres_speedup`` beside the DuckDB one.
* ``touched``, ``touched_share``: the customers the incremental run re-evaluated, and their share of all
  customers (most are not the day's new events or changed attributes but customers with an event that left
  one of the project's five windows, 7 to 365 days, that day).
* ``necessary``, ``necessary_share``: the customers *any* correct incremental run has to evaluate at the next
  day: those whose membership changed (the full run's diff), those with rows in the day's new load, and
  those whose attributes the day changed. Most of them are in the diff: 7-day windows over a year of events
  flip several percent of the customers every day.
* ``bound_incremental_s``, ``bound_speedup``: a bound, not a result. The incremental run once more, on a third
  copy, with its touched customers cut to ``necessary`` after it found them (the cut's own time left out):
  what a design that touched no customer needlessly (one that knew, per customer, when a rule's outcome
  can next flip) would cost with every other step as it is. Its state is wrong for the customers cut, and
  the copy is thrown away. ``floor_incremental_s``: the same with no customer kept, what the run costs
  whatever it touches (finding what changed, checks, compiling, the commit).
* ``peak_rss_mb``: peak resident memory of this process (generation runs in a child process).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))

from evaluation import AS_OF, ensure_data  # noqa: E402

from airflow_segprovider.core.evaluate.engine import evaluate  # noqa: E402
from airflow_segprovider.core.project.loader import load_project  # noqa: E402
from airflow_segprovider.core.sql.dialects import render, ts_literal  # noqa: E402
from airflow_segprovider.core.state import incremental as state_tables  # noqa: E402
from airflow_segprovider.core.state.ingest import LOAD_COLUMN  # noqa: E402
from airflow_segprovider.core.state.membership import CHANGES, MEMBERSHIPS  # noqa: E402
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse  # noqa: E402

NEXT = AS_OF + dt.timedelta(days=1)
LOADED = ("events", "orders", "consents")


def mark_loads(warehouse) -> None:
    """The generated tables as one ingest load each, as an append source leaves them."""
    for table in LOADED:
        columns = warehouse.columns(table) or {}
        if LOAD_COLUMN not in columns:
            warehouse.execute(render(f"ALTER TABLE {table} ADD COLUMN {LOAD_COLUMN} VARCHAR", warehouse.dialect))
            warehouse.execute(render(f"UPDATE {table} SET {LOAD_COLUMN} = 'initial'", warehouse.dialect))


def day_of_change(warehouse, event_share: float, customer_share: float) -> None:
    """New events (``event_share`` of the history, a tenth of them late) and changed customers."""
    d = warehouse.dialect
    every = max(1, round(1 / event_share))
    # new events: copies of about every n-th event (its customer, type, properties), dated in the new day or
    # (a tenth of them) late, in the week before; n is drawn from the key and the old timestamp's microseconds
    n = "(customer_id + CAST(EXTRACT(MICROSECONDS FROM occurred_at) AS BIGINT))"
    warehouse.execute(render(
        f"INSERT INTO events (customer_id, event_type, occurred_at, revenue, channel, category, {LOAD_COLUMN}) "
        f"SELECT customer_id, event_type, CASE WHEN n % 10 = 0 "
        f"THEN {ts_literal(AS_OF)} - INTERVAL '1' SECOND * (n % 604800) "
        f"ELSE {ts_literal(AS_OF)} + INTERVAL '1' SECOND * (n % 86400) END, revenue, channel, category, 'day-1' "
        f"FROM (SELECT *, {n} AS n FROM events) AS e WHERE n % {every} = 0", d))
    modulo = max(1, round(1 / customer_share))
    warehouse.execute(render(
        f"UPDATE customers SET lifetime_value = COALESCE(lifetime_value, 0) + 250, "
        f"plan = CASE WHEN plan = 'free' THEN 'plus' ELSE 'free' END, "
        f"last_seen_at = {ts_literal(AS_OF)} + INTERVAL 12 HOUR WHERE customer_id % {modulo} = 0", d))


def snapshot_rows(warehouse, as_of: dt.datetime) -> tuple[str, str]:
    at = ts_literal(as_of)
    return (f"SELECT segment, customer_key, arm FROM {MEMBERSHIPS} WHERE as_of = {at}",
            f"SELECT segment, customer_key, change, arm FROM {CHANGES} WHERE as_of = {at}")


def identical_duckdb(a: str, b: str, as_of: dt.datetime) -> bool:
    """Row-for-row equality of two warehouses' snapshots (and diffs) at ``as_of``, in one DuckDB session."""
    import duckdb

    con = duckdb.connect(a)
    con.execute(f"ATTACH '{b}' AS other (READ_ONLY)")
    members, changes = snapshot_rows(None, as_of)
    ok = True
    for query in (members, changes):
        theirs = query.replace(f"FROM {MEMBERSHIPS}", f"FROM other.{MEMBERSHIPS}").replace(
            f"FROM {CHANGES}", f"FROM other.{CHANGES}")
        counts = con.execute(f"SELECT (SELECT COUNT(*) FROM ({query})), (SELECT COUNT(*) FROM ({theirs})), "
                             f"(SELECT COUNT(*) FROM (({query}) EXCEPT ALL ({theirs}))), "
                             f"(SELECT COUNT(*) FROM (({theirs}) EXCEPT ALL ({query})))").fetchone()
        ok = ok and counts[0] == counts[1] and counts[2] == 0 and counts[3] == 0
    con.close()
    return ok


def scenario(project, base_db: str, workdir: Path, name: str, event_share: float, customer_share: float,
             bound: bool = False) -> dict:
    """First day in full, a day of change, then the next day incremental and full on two copies."""
    first = workdir / f"{name}-first.duckdb"
    shutil.copy(base_db, first)
    warehouse = DuckDBWarehouse(str(first))
    mark_loads(warehouse)
    evaluate(project, warehouse, AS_OF, run_id="day-1")
    day_of_change(warehouse, event_share, customer_share)
    warehouse.execute("CHECKPOINT")
    warehouse.close()
    out: dict = {}
    paths = {}
    for side in ("incremental", "full"):
        paths[side] = str(workdir / f"{name}-{side}.duckdb")
        shutil.copy(first, paths[side])
    os.sync()  # the copies on disk before either run: the kernel's writeback of them would slow the first
    for side in ("incremental", "full"):
        warehouse = DuckDBWarehouse(paths[side])
        result = evaluate(project, warehouse, NEXT, run_id="day-2", full=side == "full")
        warehouse.close()
        out[f"{side}_s"] = round(result.seconds, 3)
        if side == "incremental":
            out.update(mode=result.mode, reason=result.reason, touched=result.touched,
                       timings={k: round(v, 3) for k, v in result.timings.items()})
        print(f"{name}: {side} {result.seconds:.2f}s ({result.mode}: {result.reason})", file=sys.stderr)
    out["speedup"] = round(out["full_s"] / out["incremental_s"], 2)
    out["identical"] = identical_duckdb(paths["incremental"], paths["full"], NEXT)
    if bound:
        paths["bound"] = str(workdir / f"{name}-bound.duckdb")
        shutil.copy(first, paths["bound"])
        os.sync()
        out.update(bounded_run(project, paths["bound"], paths["full"], customer_share))
        out["bound_speedup"] = round(out["full_s"] / out["bound_incremental_s"], 2)
        shutil.copy(first, paths["bound"])
        os.sync()
        out.update(bounded_run(project, paths["bound"], paths["full"], customer_share, keep="none"))
    for path in (first, *paths.values()):
        Path(path).unlink(missing_ok=True)
    return out


def bounded_run(project, path: str, full_path: str, customer_share: float, keep: str = "necessary") -> dict:
    """The incremental run on ``path`` with its touched customers cut to the necessary ones (``necessary``),
    which the full run's diff in ``full_path`` and the day's change give: a bound on what touching fewer
    customers can win (see the module's doc). ``keep="none"``: cut to no customer at all, the run's cost
    that does not depend on the customers it touches."""
    warehouse = DuckDBWarehouse(path)
    con = warehouse.connection
    con.execute(f"ATTACH '{full_path}' AS full_run (READ_ONLY)")
    loads = " UNION ".join(f"SELECT CAST(customer_id AS VARCHAR) FROM {table} WHERE {LOAD_COLUMN} = 'day-1'"
                           for table in LOADED)
    con.execute(
        f"CREATE TEMPORARY TABLE bench_necessary AS SELECT DISTINCT k FROM ("
        f"SELECT customer_key AS k FROM full_run.{CHANGES} WHERE as_of = {ts_literal(NEXT)} UNION {loads} "
        f"UNION SELECT CAST(customer_id AS VARCHAR) FROM customers "
        f"WHERE customer_id % {max(1, round(1 / customer_share))} = 0) AS n")
    con.execute("DETACH full_run")
    necessary = con.execute("SELECT COUNT(*) FROM bench_necessary").fetchone()[0]
    customers = con.execute("SELECT COUNT(*) FROM customers").fetchone()[0]
    touched_table = state_tables.create_as(state_tables.TOUCHED, "", True).split(" AS ")[0]
    run_statement = warehouse.execute
    cut = {"seconds": 0.0, "times": 0}

    def execute(sql: str) -> None:
        run_statement(sql)
        if sql.startswith(touched_table + " AS"):
            started = time.perf_counter()
            run_statement(f"DELETE FROM {state_tables.TOUCHED}" + (
                " WHERE CAST(k AS VARCHAR) NOT IN (SELECT k FROM bench_necessary)" if keep == "necessary" else ""))
            cut["seconds"] += time.perf_counter() - started
            cut["times"] += 1

    warehouse.execute = execute
    result = evaluate(project, warehouse, NEXT, run_id="day-2")
    warehouse.close()
    if cut["times"] != 1 or result.mode != "incremental":
        raise SystemExit(f"the bound run did not cut the touched customers once ({cut['times']} times, "
                         f"{result.mode}): the benchmark no longer matches incremental/run.py")
    print(f"bound: incremental with {result.touched} touched {result.seconds - cut['seconds']:.2f}s",
          file=sys.stderr)
    if keep == "none":
        return {"floor_incremental_s": round(result.seconds - cut["seconds"], 3)}
    return {"necessary": necessary, "necessary_share": round(necessary / max(customers, 1), 4),
            "bound_touched": result.touched, "bound_incremental_s": round(result.seconds - cut["seconds"], 3),
            "bound_timings": {k: round(v, 3) for k, v in result.timings.items()}}


def postgres(project, base_db: str, customers: int) -> dict:
    """The small change on PostgreSQL: two schemas loaded from the DuckDB data, one run each way."""
    import uuid

    import psycopg2

    from airflow_segprovider.core.warehouses.postgres import PostgresWarehouse

    dsn = "host=127.0.0.1 port=5432 dbname=test user=postgres"
    source = DuckDBWarehouse(base_db)
    out: dict = {"customers": customers}
    schemas = []
    try:
        for side in ("incremental", "full"):
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            schemas.append(schema)
            admin = psycopg2.connect(dsn)
            admin.autocommit = True
            admin.cursor().execute(f"CREATE SCHEMA {schema}")
            admin.close()
            warehouse = PostgresWarehouse(psycopg2.connect(dsn, options=f"-c search_path={schema}"), schema=schema)
            for table, where in (("customers", f"customer_id <= {customers}"),
                                 ("events", f"customer_id <= {customers}"),
                                 ("orders", f"customer_id <= {customers}"),
                                 ("consents", f"customer_id <= {customers}")):
                first = True
                for batch in source.iter_batches(f"SELECT * FROM {table} WHERE {where}", batch_size=200_000):
                    import pyarrow as pa

                    warehouse.load(table, pa.Table.from_batches([batch]), create=first)
                    first = False
            mark_loads(warehouse)
            warehouse.execute("ANALYZE")
            evaluate(project, warehouse, AS_OF, run_id="day-1")
            day_of_change(warehouse, 0.003, 0.01)
            warehouse.execute("ANALYZE")
            result = evaluate(project, warehouse, NEXT, run_id="day-2", full=side == "full")
            out[f"{side}_s"] = round(result.seconds, 3)
            if side == "incremental":
                out.update(mode=result.mode, reason=result.reason)
            members, changes = snapshot_rows(None, NEXT)
            out[f"{side}_rows"] = sorted(map(tuple, warehouse.query(render(members, "postgres"))))
            out[f"{side}_changes"] = sorted(map(tuple, warehouse.query(render(changes, "postgres"))))
            warehouse.close()
            print(f"postgres: {side} {result.seconds:.2f}s ({result.mode})", file=sys.stderr)
        out["identical"] = (out.pop("incremental_rows") == out.pop("full_rows")
                            and out.pop("incremental_changes") == out.pop("full_changes"))
        out["speedup"] = round(out["full_s"] / out["incremental_s"], 2)
    finally:
        source.close()
        admin = psycopg2.connect(dsn)
        admin.autocommit = True
        for schema in schemas:
            admin.cursor().execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events-per-customer", type=float, default=20.0)
    parser.add_argument("--db", help="reuse this generated DuckDB file (generated if missing; never modified)")
    parser.add_argument("--postgres-customers", type=int, default=100_000, help="0: skip PostgreSQL")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="segprovider-incremental-"))
    db = args.db or str(workdir / "generated.duckdb")
    ensure_data(db, args.customers, args.events_per_customer)
    project = load_project(ROOT / "eval_project")
    check = DuckDBWarehouse(db)
    customers = check.query("SELECT COUNT(*) FROM customers")[0][0]
    events = check.query("SELECT COUNT(*) FROM events")[0][0]
    check.close()
    small = scenario(project, db, workdir, "small", 0.003, 0.01, bound=True)
    large = scenario(project, db, workdir, "large", 0.3, 0.3)
    result = {
        "customers": customers, "events": events, "segments": len(project.segments),
        "full_s": small["full_s"], "incremental_s": small["incremental_s"], "speedup": small["speedup"],
        "identical": small["identical"], "mode": small["mode"], "touched": small["touched"],
        "touched_share": round(small["touched"] / max(customers, 1), 4),
        "timings": small["timings"],
        **{k: small[k] for k in ("necessary", "necessary_share", "bound_touched", "bound_incremental_s",
                                 "bound_speedup", "bound_timings", "floor_incremental_s")},
        "large_change": {k: large[k] for k in ("full_s", "incremental_s", "speedup", "identical", "mode", "reason")},
    }
    if args.postgres_customers:
        pg = postgres(project, db, args.postgres_customers)
        result["postgres"] = pg
        result["postgres_speedup"] = pg["speedup"]
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Benchmark: ingest 1,000,000 rows (Parquet, paginated API) and evaluate 25 segments on DuckDB and PostgreSQL.

Run: ``uv run python benchmarks/warehouses.py`` (``--ingest-rows`` and ``--customers`` to scale down,
``--skip-postgres`` without a server). Prints progress, then one JSON object on its last line with at
least ``parquet_rows_per_s``, ``api_rows_per_s``, ``duckdb_eval_s``, ``postgres_eval_s``, ``peak_rss_mb``.

* ``parquet_rows_per_s``: one Parquet file of ``--ingest-rows`` customers (9 typed attributes, 1% of
  the rows malformed) ingested into an empty DuckDB warehouse by :func:`ingest_source`: read, typed,
  malformed rows quarantined, upserted by key, ledger written. ``parquet_rows_per_s_postgres``: the same
  into PostgreSQL (typed in DuckDB, streamed in Arrow batches, ``COPY`` + upsert in PostgreSQL).
* ``api_rows_per_s``: the same rows from a paginated JSON API served on loopback by a separate process
  (cursor pagination, ``--page-size`` records per page, default 5,000), through the shared HTTP layer.
  ``api_rows_per_s_postgres``: the same into PostgreSQL.
* ``duckdb_eval_s`` / ``postgres_eval_s``: :func:`evaluate` of the 25-segment benchmark project
  (``benchmarks/eval_project``) over the generated data (``--customers``, 20 events each), the
  snapshot written; the data is loaded into a fresh PostgreSQL schema first with the adapter's COPY
  load, which is timed apart (``postgres_load_s``) and not counted as evaluation. The two
  snapshots are compared (``same_members``).
* ``peak_rss_mb``: peak resident memory of this process (the API server and the data generator run
  in child processes).

The machine is shared: figures are indicative. PostgreSQL is reached with ``--pg-dsn`` (default
``host=127.0.0.1 port=5432 user=postgres dbname=test``); the benchmark's schemas are dropped at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from airflow_segprovider.core.evaluate.engine import evaluate  # noqa: E402
from airflow_segprovider.core.project.loader import load_project  # noqa: E402
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse  # noqa: E402
from airflow_segprovider.ingest import ingest_source  # noqa: E402

AS_OF = dt.datetime(2026, 11, 24)
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
EVAL_TABLES = ("customers", "events", "orders", "consents")

SOURCES_YAML = """\
sources:
  - name: parquet_customers
    table: customers
    kind: file
    format: parquet
    path: {parquet}
    mode: upsert
    key: [customer_id]
  - name: api_customers
    table: customers
    kind: rest_api
    connection_id: bench_api
    url: /customers
    records: data
    mode: upsert
    key: [customer_id]
    pagination: {{style: cursor, page_size: {page_size}, cursor_path: next_cursor}}
"""


def _record(i: int) -> dict:
    """Customer ``i`` as the API serves it (every 100th row has a malformed lifetime value)."""
    return {"customer_id": i, "email": f"c{i}@example.com", "first_name": f"Name{i % 1000}",
            "country": ("DE", "FR", "US", "GB", "NL")[i % 5], "plan": ("free", "plus", "pro")[i % 3],
            "lifetime_value": "n/a" if i % 100 == 0 else round((i % 5000) * 1.5, 2), "is_employee": i % 97 == 0,
            "birth_date": f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}",
            "signup_at": f"2025-0{1 + i % 9}-1{i % 10}T10:00:00Z", "last_seen_at": "2026-11-20T08:30:00Z"}


def _write_parquet(path: Path, rows: int) -> None:
    """The same rows as the API, written by DuckDB (lifetime_value as text: the malformed ones stay)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"""COPY (SELECT i AS customer_id, 'c' || i || '@example.com' AS email, 'Name' || (i % 1000) AS first_name,
        ['DE', 'FR', 'US', 'GB', 'NL'][(i % 5) + 1] AS country, ['free', 'plus', 'pro'][(i % 3) + 1] AS plan,
        CASE WHEN i % 100 = 0 THEN 'n/a' ELSE CAST(round((i % 5000) * 1.5, 2) AS VARCHAR) END AS lifetime_value,
        i % 97 = 0 AS is_employee,
        '19' || (50 + i % 50) || '-0' || (1 + i % 9) || '-1' || (i % 10) AS birth_date,
        '2025-0' || (1 + i % 9) || '-1' || (i % 10) || 'T10:00:00Z' AS signup_at,
        '2026-11-20T08:30:00Z' AS last_seen_at
        FROM range(1, {rows + 1}) AS t(i)) TO '{path}' (FORMAT parquet)""")
    con.close()


def _serve_api(rows: int, port_queue) -> None:  # runs in a child process
    import json as json_lib
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qsl, urlsplit

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real APIs

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            params = dict(parse_qsl(urlsplit(self.path).query))
            start, limit = int(params.get("cursor") or 1), int(params.get("limit", 1000))
            stop = min(start + limit, rows + 1)
            body = json_lib.dumps({"data": [_record(i) for i in range(start, stop)],
                                   "next_cursor": str(stop) if stop <= rows else None}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def _generate(db: str, customers: int) -> None:  # runs in a child process
    from airflow_segprovider.example.generate import generate

    warehouse = DuckDBWarehouse(db)
    generate(warehouse, customers, events_per_customer=20.0, anchor=AS_OF)
    warehouse.close()


def _pg_warehouse(dsn: str, schema: str):
    import psycopg2

    from airflow_segprovider.core.warehouses.postgres import PostgresWarehouse

    return PostgresWarehouse(psycopg2.connect(dsn), schema=schema)


def _drop_schema(dsn: str, schema: str) -> None:
    import psycopg2

    admin = psycopg2.connect(dsn)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    admin.close()


def _timed_ingest(project, warehouse, source: str, connection=None) -> tuple[float, object]:
    started = time.perf_counter()
    result = ingest_source(project, warehouse, source, connection=connection)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ingest-rows", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=5_000)
    parser.add_argument("--customers", type=int, default=1_000_000, help="customers of the evaluation data")
    parser.add_argument("--pg-dsn", default=PG_DSN)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    workdir = Path(tempfile.mkdtemp(prefix="segprovider-wh-bench-"))
    schemas: list[str] = []
    result: dict[str, object] = {"ingest_rows": args.ingest_rows, "page_size": args.page_size,
                                 "customers": args.customers}
    server = None
    try:
        # --- ingest -------------------------------------------------------------------------------
        parquet = workdir / "customers.parquet"
        _write_parquet(parquet, args.ingest_rows)
        project_dir = workdir / "project"
        shutil.copytree(ROOT / "eval_project", project_dir)
        (project_dir / "sources.yml").write_text(SOURCES_YAML.format(parquet=parquet, page_size=args.page_size))
        project = load_project(project_dir)
        context = multiprocessing.get_context("spawn")
        ports = context.Queue()
        server = context.Process(target=_serve_api, args=(args.ingest_rows, ports), daemon=True)
        server.start()
        connection = {"host": f"http://127.0.0.1:{ports.get(timeout=60)}", "extra": {"auth_type": "none"}}

        targets = [("duckdb", lambda name: DuckDBWarehouse(workdir / f"{name}.duckdb"))]
        if not args.skip_postgres:
            def pg_target(name: str):
                schema = f"bench_{uuid.uuid4().hex[:12]}"
                schemas.append(schema)
                return _pg_warehouse(args.pg_dsn, schema)
            targets.append(("postgres", pg_target))
        for kind, open_target in targets:
            suffix = "" if kind == "duckdb" else "_postgres"
            for source, key in (("parquet_customers", "parquet"), ("api_customers", "api")):
                warehouse = open_target(f"{key}_ingest")
                try:
                    seconds, load = _timed_ingest(project, warehouse, source,
                                                  connection if source == "api_customers" else None)
                    stored = warehouse.query("SELECT COUNT(*) FROM customers")[0][0]
                finally:
                    warehouse.close()
                assert load.rows_read == args.ingest_rows and stored == load.rows_loaded, (load, stored)
                result[f"{key}_rows_per_s{suffix}"] = round(load.rows_read / seconds)
                result[f"{key}_s{suffix}"] = round(seconds, 2)
                result[f"{key}_quarantined{suffix}"] = load.rows_quarantined
                log(f"{kind}: {load.summary()} in {seconds:.1f}s ({load.rows_read / seconds:,.0f} rows/s)")
        server.terminate()
        server = None

        # --- evaluation of the 25-segment benchmark ------------------------------------------------
        eval_project = load_project(ROOT / "eval_project")
        db = str(workdir / "eval.duckdb")
        started = time.perf_counter()
        child = context.Process(target=_generate, args=(db, args.customers))
        child.start()
        child.join()
        if child.exitcode:
            raise SystemExit("data generation failed")
        log(f"generated {args.customers:,} customers in {time.perf_counter() - started:.1f}s")
        duck = DuckDBWarehouse(db)
        result["events"] = duck.query("SELECT COUNT(*) FROM events")[0][0]
        first = evaluate(eval_project, duck, AS_OF, run_id="bench")
        result["duckdb_eval_s"] = round(first.seconds, 3)
        result["memberships"] = sum(d.members for d in first.diffs)
        log(f"duckdb: 25 segments evaluated and written in {first.seconds:.2f}s {first.timings}")
        if not args.skip_postgres:
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            schemas.append(schema)
            pg = _pg_warehouse(args.pg_dsn, schema)
            try:
                import pyarrow as pa

                started = time.perf_counter()
                for table in EVAL_TABLES:
                    created = False
                    for batch in duck.iter_batches(f"SELECT * FROM {table}", 500_000):
                        pg.load(table, pa.Table.from_batches([batch]), create=not created)
                        created = True
                    pg.execute(f"ANALYZE {table}")
                result["postgres_load_s"] = round(time.perf_counter() - started, 2)
                log(f"postgres: data loaded with COPY in {result['postgres_load_s']}s")
                second = evaluate(eval_project, pg, AS_OF, run_id="bench")
                result["postgres_eval_s"] = round(second.seconds, 3)
                log(f"postgres: 25 segments evaluated and written in {second.seconds:.2f}s {second.timings}")
                result["same_members"] = ({d.segment: d.members for d in first.diffs}
                                          == {d.segment: d.members for d in second.diffs})
            finally:
                pg.close()
        else:
            result["postgres_eval_s"] = None
        duck.close()
    finally:
        if server is not None:
            server.terminate()
        for schema in schemas:
            _drop_schema(args.pg_dsn, schema)
        shutil.rmtree(workdir, ignore_errors=True)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""The main job on the embedded default: the centralized DAG, end to end, on one machine.

``python -m airflow_segprovider.cli.demo`` (what ``make demo`` runs):

1. generates the example dataset (seeded) and writes it as Parquet landing files, the
   way an upstream export would deliver it;
2. starts the destination sandbox (Mailchimp, HubSpot, Meta) on loopback;
3. runs ``segments_centralized`` with ``dag.test()`` for two consecutive days: ingest →
   gates → evaluate → gates → syncs; day two sends only the changes;
4. prints segment sizes, adds and removes per destination, gate results and where the
   Data Docs are; then stops everything it started.

Airflow state (SQLite metadata DB), the warehouse and the sandbox's state live under
``.demo/`` (``--workdir``); nothing outside it is touched.
"""

from __future__ import annotations

from airflow_segprovider.example import EXAMPLE_PROJECT
import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROJECT = EXAMPLE_PROJECT
DAYS = (dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc), dt.datetime(2026, 11, 24, tzinfo=dt.timezone.utc))


def _configure_airflow(workdir: Path) -> None:
    """Environment for an isolated Airflow: must be set before Airflow is imported."""
    home = workdir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "SEGPROVIDER_DOCS_DIR": str(workdir / "data_docs"),
    })
    if not (home / "airflow.db").exists():
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def sandbox_connections(warehouse: Path, sandbox_url: str, alerts_url: str,
                        retry: dict | None = None) -> dict[str, dict]:
    """The Airflow connections ``segments_centralized`` uses, pointed at a DuckDB file and the sandbox."""
    from segprovider_sandbox import (
        DEFAULT_HUBSPOT_TOKEN,
        DEFAULT_MAILCHIMP_API_KEY,
        DEFAULT_META_ACCESS_TOKEN,
    )

    retry = retry if retry is not None else {"backoff_base": 0.2, "backoff_max": 2.0}
    return {
        "segprovider_warehouse": {"conn_type": "duckdb", "host": str(warehouse)},
        "segprovider_mailchimp": {"conn_type": "segprovider_mailchimp", "host": f"{sandbox_url}/3.0",
                                  "password": DEFAULT_MAILCHIMP_API_KEY, "extra": retry},
        "segprovider_hubspot": {"conn_type": "segprovider_hubspot", "host": sandbox_url,
                                "password": DEFAULT_HUBSPOT_TOKEN, "extra": retry},
        "segprovider_meta": {"conn_type": "segprovider_meta", "host": sandbox_url,
                             "password": DEFAULT_META_ACCESS_TOKEN, "extra": retry},
        "segprovider_alerts": {"conn_type": "http", "host": alerts_url},
    }


def connection_variables(connections: dict[str, dict]) -> dict[str, str]:
    """Connections as Airflow's ``AIRFLOW_CONN_<ID>`` environment variables (JSON form)."""
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(fields) for conn_id, fields in connections.items()}


def _prepare_data(workdir: Path, customers: int) -> None:
    from airflow_segprovider.example.generate import generate
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.example.landing import write_landing_files

    scratch = workdir / "upstream.duckdb"
    scratch.unlink(missing_ok=True)
    upstream = DuckDBWarehouse(scratch)
    counts = generate(upstream, customers)
    write_landing_files(upstream, PROJECT / "landing")
    upstream.close()
    scratch.unlink(missing_ok=True)
    print(f"  upstream export: {counts.customers:,} customers, {counts.events:,} events, {counts.orders:,} orders, "
          f"{counts.consents:,} consent answers -> {PROJECT / 'landing'}")


def summary(warehouse_path: Path, docs_dir: Path, run_days: dict[str, str] | None = None) -> str:
    """What a person wants to read after the runs."""
    import duckdb

    con = duckdb.connect(str(warehouse_path), read_only=True)
    lines = ["", "Segments (members at each as_of, with the change since the previous day):"]
    rows = con.execute("SELECT segment, as_of, members, added, removed FROM segprovider_snapshots "
                       "ORDER BY segment, as_of").fetchall()
    by_segment: dict[str, list[tuple]] = {}
    for segment, as_of, members, added, removed in rows:
        by_segment.setdefault(segment, []).append((as_of, members, added, removed))
    for segment, snapshots in by_segment.items():
        text = "; ".join(f"{a:%m-%d}: {m:,} (+{ad:,}/-{r:,})" for a, m, ad, r in snapshots)
        lines.append(f"  {segment:<15} {text}")
    lines += ["", "Syncs (per run: added / changed / removed / rejected, status):"]
    for sync_id, as_of, status, add, change, remove, failed, suppressed, duration in con.execute(
            "SELECT sync_id, as_of, status, succeeded_add, succeeded_change, succeeded_remove, "
            "failed_add + failed_change + failed_remove, suppressed, duration_s FROM segprovider_sync_runs "
            "ORDER BY as_of, sync_id").fetchall():
        lines.append(f"  {as_of:%m-%d} {sync_id:<42} +{add:,} ~{change:,} -{remove:,} rejected {failed:,} "
                     f"(suppressed by consent {suppressed:,}) {status} in {duration:.1f}s")
    held = con.execute("SELECT sync_id, COUNT(*) FILTER (WHERE in_destination) FROM segprovider_sync_state "
                       "GROUP BY 1 ORDER BY 1").fetchall()
    lines += ["", "Destinations now hold:"] + [f"  {sync_id:<42} {count:,}" for sync_id, count in held]
    con.close()
    lines += ["", "Gates (each run's results and Data Docs are kept under the docs folder):"]
    for path in sorted(docs_dir.glob("*/*/*/gate_result.json"), key=lambda p: (p.stat().st_mtime, str(p))):
        result = json.loads(path.read_text())
        failed = result.get("failed") or []
        verdict = "passed" if result.get("success") else f"FAILED ({len(failed)} expectations)"
        run = (run_days or {}).get(path.parent.parent.name, path.parent.parent.name[:36])
        lines.append(f"  {run:<12} {path.parent.name:<26} {verdict}")
    indexes = sorted(docs_dir.glob("**/index.html")) if docs_dir.exists() else []
    lines += ["", f"Data Docs: {len(indexes)} reports under {docs_dir} (open any index.html in a browser)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_segprovider.cli.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=str(REPO / ".demo"))
    parser.add_argument("--customers", type=int, default=50_000)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    warehouse = workdir / "warehouse.duckdb"
    for stale in (warehouse, workdir / "sandbox.db"):
        stale.unlink(missing_ok=True)
    print("1/4 setting up Airflow (SQLite metadata DB, LocalExecutor semantics via dag.test())")
    _configure_airflow(workdir)
    print("2/4 generating the example data and landing it as Parquet files")
    _prepare_data(workdir, args.customers)

    from segprovider_sandbox import serve

    print("3/4 starting the destination sandbox on loopback")
    sandbox = serve(db_path=workdir / "sandbox.db")
    try:
        fixtures = sandbox.state.seed_demo_fixtures()
        sandbox.state.seed_meta_audience("23850000000000002", fixtures.meta_ad_account_id, "high_intent")
        os.environ.update(connection_variables(
            sandbox_connections(warehouse, sandbox.url, f"{sandbox.url}/webhook/alerts")))
        print(f"  sandbox at {sandbox.url}")
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(REPO / "dags" / "segments_centralized.py"))
        if bag.import_errors:
            print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
            return 1
        dag = bag.dags["segments_centralized"]
        print("4/4 running segments_centralized for two consecutive days")
        run_days: dict[str, str] = {}
        for day in DAYS:
            t0 = time.perf_counter()
            run = dag.test(logical_date=day)
            run_days[re.sub(r"[^A-Za-z0-9_.-]+", "_", str(getattr(run, "run_id", "")))] = f"as_of {day:%m-%d}"
            state = str(getattr(run, "state", "?"))
            print(f"  {day:%Y-%m-%d}: {state} in {time.perf_counter() - t0:.1f}s")
            if "success" not in state:
                print("  the run did not succeed; see the task logs above", file=sys.stderr)
                return 1
        print(summary(warehouse, workdir / "data_docs", run_days))
        requests_by_vendor = {v: len(sandbox.state.requests(v)) for v in ("mailchimp", "hubspot", "meta")}
        print(f"\nSandbox received: {requests_by_vendor} requests")
    finally:
        sandbox.stop()
    print(f"\nDone in {time.perf_counter() - started:.0f}s; everything started here is stopped. "
          f"State kept in {workdir}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

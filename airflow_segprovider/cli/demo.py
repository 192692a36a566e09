"""``segprovider demo``: the main job on the embedded default, the centralized DAG end to end on one machine.

``segprovider demo [--workdir DIR]`` (what ``make demo`` runs):

1. copies the example project (shipped in the package) into the workdir, generates the example
   dataset (seeded) and writes it as Parquet landing files there, the way an upstream export
   would deliver it;
2. starts the destination sandbox (Mailchimp, HubSpot, Meta) on loopback, in a process of its own,
   with credentials made for this run;
3. runs ``segments_centralized`` with ``dag.test()`` for two consecutive days: ingest →
   gates → evaluate → gates → syncs; day two sends only the changes;
4. prints segment sizes, adds and removes per destination, gate results and where the
   Data Docs are; then stops everything it started.

Everything it writes (the project copy and its landing files, the DAG file, Airflow's SQLite metadata
DB, the warehouse, the sandbox's state, the Data Docs) stays under the workdir (default ``.demo``).
It works the same from a source checkout and from an installed wheel.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_segprovider.cli.sandbox import sandbox_process
from airflow_segprovider.core.errors import TerminalError
from airflow_segprovider.core.state.sync import RUNS as SYNC_RUNS
from airflow_segprovider.core.state.sync import STATE as SYNC_STATE
from airflow_segprovider.example import EXAMPLE_PROJECT

if TYPE_CHECKING:
    from airflow_segprovider.cli.common import AddCommand

DAYS = (dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc), dt.datetime(2026, 11, 24, tzinfo=dt.timezone.utc))
DAG_ID = "segments_centralized"
#: The DAG file the demo writes: the repository's ``dags/segments_centralized.py`` built from the workdir's copy.
DAG_SOURCE = ("from pathlib import Path\n\n"
              "from airflow_segprovider.factory.centralized import build_centralized_dag\n\n"
              "dag = build_centralized_dag(Path(__file__).resolve().parent.parent / 'project', "
              f"dag_id={DAG_ID!r})\n")


def _configure_airflow(workdir: Path) -> None:
    """Environment for an isolated Airflow: must be set before Airflow is imported."""
    home = workdir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(workdir / "dags"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "SEGPROVIDER_DOCS_DIR": str(workdir / "data_docs"),
    })
    if not (home / "airflow.db").exists():
        migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
        if migrate.returncode != 0:
            raise TerminalError(f"'airflow db migrate' failed in {home}:\n{migrate.stderr[-2000:]}")


@dataclass(frozen=True)
class SandboxCredentials:
    """The credentials a sandbox accepts, and the Airflow connections carry.

    :param webhook_secret: the secret the sandbox's webhook receiver checks signatures with.
    """

    mailchimp_api_key: str
    hubspot_token: str
    meta_access_token: str
    webhook_secret: str

    @classmethod
    def fresh(cls) -> SandboxCredentials:
        """New random credentials, so a demo's sandbox accepts only the connections it made itself."""
        return cls(mailchimp_api_key=f"demo-{secrets.token_hex(16)}-us1", hubspot_token=f"pat-na1-{secrets.token_hex(16)}",
                   meta_access_token=secrets.token_hex(24), webhook_secret=secrets.token_hex(16))

    def sandbox_config(self) -> dict[str, Any]:
        """The sandbox's JSON config (``--config``) that makes it accept exactly these credentials."""
        return {"credentials": {"mailchimp_api_keys": [self.mailchimp_api_key], "hubspot_tokens": [self.hubspot_token],
                                "meta_access_tokens": [self.meta_access_token], "webhook_secret": self.webhook_secret}}


def sandbox_connections(warehouse: Path, sandbox_url: str, alerts_url: str, credentials: SandboxCredentials,
                        retry: dict | None = None) -> dict[str, dict]:
    """The Airflow connections ``segments_centralized`` uses, pointed at a DuckDB file and the sandbox."""
    retry = retry if retry is not None else {"backoff_base": 0.2, "backoff_max": 2.0}
    return {
        "segprovider_warehouse": {"conn_type": "duckdb", "host": str(warehouse)},
        "segprovider_mailchimp": {"conn_type": "segprovider_mailchimp", "host": f"{sandbox_url}/3.0",
                                  "password": credentials.mailchimp_api_key, "extra": retry},
        "segprovider_hubspot": {"conn_type": "segprovider_hubspot", "host": sandbox_url,
                                "password": credentials.hubspot_token, "extra": retry},
        "segprovider_meta": {"conn_type": "segprovider_meta", "host": sandbox_url,
                             "password": credentials.meta_access_token, "extra": retry},
        # signed as the sandbox's webhook receiver (and any receiver checking the signature) requires
        "segprovider_alerts": {"conn_type": "http", "host": alerts_url,
                               "extra": {"signing_secret": credentials.webhook_secret}},
    }


def connection_variables(connections: dict[str, dict]) -> dict[str, str]:
    """Connections as Airflow's ``AIRFLOW_CONN_<ID>`` environment variables (JSON form)."""
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(fields) for conn_id, fields in connections.items()}


def _prepare_project(workdir: Path) -> Path:
    """A fresh copy of the example project in the workdir, and the DAG file that builds from it."""
    project = workdir / "project"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(EXAMPLE_PROJECT, project, ignore=shutil.ignore_patterns("landing", "__pycache__"))
    dags = workdir / "dags"
    dags.mkdir(parents=True, exist_ok=True)
    (dags / f"{DAG_ID}.py").write_text(DAG_SOURCE)
    return project


def _prepare_data(workdir: Path, project: Path, customers: int) -> None:
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.example.generate import generate
    from airflow_segprovider.example.landing import write_landing_files

    scratch = workdir / "upstream.duckdb"
    scratch.unlink(missing_ok=True)
    upstream = DuckDBWarehouse(scratch)
    counts = generate(upstream, customers)
    write_landing_files(upstream, project / "landing")
    upstream.close()
    scratch.unlink(missing_ok=True)
    print(f"  upstream export: {counts.customers:,} customers, {counts.events:,} events, {counts.orders:,} orders, "
          f"{counts.consents:,} consent answers -> {project / 'landing'}")


def summary(warehouse_path: Path, docs_dir: Path, run_days: dict[str, str] | None = None) -> str:
    """What a person wants to read after the runs."""
    import duckdb

    from airflow_segprovider.core.state.membership import SNAPSHOTS

    con = duckdb.connect(str(warehouse_path), read_only=True)
    lines = ["", "Segments (members at each as_of, with the change since the previous day):"]
    rows = con.execute(f"SELECT segment, as_of, members, added, removed FROM {SNAPSHOTS} "
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
            f"failed_add + failed_change + failed_remove, suppressed, duration_s FROM {SYNC_RUNS} "
            "ORDER BY as_of, sync_id").fetchall():
        lines.append(f"  {as_of:%m-%d} {sync_id:<42} +{add:,} ~{change:,} -{remove:,} rejected {failed:,} "
                     f"(suppressed by consent {suppressed:,}) {status} in {duration:.1f}s")
    held = con.execute(f"SELECT sync_id, COUNT(*) FILTER (WHERE in_destination) FROM {SYNC_STATE} "
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


def _sandbox_requests(db: Path) -> dict[str, int]:
    """Requests per vendor in the sandbox's log (its SQLite state file, read after it stopped)."""
    with contextlib.closing(sqlite3.connect(db)) as con:
        return dict(con.execute("SELECT vendor, COUNT(*) FROM requests WHERE vendor IN ('mailchimp', 'hubspot', "
                                "'meta') GROUP BY vendor ORDER BY vendor").fetchall())


def run_demo(workdir: Path, customers: int = 50_000) -> int:
    """Run the demo in ``workdir`` (created if missing); returns the exit status."""
    started = time.perf_counter()
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    warehouse = workdir / "warehouse.duckdb"
    sandbox_db = workdir / "sandbox.db"
    for stale in (warehouse, sandbox_db):
        stale.unlink(missing_ok=True)
    print("1/4 setting up Airflow (SQLite metadata DB, LocalExecutor semantics via dag.test())")
    _configure_airflow(workdir)
    print("2/4 generating the example data and landing it as Parquet files")
    project = _prepare_project(workdir)
    _prepare_data(workdir, project, customers)

    print("3/4 starting the destination sandbox on loopback")
    credentials = SandboxCredentials.fresh()
    config = workdir / "sandbox.json"
    config.write_text(json.dumps(credentials.sandbox_config(), indent=2))
    with sandbox_process(sandbox_db, config=config, seed=True) as sandbox:
        os.environ.update(connection_variables(
            sandbox_connections(warehouse, sandbox.url, f"{sandbox.url}/webhook/alerts", credentials)))
        print(f"  sandbox at {sandbox.url}")
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(workdir / "dags" / f"{DAG_ID}.py"))
        if bag.import_errors:
            print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
            return 1
        dag = bag.dags[DAG_ID]
        print(f"4/4 running {DAG_ID} for two consecutive days")
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
    print(f"\nSandbox received: {_sandbox_requests(sandbox_db)} requests")
    print(f"\nDone in {time.perf_counter() - started:.0f}s; everything started here is stopped. "
          f"State kept in {workdir}.")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(Path(args.workdir), args.customers)


def register(command: AddCommand) -> None:
    """Add this group's command to the ``segprovider`` parser."""
    p = command("demo", cmd_demo, "Run segments_centralized end to end on the embedded default (DuckDB, the "
                "destination sandbox, dag.test()) for two days, and print what happened.")
    p.add_argument("--workdir", default=".demo", help="folder for everything the demo writes (default: .demo)")
    p.add_argument("--customers", type=int, default=50_000, help="customers in the example data (50,000)")

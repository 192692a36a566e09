"""Benchmark: sync 1,000,000 adds to the destination sandbox under an API rate limit.

Run: ``uv run python benchmarks/sync_throughput.py`` (``--records``, ``--rate``, ``--batch``).
The sandbox runs in its own process (as ``segprovider sandbox`` does), limiting the
Meta Custom Audiences API to ``R`` requests per second; one add call carries up to
``B`` identifiers, so the API allows at most ``R × B`` records/s. The sync engine
streams the snapshot out of DuckDB in batches, sends them, and commits sync state
per acknowledged batch. A naive client then sends one record per request to the
same sandbox for ``--naive-seconds``. Prints one JSON object on its last line with
``records_per_s``, ``limit_records_per_s``, ``fraction_of_limit``,
``naive_records_per_s`` and ``peak_rss_mb`` (of this process: warehouse, engine
and connector; the sandbox's own memory is reported separately).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from sandbox_process import sandbox_process  # noqa: E402

from airflow_segprovider.core.evaluate.engine import evaluate  # noqa: E402
from airflow_segprovider.core.project.loader import load_project  # noqa: E402
from airflow_segprovider.core.sync import SyncEngine, SyncOptions  # noqa: E402
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse  # noqa: E402
from airflow_segprovider.destinations.connection import build_client  # noqa: E402
from segprovider_sandbox import DEFAULT_META_ACCESS_TOKEN, SandboxState  # noqa: E402

AUDIENCE = "23850000000000009"
AS_OF = dt.datetime(2026, 11, 24)


def sandbox_options(workdir: Path, rate: int) -> list[str]:
    """Seed the benchmark audience and write a config holding the API's rate limit."""
    SandboxState(workdir / "sandbox.db").seed_meta_audience(AUDIENCE, "1234567890", "benchmark")
    config = workdir / "sandbox.json"
    config.write_text(json.dumps({"faults": {"meta": {"rate_limit": {"max_requests": rate, "window_seconds": 1.0}}}}))
    return ["--config", str(config)]


def naive(url: str, seconds: float, start: int) -> float:
    """One record per request, as a script calling the API in a loop would; 429s are waited out."""
    session = requests.Session()
    sent, deadline, i = 0, time.perf_counter() + seconds, start
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        digest = hashlib.sha256(f"naive{i}@example.com".encode()).hexdigest()
        response = session.post(f"{url}/v21.0/{AUDIENCE}/users",
                                data={"access_token": DEFAULT_META_ACCESS_TOKEN,
                                      "payload": json.dumps({"schema": "EMAIL_SHA256", "data": [digest]})})
        if response.status_code == 429:
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        response.raise_for_status()
        sent, i = sent + 1, i + 1
    return sent / (time.perf_counter() - started)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=4, help="API limit R, requests per second (4)")
    parser.add_argument("--batch", type=int, default=5000, help="records per request B (5000; Meta allows 10,000)")
    parser.add_argument("--naive-seconds", type=float, default=10.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="segprovider-sync-bench-"))

    warehouse = DuckDBWarehouse(workdir / "warehouse.duckdb")
    warehouse.execute(f"CREATE TABLE customers AS SELECT range AS customer_id, 'user' || range || '@example.com' "
                      f"AS email FROM range({int(args.records)})")
    warehouse.execute("CREATE TABLE consents (customer_id BIGINT, channel VARCHAR, opted_in BOOLEAN, "
                      "updated_at TIMESTAMP)")
    project = load_project(ROOT / "sync_project")
    evaluate(project, warehouse, AS_OF, run_id="bench")
    with sandbox_process(workdir / "sandbox.db", *sandbox_options(workdir, args.rate)) as (sandbox, url):
        connection = {"host": url, "password": DEFAULT_META_ACCESS_TOKEN,
                      # pace just under the vendor's limit: arrival jitter would otherwise put an extra
                      # request into some rolling window and cost a Retry-After pause
                      "extra": {"requests_per_second": args.rate * 0.97, "burst": 1, "max_concurrency": 2}}
        sync = project.syncs[0]
        client = build_client(project, sync, connection)
        engine = SyncEngine(project, warehouse)
        started = time.perf_counter()
        record = engine.run(sync, client, AS_OF, options=SyncOptions(batch_size=args.batch, concurrency=2,
                                                                    progress_every_s=15))
        elapsed = time.perf_counter() - started
        held = client.member_count()  # through the connector: it waits out the rate limit
        client.close()
        naive_rate = naive(url, args.naive_seconds, args.records)
        sandbox_rss = rss_mb(sandbox.pid)
    limit = args.rate * args.batch
    rate = record.succeeded["add"] / elapsed
    print(f"synced {record.succeeded['add']:,} adds in {elapsed:.1f}s; audience holds ~{held:,}", file=sys.stderr)
    print(json.dumps({
        "records": record.succeeded["add"],
        "rate_limit_requests_per_s": args.rate,
        "batch_size": args.batch,
        "seconds": round(elapsed, 2),
        "records_per_s": round(rate, 1),
        "limit_records_per_s": limit,
        "fraction_of_limit": round(rate / limit, 3),
        "naive_records_per_s": round(naive_rate, 2),
        "speedup_vs_naive": round(rate / naive_rate, 1) if naive_rate else None,
        "audience_size_reported": held,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "sandbox_peak_rss_mb": round(sandbox_rss, 1),
    }))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

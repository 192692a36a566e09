"""Benchmark: sync 200,000 adds to each vendor's sandbox, held to that vendor's documented limits.

Run: ``uv run python benchmarks/vendor_throughput.py`` (``--records N`` for a quick run,
``--vendors hubspot,meta`` for some of them). Each vendor gets its own sandbox process
(:mod:`sandbox_process`), a warehouse of ``N`` customers in one segment, and the sync engine
driving the project's own connector, as :mod:`sync_throughput` does for Meta alone.

The limits, and the ceiling each allows (records per second, for the requests the connector
must make per batch):

* **HubSpot Professional/Enterprise**: 190 requests per 10 s per private app
  (https://developers.hubspot.com/changelog/increasing-our-api-limits; 100 on Free/Starter,
  250 with the API limit increase pack), 100 inputs per batch call
  (https://developers.hubspot.com/docs/api/crm/contacts). Each batch of 100 is two calls,
  the contact batch upsert and the list membership call, so the ceiling is
  19 / 2 × 100 = **950 records/s**. Sandbox: its rolling 190 / 10 s window, 429s without
  ``Retry-After`` as HubSpot sends them. The connector is paced by the connection's ``tier``
  (``professional``: 99 % of 190 / 10 s, evenly).
* **Mailchimp**: at most 10 simultaneous connections per API key
  (https://mailchimp.com/developer/marketing/docs/fundamentals/#api-limits) and 500 members per
  batch subscribe (https://mailchimp.com/developer/marketing/api/lists/batch-subscribe-or-unsubscribe/).
  Mailchimp publishes no request rate: the bound is concurrency × service time. We state a fixed
  service time of **0.5 s per request** (``--mailchimp-service-s``; a batch of 500 members is
  commonly answered in 0.3-1 s). A static-segment batch is two calls (the batch subscribe and
  the segment's ``members_to_add``), so the ceiling is 10 / 0.5 / 2 × 500 = **5,000 records/s**.
  Sandbox: ``mailchimp_max_connections`` 10 (an 11th concurrent call is a 429) and every call
  held 0.5 s inside its connection slot (the fault injector's ``slow_rate`` 1.0).
* **Meta**: Business Use Case limit ``custom_audience``, per ad account per hour: at least
  190,000 on the Standard tier (5,000 on Development) + 40 × active custom audiences, at most
  700,000 (https://developers.facebook.com/docs/marketing-api/overview/rate-limiting), so
  190,040 calls an hour for one ad account with one audience; 10,000 users per call
  (https://developers.facebook.com/docs/marketing-api/reference/custom-audience/users). One call
  per batch: the ceiling is 190,040 / 3600 × 10,000 ≈ **527,900 records/s**. Sandbox: a rolling
  window of 190,040 requests per 3,600 s.

Prints one JSON object on its last line: per vendor ``<vendor>_records_per_s``,
``<vendor>_ceiling_records_per_s``, ``<vendor>_fraction_of_limit``, ``<vendor>_requests``,
``<vendor>_requests_per_batch`` and ``<vendor>_429_share`` (429 answers over all requests the
sandbox logged during the sync), then ``share_429`` over every vendor and ``peak_rss_mb`` (this
process: warehouse, engine and connectors) and ``sandbox_peak_rss_mb`` (the largest sandbox).
Goal: each fraction ≥ 0.9, 429s ≤ 1 % of requests, peak < 1 GB. The sync runs with the engine's default
options, as in Airflow: batches in flight are the connector's own (Mailchimp 20, twice its connections,
since a batch's thread holds no connection between its two calls; the others 4).

Meta's ceiling cannot be reached by any client that reads a warehouse and hashes: 0.9 of it is 200,000
records in 0.42 s, while SHA-256 and JSON of 200,000 emails alone take about 0.4 s in CPython, the
sandbox's ingest of 20 calls of 10,000 rows about 7 s, and the engine's per-batch state commits (DuckDB)
several seconds more (measured with ``--vendors meta``; see the issue's report).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from sandbox_process import sandbox_process
from sync_throughput import rss_mb

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.sync import SyncEngine, SyncOptions
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.destinations.connection import build_client
from segprovider_sandbox import (
    DEFAULT_HUBSPOT_TOKEN,
    DEFAULT_MAILCHIMP_API_KEY,
    DEFAULT_META_ACCESS_TOKEN,
    DemoFixtures,
    SandboxState,
)

AS_OF = dt.datetime(2026, 11, 24)
META_HOURLY_CALLS = 190_000 + 40 * 1  # Standard tier, one ad account, one active custom audience


@dataclass(frozen=True)
class VendorRun:
    """How one vendor is limited, configured and driven.

    :param ceiling: records per second the documented limits allow.
    :param requests_per_batch: calls the connector must make for one batch of adds.
    """

    vendor: str
    batch: int
    requests_per_batch: int
    ceiling: float
    destination: dict[str, Any]
    target: dict[str, Any]
    sandbox: dict[str, Any]
    connection_extra: dict[str, Any]
    password: str
    channel: str = "email"
    notes: list[str] = field(default_factory=list)


def vendor_runs(mailchimp_service_s: float) -> dict[str, VendorRun]:
    fixtures = DemoFixtures()
    return {
        "hubspot": VendorRun(
            "hubspot", batch=100, requests_per_batch=2, ceiling=190 / 10 / 2 * 100,
            destination={}, target={"list_id": str(fixtures.hubspot_list_id)},
            sandbox={"faults": {"hubspot": {"rate_limit": {"max_requests": 190, "window_seconds": 10.0}}}},
            # the connection's tier paces the connector (18.7 requests/s, no burst: see tier_pacing)
            connection_extra={"tier": "professional", "max_concurrency": 4},
            password=DEFAULT_HUBSPOT_TOKEN),
        "mailchimp": VendorRun(
            "mailchimp", batch=500, requests_per_batch=2, ceiling=10 / mailchimp_service_s / 2 * 500,
            destination={"list_id": fixtures.mailchimp_list_id, "membership": "static_segment"},
            target={"segment_name": fixtures.mailchimp_segment_name},
            sandbox={"mailchimp_max_connections": 10,
                     "faults": {"mailchimp": {"slow_rate": 1.0, "slow_seconds": mailchimp_service_s}}},
            connection_extra={"max_concurrency": 10},
            password=DEFAULT_MAILCHIMP_API_KEY),
        "meta": VendorRun(
            "meta", batch=10_000, requests_per_batch=1, ceiling=META_HOURLY_CALLS / 3600 * 10_000,
            destination={}, target={"audience_id": str(fixtures.meta_audience_id)},
            sandbox={"faults": {"meta": {"rate_limit": {"max_requests": META_HOURLY_CALLS,
                                                         "window_seconds": 3600.0}}}},
            connection_extra={"max_concurrency": 4},
            password=DEFAULT_META_ACCESS_TOKEN, channel="ads"),
    }


def write_project(folder: Path, run: VendorRun) -> Path:
    """A one-segment project syncing every customer to the vendor."""
    folder.mkdir(parents=True, exist_ok=True)
    project = {
        "project": {"name": f"vendor_bench_{run.vendor}", "version": 1},
        "model": {
            "customer": {"table": "customers", "key": "customer_id", "attributes": {"email": {"type": "string"}}},
            "consent": {"table": "consents", "customer_key": "customer_id", "channel_column": "channel",
                        "opted_in_column": "opted_in", "updated_at_column": "updated_at",
                        "channels": {run.channel: {"require_opt_in": False}}},
        },
        "segments": [{"name": "everyone", "rule": {"attribute": "email", "op": "is_not_null"}}],
        "destinations": [{"name": f"{run.vendor}_bench", "kind": run.vendor, "connection_id": f"bench_{run.vendor}",
                          "channel": run.channel, "identity": "email",
                          **({"config": run.destination} if run.destination else {})}],
        "syncs": [{"segment": "everyone", "destination": f"{run.vendor}_bench", "mode": "mirror",
                   "target": run.target}],
    }
    (folder / "project.yml").write_text(json.dumps(project, indent=1))  # JSON is YAML
    return folder


def request_counts(db: Path, vendor: str, since: float) -> tuple[int, int]:
    """``(requests, 429 answers)`` the sandbox logged for ``vendor`` from ``since`` on."""
    with sqlite3.connect(db) as connection:
        total, limited = connection.execute(
            "SELECT COUNT(*), COALESCE(SUM(status = 429), 0) FROM requests WHERE vendor = ? AND at >= ?",
            (vendor, since)).fetchone()
    return int(total), int(limited)


def bench(run: VendorRun, records: int, workdir: Path) -> dict[str, Any]:
    folder = workdir / run.vendor
    project = load_project(write_project(folder / "project", run))
    warehouse = DuckDBWarehouse(folder / "warehouse.duckdb")
    warehouse.execute(f"CREATE TABLE customers AS SELECT range AS customer_id, 'user' || range || '@example.com' "
                      f"AS email FROM range({int(records)})")
    warehouse.execute("CREATE TABLE consents (customer_id BIGINT, channel VARCHAR, opted_in BOOLEAN, "
                      "updated_at TIMESTAMP)")
    evaluate(project, warehouse, AS_OF, run_id="bench")
    db = folder / "sandbox.db"
    SandboxState(db).seed_demo_fixtures()
    config = folder / "sandbox.json"
    config.write_text(json.dumps(run.sandbox))
    with sandbox_process(db, "--config", str(config)) as (sandbox, url):
        host = f"{url}/3.0" if run.vendor == "mailchimp" else url  # Mailchimp's API lives under /3.0
        connection = {"host": host, "password": run.password, "extra": run.connection_extra}
        sync = project.syncs[0]
        client = build_client(project, sync, connection)
        engine = SyncEngine(project, warehouse)
        since = time.time()
        started = time.perf_counter()
        # batches in flight: the connector's own default, as in Airflow (Mailchimp 20, the others 4)
        record = engine.run(sync, client, AS_OF, options=SyncOptions(batch_size=run.batch, progress_every_s=30))
        elapsed = time.perf_counter() - started
        client.close()
        sandbox_rss = rss_mb(sandbox.pid)
    warehouse.close()
    requests_sent, limited = request_counts(db, run.vendor, since)
    added = record.succeeded["add"]
    rate = added / elapsed
    batches = -(-added // run.batch)
    print(f"{run.vendor}: {added:,} adds in {elapsed:.1f}s, {requests_sent} requests ({limited} answered 429)",
          file=sys.stderr)
    return {
        f"{run.vendor}_records": added,
        f"{run.vendor}_seconds": round(elapsed, 2),
        f"{run.vendor}_records_per_s": round(rate, 1),
        f"{run.vendor}_ceiling_records_per_s": round(run.ceiling, 1),
        f"{run.vendor}_fraction_of_limit": round(rate / run.ceiling, 3),
        f"{run.vendor}_requests": requests_sent,
        f"{run.vendor}_requests_per_batch": round(requests_sent / batches, 2) if batches else None,
        f"{run.vendor}_429_share": round(limited / requests_sent, 4) if requests_sent else 0.0,
        f"_{run.vendor}_429s": limited,
        f"_{run.vendor}_sandbox_rss_mb": round(sandbox_rss, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200_000, help="adds per vendor (200,000)")
    parser.add_argument("--vendors", default="hubspot,mailchimp,meta")
    parser.add_argument("--mailchimp-service-s", type=float, default=0.5,
                        help="the fixed time Mailchimp's sandbox takes to answer each request (0.5 s)")
    args = parser.parse_args()
    runs = vendor_runs(args.mailchimp_service_s)
    workdir = Path(tempfile.mkdtemp(prefix="segprovider-vendor-bench-"))
    results: dict[str, Any] = {"records_per_vendor": args.records, "mailchimp_service_s": args.mailchimp_service_s}
    for vendor in args.vendors.split(","):
        results |= bench(runs[vendor.strip()], args.records, workdir)
    requests_sent = sum(v for k, v in results.items() if k.endswith("_requests"))
    limited = sum(results.pop(k) for k in [k for k in results if k.endswith("_429s")])
    sandbox_rss = max(results.pop(k) for k in [k for k in results if k.endswith("_sandbox_rss_mb")])
    results["share_429"] = round(limited / requests_sent, 4) if requests_sent else 0.0
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    results["sandbox_peak_rss_mb"] = sandbox_rss
    print(json.dumps(results))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

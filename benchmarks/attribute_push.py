"""Benchmark: push the attributes of 1,000,000 hub profiles of which 2% changed; only the changed ones go out.

Run: ``uv run python benchmarks/attribute_push.py`` (``--profiles``, ``--changed-fraction``).

1. A DuckDB warehouse gets ``--profiles`` customers; the hub is built (``build_s``).
2. A previous full push is recorded: every profile's row hash for the destination is in the
   push state, as if the spoke had acknowledged them all (the state a daily push leaves).
3. The source changes ``lifetime_value`` of ``--changed-fraction`` of the customers; the hub is
   rebuilt (``rebuild_s``, which also finds the changed profiles: ``changed``).
4. ``diff_s``: the push's changed-row detection, the row hash of every profile against the
   acknowledged hashes (the add and change queries of the push's plan).
5. The push runs for real against the Mailchimp sandbox over loopback HTTP, in its own process
   (batch subscribe, 500 members per call, typed merge fields): ``sent`` is what the sandbox's
   request log received, ``push_s`` the whole push (plan, send, per-batch state commits).

Prints one JSON object on its last line with ``profiles``, ``changed``, ``sent``, ``diff_s`` and
``peak_rss_mb`` (this process: warehouse, engine, connector).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

from sandbox_process import sandbox_process  # noqa: E402

from airflow_segprovider.core.hybrid.build import HubBuilder  # noqa: E402
from airflow_segprovider.core.hybrid.push import AttributePushEngine, push_sync  # noqa: E402
from airflow_segprovider.core.project.loader import load_project  # noqa: E402
from airflow_segprovider.core.state.sync import STATE  # noqa: E402
from airflow_segprovider.core.sync import SyncOptions  # noqa: E402
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse  # noqa: E402
from airflow_segprovider.destinations.connection import build_client  # noqa: E402
from airflow_segprovider.destinations.spokes import PUSH_CONFIG, PushClient, field_types  # noqa: E402
from segprovider_sandbox import DEFAULT_MAILCHIMP_API_KEY, SandboxState  # noqa: E402

LIST_ID = "bench00001"
AS_OF = dt.datetime(2026, 11, 24)


def seed_sandbox(db: Path) -> None:
    state = SandboxState(db)
    state.seed_mailchimp_list(LIST_ID, "benchmark audience")
    state.seed_mailchimp_merge_field(LIST_ID, "COUNTRY", "Country", "text")
    state.seed_mailchimp_merge_field(LIST_ID, "LTV", "Lifetime value", "number")
    state.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--changed-fraction", type=float, default=0.02)
    args = parser.parse_args()
    project = load_project(ROOT / "hub_project")
    push = project.hub.push["mailchimp_bench"]
    every = round(1 / args.changed_fraction)

    with tempfile.TemporaryDirectory(prefix="segprovider-push-bench-") as tmp:
        workdir = Path(tmp)
        warehouse = DuckDBWarehouse(workdir / "warehouse.duckdb")
        warehouse.execute(
            f"CREATE TABLE customers AS SELECT i AS customer_id, 'user' || i || '@example.com' AS email, "
            f"'Name' || (i % 997) AS first_name, ['DE','FR','NL','IT','ES','US','GB'][1 + i % 7] AS country, "
            f"CAST(round((i * 7919) % 500000 / 100.0, 2) AS DOUBLE) AS lifetime_value FROM range(1, {args.profiles + 1}) t(i)")
        warehouse.execute("CREATE TABLE consents (customer_id BIGINT, channel VARCHAR, opted_in BOOLEAN, "
                          "updated_at TIMESTAMP)")
        started = time.perf_counter()
        HubBuilder(project, warehouse).build(AS_OF)
        build_s = time.perf_counter() - started

        seed_sandbox(workdir / "sandbox.db")
        with sandbox_process(workdir / "sandbox.db") as (_, url):
            connection = {"conn_type": "segprovider_mailchimp", "host": f"{url}/3.0",
                          "password": DEFAULT_MAILCHIMP_API_KEY}
            client = PushClient(build_client(project, push_sync(push), connection, PUSH_CONFIG["mailchimp"]))
            types = field_types(client.client)
            engine = AttributePushEngine(project, warehouse, "mailchimp_bench", types)
            # the state a previous full push leaves: every profile acknowledged with its row hash
            engine.ensure_tables()
            destination = engine.project.destinations["mailchimp_bench"]
            desired = engine._desired_sql(engine.sync, destination, AS_OF)
            warehouse.execute(
                f"INSERT INTO {STATE} SELECT '{push.sync_id}', customer_key, identity, row_hash, NULL, TRUE, "
                f"'segprovider', TIMESTAMP '2026-11-23', 'previous_push' FROM ({desired})")

            warehouse.execute(f"UPDATE customers SET lifetime_value = lifetime_value + 1 WHERE customer_id % {every} = 0")
            started = time.perf_counter()
            rebuild = HubBuilder(project, warehouse).build(AS_OF + dt.timedelta(days=1))
            rebuild_s = time.perf_counter() - started

            started = time.perf_counter()
            planned = engine.changed_count()
            diff_s = time.perf_counter() - started

            requests_before = len(SandboxState(workdir / "sandbox.db").requests("mailchimp"))
            started = time.perf_counter()
            record = engine.run_push(client, AS_OF + dt.timedelta(days=1), options=SyncOptions(concurrency=4))
            push_s = time.perf_counter() - started
            client.close()
            log = SandboxState(workdir / "sandbox.db").requests("mailchimp")[requests_before:]
            sent = sum(len(json.loads(r.body)["members"]) for r in log if r.method == "POST"
                       and r.path == f"/3.0/lists/{LIST_ID}")
        warehouse.close()

    result = {
        "profiles": args.profiles,
        "changed": rebuild.changed_profiles,
        "planned": planned["add"] + planned["change"],
        "sent": sent,
        "acknowledged": record.succeeded["add"] + record.succeeded["change"],
        "rejected": sum(record.failed.values()),
        "diff_s": round(diff_s, 3),
        "build_s": round(build_s, 3),
        "rebuild_s": round(rebuild_s, 3),
        "push_s": round(push_s, 3),
        "sink": "Mailchimp sandbox over loopback HTTP (separate process, SQLite state)",
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Fault injection: the sync converges to exactly the intended membership through vendor faults and kills.

The sandbox answers with random 429s (``Retry-After``), 5xx, responses slower than the client's
read timeout and dropped connections; a few members have invalid emails, one has none, and two opt
out after the snapshot was evaluated. ``segprovider sync`` runs as a subprocess that is SIGKILLed at
seeded random points and restarted (the next process recovers the DuckDB file from its WAL) until a
run exits 0. Then, with the faults off, one more run must change nothing. The intended membership is
computed here in Python from the warehouse's tables, not asked of the engine.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import requests

from airflow_segprovider.core.destination import TransientDestinationError
from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.sync import SyncEngine, SyncOptions
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.destinations.connection import build_client
from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.example.generate import generate
from support.faults import (
    VENDORS,
    FailAfterWrites,
    expected_membership,
    identity_tokens,
    last_request_id,
    run_once,
    run_with_random_kills,
    traces_of,
    write_requests,
)

pytestmark = pytest.mark.integration

# as in conftest.py (not imported from it: "conftest" names another module when other test folders run too)
PROJECT_DIR = EXAMPLE_PROJECT
DAY_1, DAY_2 = dt.datetime(2026, 11, 23), dt.datetime(2026, 11, 24)

BATCH_SIZE = 20  # a few hundred members: about ten batches per sync
KILL_SEEDS = {"mailchimp": 20261101, "hubspot": 20261102, "meta": 20261103}
# sandbox seeds whose first dozen requests already meet a 5xx, a slow answer and a dropped connection
FAULT_SEEDS = {"mailchimp": 14, "hubspot": 16, "meta": 13}
# a burst of batches meets a 429 (HubSpot paces itself on its quota headers, Meta sends the fewest requests)
RATE_LIMITS = {"mailchimp": 10, "hubspot": 6, "meta": 5}
FAULTS = {
    "error_rate": 0.1,
    "error_statuses": [500, 502, 503, 504],
    "slow_rate": 0.05,
    "slow_seconds": 1.5,  # beyond the read timeout below: the client gives up, the sandbox still serves it
    "drop_rate": 0.05,
}
NO_FAULTS = {"rate_limit": None, "error_rate": 0.0, "slow_rate": 0.0, "drop_rate": 0.0}
RETRIES = {"backoff_base": 0.02, "backoff_max": 0.2, "max_attempts": 4, "connect_timeout": 2.0, "read_timeout": 0.5,
           # HubSpot paces evenly to its tier (no burst), which alone never meets the 429 this test wants met:
           # a burst of requests leaves before the quota headers can slow it down (the others are not paced)
           "burst": 10}
INVALID_EMAILS = ("bad@@x", "no-at-sign.example.org", "two words@example.org")
REFUSALS_BEFORE_GIVING_UP = SyncOptions().max_attempts  # what the CLI runs with


@pytest.fixture(scope="module")
def template_warehouse(tmp_path_factory, project) -> Path:
    """The example project's data (3000 customers) evaluated at both days, built once per module."""
    path = tmp_path_factory.mktemp("template") / "warehouse.duckdb"
    warehouse = DuckDBWarehouse(path)
    generate(warehouse, 3000, seed=7)
    evaluate(project, warehouse, DAY_1, run_id="day_1")
    evaluate(project, warehouse, DAY_2, run_id="day_2")
    warehouse.close()  # checkpointed: one self-contained file to copy
    return path


@pytest.fixture
def warehouse_path(tmp_path, template_warehouse) -> Path:
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(template_warehouse, path)
    return path


@pytest.fixture(scope="session")
def subprocess_env(tmp_path_factory) -> dict[str, str]:
    """Environment of the sync subprocesses: bytecode cached in a temporary folder, warmed up once.

    Every restart re-imports duckdb, pyarrow and pandas; compiling them anew each time would triple a
    restart's cost where PYTHONDONTWRITEBYTECODE is set.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("AIRFLOW_CONN_")}
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path_factory.mktemp("pycache"))
    subprocess.run([sys.executable, "-c", "import airflow_segprovider.cli.main, airflow_segprovider.core.sync.engine, "
                    "airflow_segprovider.core.project.loader, airflow_segprovider.destinations.registry, duckdb, pandas"],
                   env=env, check=True, timeout=120)
    return env


def configure_faults(sandbox, vendor: str, settings: dict, seed: int | None = None) -> None:
    body: dict = {"faults": {vendor: settings}}
    if seed is not None:
        body["seed"] = seed
    answer = requests.post(f"{sandbox.url}/__sandbox/config", json=body, timeout=5)
    assert answer.status_code == 200, answer.text


def corrupt_identities(warehouse, expected, channel: str, rng: random.Random) -> dict[str, list[str]]:
    """Invalid emails for three members, none for one, and two opt-outs after the evaluation."""
    chosen = rng.sample(sorted(expected.intended), 6)
    picked = {"invalid": chosen[:3], "missing": chosen[3:4], "opted_out": chosen[4:]}
    for key, email in zip(picked["invalid"], INVALID_EMAILS):
        warehouse.execute(f"UPDATE customers SET email = '{email}' WHERE customer_id = {int(key)}")
    for key in picked["missing"]:
        warehouse.execute(f"UPDATE customers SET email = NULL WHERE customer_id = {int(key)}")
    for key in picked["opted_out"]:
        # the snapshot was evaluated at 00:00; the opt-out arrives at 09:00, before any sync ran
        warehouse.execute(f"INSERT INTO consents VALUES ({int(key)}, '{channel}', false, "
                          "TIMESTAMP '2026-11-24 09:00:00')")
    return picked


@pytest.mark.parametrize("vendor_name", list(VENDORS))
def test_random_kills_and_faults_converge_to_exactly_the_intended_membership(
        vendor_name, project, sandbox, warehouse_path, subprocess_env, tmp_path):
    vendor = VENDORS[vendor_name]
    channel = project.destinations[vendor.destination].channel
    rng = random.Random(KILL_SEEDS[vendor_name])

    warehouse = DuckDBWarehouse(warehouse_path)
    try:
        picked = corrupt_identities(warehouse, expected_membership(
            project, warehouse, vendor.segment, vendor.destination, DAY_2), channel, rng)
        expected = expected_membership(project, warehouse, vendor.segment, vendor.destination, DAY_2)
    finally:
        warehouse.close()  # the subprocesses are the only writers from here on (DuckDB has one)
    assert set(picked["invalid"]) <= set(expected.invalid_identity)
    assert set(picked["missing"]) <= expected.missing_identity
    assert set(picked["opted_out"]) <= set(expected.suppressed)
    intended = {vendor.identity(email) for email in expected.intended.values()}
    suppressed_emails = {e for e in expected.suppressed.values() if e} - set(expected.intended.values())
    suppressed_traces = set().union(*(traces_of(email) for email in suppressed_emails))

    env = {**subprocess_env, f"AIRFLOW_CONN_{vendor.connection_id.upper()}":
           json.dumps(vendor.connection(sandbox.url, RETRIES))}
    command = [sys.executable, "-m", "airflow_segprovider.cli.main", "sync", str(PROJECT_DIR), "--db",
               str(warehouse_path), "--as-of", DAY_2.date().isoformat(), "--sync", vendor.sync_id,
               "--batch-size", str(BATCH_SIZE)]
    configure_faults(sandbox, vendor_name, {**FAULTS, "rate_limit": {
        "max_requests": RATE_LIMITS[vendor_name], "window_seconds": 1.0}}, seed=FAULT_SEEDS[vendor_name])
    attempts = run_with_random_kills(command, env, sandbox=sandbox, vendor=vendor_name, rng=rng,
                                     log_dir=tmp_path)
    print("\n".join(str(attempt) for attempt in attempts))
    assert any(attempt.killed and attempt.writes for attempt in attempts), "no run was killed mid-send"
    faults_met = Counter(r.fault for r in sandbox.state.requests(vendor_name) if r.fault)
    print(f"faults met: {dict(faults_met)}")
    assert {"rate_limited", "error", "slow", "drop"} <= set(faults_met), f"faults met: {faults_met}"

    # faults off: one more run, which must find nothing to do
    configure_faults(sandbox, vendor_name, NO_FAULTS)
    before_final = last_request_id(sandbox)
    final = run_once(command, env, tmp_path / "final.log")
    assert final.returncode == 0, final.output
    assert write_requests(sandbox, vendor_name, before_final) == []

    assert vendor.held(sandbox) == intended
    warehouse = DuckDBWarehouse(warehouse_path)
    try:
        sid = f"sync_id = '{vendor.sync_id}'"
        last_run = warehouse.query_records(
            f"SELECT * FROM segprovider_sync_runs WHERE {sid} ORDER BY started_at DESC LIMIT 1")[0]
        assert (last_run["status"], last_run["planned_add"], last_run["planned_change"],
                last_run["planned_remove"]) == ("succeeded", 0, 0, 0)
        assert last_run["suppressed"] == len(expected.suppressed)
        assert sum(last_run[f"succeeded_{op}"] + last_run[f"failed_{op}"] for op in ("add", "change", "remove")) == 0
        state = dict(warehouse.query(f"SELECT customer_key, origin FROM segprovider_sync_state WHERE {sid} "
                                     "AND in_destination"))
        assert set(state) == set(expected.intended)
        # a run killed before committing what it added must not leave those members looking like someone
        # else's (a baseline): mirror mode would then never remove them
        assert set(state.values()) == {"segprovider"}
        rejected = {row["customer_key"]: row for row in warehouse.query_records(
            f"SELECT * FROM segprovider_rejected_records WHERE {sid}")}
    finally:
        warehouse.close()

    # every record the destination cannot take is listed, with its reason; nobody else is
    assert set(rejected) == set(expected.invalid_identity) | expected.missing_identity
    for key in expected.invalid_identity:
        row = rejected[key]
        assert row["operation"] == "add" and row["error_code"] and row["message"], row
        assert row["error_code"] != "missing_identity", row
        assert row["attempts"] == REFUSALS_BEFORE_GIVING_UP, row  # refused three times, then left alone
    for key in expected.missing_identity:
        assert rejected[key]["error_code"] == "missing_identity", rejected[key]

    # no trace of a suppressed contact ever reached the vendor, in any request, answered or not
    received = [(r, identity_tokens(r)) for r in sandbox.state.requests(vendor_name)]
    assert intended <= set().union(*(tokens for _, tokens in received)), "the scan does not see what was sent"
    leaks = [(r.id, r.method, r.path, sorted(tokens & suppressed_traces)) for r, tokens in received
             if tokens & suppressed_traces]
    assert not leaks


@pytest.mark.parametrize("vendor_name", list(VENDORS))
def test_a_transient_failure_mid_run_keeps_acknowledged_batches_and_the_rerun_sends_only_the_rest(
        vendor_name, project, sandbox, warehouse_path, monkeypatch):
    vendor = VENDORS[vendor_name]
    sync = next(s for s in project.syncs if s.id == vendor.sync_id)
    sid = f"sync_id = '{vendor.sync_id}'"
    acknowledged_batches = 3
    writes_per_batch = 1 if vendor_name == "meta" else 2  # Mailchimp and HubSpot: upsert, then membership
    failing = FailAfterWrites(sandbox.app, vendor_name, allowed=acknowledged_batches * writes_per_batch)
    monkeypatch.setattr(sandbox.app, "process", failing)
    connection = vendor.connection(sandbox.url, {"backoff_base": 0.01, "backoff_max": 0.02, "max_attempts": 2})
    # one batch in flight at a time, so "the first three batches" is exact
    options = SyncOptions(batch_size=BATCH_SIZE, concurrency=1)

    warehouse = DuckDBWarehouse(warehouse_path)
    try:
        expected = expected_membership(project, warehouse, vendor.segment, vendor.destination, DAY_2)
        key_of = {vendor.identity(email): key for key, email in expected.intended.items()}
        engine = SyncEngine(project, warehouse)
        client = build_client(project, sync, connection)
        try:
            with pytest.raises(TransientDestinationError):
                engine.run(sync, client, DAY_2, options=options)
        finally:
            client.close()
        end_of_run_1 = last_request_id(sandbox)
        acknowledged = {k for (k,) in warehouse.query(
            f"SELECT customer_key FROM segprovider_sync_state WHERE {sid} AND in_destination")}
        # three batches got through before the outage; a batch acknowledges fewer than BATCH_SIZE keys
        # when it holds identities the destination (or the connector) refuses
        assert 0 < len(acknowledged) <= acknowledged_batches * BATCH_SIZE
        accepted_in_run_1 = set().union(*(identity_tokens(r) for r in write_requests(sandbox, vendor_name)
                                          if r.status is not None and r.status < 300))
        # the state holds exactly what the destination accepted: nothing more, nothing less
        assert {key_of[t] for t in accepted_in_run_1 if t in key_of} == acknowledged
        failed_run = warehouse.query_records(f"SELECT * FROM segprovider_sync_runs WHERE {sid}")
        assert [(r["status"], r["succeeded_add"]) for r in failed_run] == [("failed", len(acknowledged))]
        assert failed_run[0]["error"].startswith("TransientDestinationError")

        failing.set_error_rate(0.0)  # the destination recovers
        client = build_client(project, sync, connection)
        try:
            record = engine.run(sync, client, DAY_2, options=options)
        finally:
            client.close()
    finally:
        warehouse.close()

    assert record.status == "succeeded"
    assert record.succeeded["add"] == len(expected.intended) - len(acknowledged)
    sent_in_run_2 = {key_of[token] for r in write_requests(sandbox, vendor_name, end_of_run_1)
                     for token in identity_tokens(r) if token in key_of}
    assert not sent_in_run_2 & acknowledged, "a record acknowledged in run 1 was sent again"
    assert sent_in_run_2 == set(expected.intended) - acknowledged
    assert vendor.held(sandbox) == {vendor.identity(email) for email in expected.intended.values()}

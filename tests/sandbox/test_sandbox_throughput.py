"""Throughput: at least 20,000 member-records/s for Mailchimp batches of 500 and Meta batches of 10,000.

The sandbox runs in its own process, as ``segprovider sandbox`` does, so the client
here does not compete with it for the interpreter lock.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest
import requests

from airflow_segprovider.sandbox import DEFAULT_MAILCHIMP_API_KEY, DEFAULT_META_ACCESS_TOKEN, DemoFixtures

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

REQUIRED_RECORDS_PER_SECOND = 20_000
pytestmark = pytest.mark.slow


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_segprovider.sandbox", "--port", "0", "--db", str(tmp_path / "t.db"), "--seed"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        match = re.search(r"on (http://\S+)", process.stdout.readline())
        assert match, "the sandbox did not print its URL"
        for line in process.stdout:  # the seeding line is the last one printed at start-up
            if "seeded" in line:
                break
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)


def best_rate(rounds: list[list[tuple[str, dict]]], records_per_round: int, session: requests.Session) -> float:
    """Records per second of the fastest round: the machine is shared, so one slow round is noise."""
    rates = []
    for calls in rounds:
        started = time.perf_counter()
        for url, kwargs in calls:
            response = session.post(url, timeout=30, **kwargs)
            assert response.status_code == 200, response.text[:300]
            response.json()
        rates.append(records_per_round / (time.perf_counter() - started))
    return max(rates)


def mailchimp_batch(url: str, list_id: str, tag: str) -> tuple[str, dict]:
    members = [
        {"email_address": f"c{tag}.{i}@example.org", "status": "subscribed", "merge_fields": {"FNAME": "C"}}
        for i in range(500)
    ]
    return (
        f"{url}/3.0/lists/{list_id}",
        {
            "auth": ("anyuser", DEFAULT_MAILCHIMP_API_KEY),
            "headers": {"Content-Type": "application/json"},
            "data": json.dumps({"members": members, "update_existing": True}),
        },
    )


def meta_batch(url: str, audience_id: str, tag: str) -> tuple[str, dict]:
    hashes = [hashlib.sha256(f"m{tag}.{i}@example.org".encode()).hexdigest() for i in range(10_000)]
    return (
        f"{url}/v21.0/{audience_id}/users",
        {
            "data": {
                "access_token": DEFAULT_META_ACCESS_TOKEN,
                "payload": json.dumps({"schema": "EMAIL_SHA256", "data": hashes}),
            }
        },
    )


def test_mailchimp_and_meta_sustain_20000_records_per_second(sandbox_process: str) -> None:
    fixtures = DemoFixtures()
    mailchimp = [
        [mailchimp_batch(sandbox_process, fixtures.mailchimp_list_id, f"{r}.{b}") for b in range(60)] for r in range(2)
    ]
    meta = [[meta_batch(sandbox_process, fixtures.meta_audience_id, f"{r}.{b}") for b in range(5)] for r in range(2)]
    with requests.Session() as session:
        mailchimp_rate = best_rate(mailchimp, 60 * 500, session)
        meta_rate = best_rate(meta, 5 * 10_000, session)
    print(f"\nMailchimp {mailchimp_rate:,.0f} records/s, Meta {meta_rate:,.0f} records/s")
    assert mailchimp_rate >= REQUIRED_RECORDS_PER_SECOND
    assert meta_rate >= REQUIRED_RECORDS_PER_SECOND

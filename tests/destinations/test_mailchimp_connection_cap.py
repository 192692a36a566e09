"""Mailchimp's 10 simultaneous connections per API key hold across every client of the key in a process.

Mailchimp counts connections per API key, not per client: two syncs to the same account, each
with its own client capped at 10, could hold 20 and be answered 429. The connector takes its
slots from a process-wide registry keyed by the (hashed) API key. The sandbox enforces the limit
per key, answering 429 (``concurrency_limited``) to the 11th request in flight.
"""

from __future__ import annotations

import threading

import pytest

from airflow_segprovider.core.destination import Record
from airflow_segprovider.destinations import create_client
from airflow_segprovider.destinations.http import pacing
from airflow_segprovider.destinations.http.pacing import credential_slots
from segprovider_sandbox import DEFAULT_MAILCHIMP_API_KEY, SandboxConfig, VendorFaults, serve


def test_every_client_of_a_key_shares_one_semaphore_and_the_registry_holds_no_key():
    key = "0123456789abcdef-us6"
    assert credential_slots("mailchimp", key, 10) is credential_slots("mailchimp", key, 10)
    assert credential_slots("mailchimp", key, 10) is not credential_slots("mailchimp", key + "x", 10)
    assert credential_slots("mailchimp", key, 10) is not credential_slots("hubspot", key, 10)
    assert not any(key in str(registered) for registered in pacing._CREDENTIAL_SLOTS)


@pytest.mark.integration
def test_two_clients_of_one_key_never_hold_more_than_ten_connections(tmp_path):
    # every request takes 50 ms, so 2 clients x 10 threads overlap and would reach 20 in flight uncapped
    config = SandboxConfig(mailchimp_max_connections=10,
                           faults={"mailchimp": VendorFaults(slow_rate=1.0, slow_seconds=0.05)})
    with serve(db_path=tmp_path / "sandbox.db", config=config) as sandbox:
        fixtures = sandbox.state.seed_demo_fixtures()
        settings = {"list_id": fixtures.mailchimp_list_id, "segment_id": str(fixtures.mailchimp_segment_id),
                    "base_url": f"{sandbox.url}/3.0", "max_concurrency": 10, "backoff_base": 0.01,
                    "max_attempts": 8}
        clients = [create_client("mailchimp", f"mc{n}", settings, {"api_key": DEFAULT_MAILCHIMP_API_KEY})
                   for n in range(2)]
        failures: list[BaseException] = []

        def send(client, batch: int) -> None:
            try:
                for round_ in range(3):
                    start = 1000 * batch + 10 * round_
                    client.add_members([Record(f"k{i}", f"p{i}@example.org", {}) for i in range(start, start + 5)])
            except BaseException as exc:  # noqa: BLE001  (reported by the assertion below)
                failures.append(exc)

        threads = [threading.Thread(target=send, args=(clients[n % 2], n)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for client in clients:
            client.close()

        assert not failures, failures
        logged = sandbox.state.requests("mailchimp")
        assert [r for r in logged if r.status == 429 or r.fault == "concurrency_limited"] == []
        assert len([r for r in logged if r.method == "POST"]) == 20 * 3 * 2  # subscribe + segment, every round

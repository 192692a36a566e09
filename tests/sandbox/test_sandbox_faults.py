"""Fault injection: seeded, reproducible, switched at runtime, and applied before any state changes."""

from __future__ import annotations

import pytest
import requests

from segprovider_sandbox import DEFAULT_MAILCHIMP_API_KEY, RateLimit, SandboxConfig, VendorFaults, serve
from segprovider_sandbox.faults import FaultInjector, FaultKind

AUTH = ("anyuser", DEFAULT_MAILCHIMP_API_KEY)


def batch(url, list_id, email):
    return requests.post(
        f"{url}/3.0/lists/{list_id}",
        auth=AUTH,
        json={"members": [{"email_address": email, "status": "subscribed"}], "update_existing": True},
        timeout=5,
    )


def test_injected_5xx_changes_nothing_and_is_logged(sandbox, fixtures, configure):
    configure(faults={"mailchimp": {"error_rate": 1.0, "error_statuses": [503]}})
    failed = batch(sandbox.url, fixtures.mailchimp_list_id, "a@example.org")
    assert failed.status_code == 503
    assert failed.json()["status"] == 503  # still a Mailchimp problem document
    assert sandbox.state.mailchimp_list_emails(fixtures.mailchimp_list_id) == set()
    assert (sandbox.state.requests("mailchimp")[-1].status, sandbox.state.requests("mailchimp")[-1].fault) == (
        503,
        "error",
    )

    configure(faults={"mailchimp": {"error_rate": 0.0}})
    assert batch(sandbox.url, fixtures.mailchimp_list_id, "a@example.org").status_code == 200
    assert sandbox.state.mailchimp_list_emails(fixtures.mailchimp_list_id) == {"a@example.org"}


def test_dropped_connection_answers_nothing_and_changes_nothing(sandbox, fixtures, configure):
    configure(faults={"mailchimp": {"drop_rate": 1.0}})
    with pytest.raises(requests.ConnectionError):
        batch(sandbox.url, fixtures.mailchimp_list_id, "a@example.org")
    assert sandbox.state.mailchimp_list_emails(fixtures.mailchimp_list_id) == set()
    logged = sandbox.state.requests("mailchimp")[-1]
    assert logged.status is None and logged.fault == "drop"


def test_rate_limit_window_answers_429_with_retry_after(sandbox, fixtures, configure):
    configure(faults={"mailchimp": {"rate_limit": {"max_requests": 2, "window_seconds": 30}}})
    answers = [batch(sandbox.url, fixtures.mailchimp_list_id, f"r{i}@example.org") for i in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 30
    assert sandbox.state.mailchimp_list_emails(fixtures.mailchimp_list_id) == {"r0@example.org", "r1@example.org"}


def test_the_same_seed_gives_the_same_faults(tmp_path):
    config = SandboxConfig(seed=42, faults={"mailchimp": VendorFaults(error_rate=0.3, drop_rate=0.2)})
    runs = []
    for run in range(2):
        with serve(db_path=tmp_path / f"run{run}.db", config=config) as running:
            fixtures = running.state.seed_demo_fixtures()
            outcomes = []
            for i in range(30):
                try:
                    outcomes.append(batch(running.url, fixtures.mailchimp_list_id, f"s{i}@example.org").status_code)
                except requests.ConnectionError:
                    outcomes.append("dropped")
            runs.append(outcomes)
    assert runs[0] == runs[1]
    assert {"dropped", 200} <= set(runs[0]) and any(isinstance(o, int) and o >= 500 for o in runs[0])


def test_reseeding_at_runtime_restarts_the_sequence(sandbox, configure):
    configure(seed=3, faults={"meta": {"error_rate": 0.5}})
    first = [sandbox.app.faults.decide("meta").kind for _ in range(20)]
    configure(seed=3)
    assert [sandbox.app.faults.decide("meta").kind for _ in range(20)] == first
    assert {FaultKind.ERROR, FaultKind.NONE} == set(first)


def test_admin_config_rejects_nonsense(sandbox):
    for body in ({"faults": {"mailchimp": {"error_rate": 2}}}, {"faults": {"myspace": {}}}, {"speed": 1}):
        response = requests.post(f"{sandbox.url}/__sandbox/config", json=body, timeout=5)
        assert response.status_code == 400, body
    health = requests.get(f"{sandbox.url}/__sandbox/health", timeout=5).json()
    assert health["status"] == "ok"
    current = requests.get(f"{sandbox.url}/__sandbox/config", timeout=5).json()
    assert current["faults"]["hubspot"]["rate_limit"] == {"max_requests": 190, "window_seconds": 10.0}


def test_rolling_window_retry_after_counts_down():
    now = [100.0]
    injector = FaultInjector({"hubspot": VendorFaults(rate_limit=RateLimit(2, 10.0))}, seed=0, clock=lambda: now[0])
    assert injector.decide("hubspot").kind is FaultKind.NONE
    now[0] = 104.0
    assert injector.decide("hubspot").kind is FaultKind.NONE
    now[0] = 106.5
    refused = injector.decide("hubspot")
    assert refused.kind is FaultKind.RATE_LIMITED and refused.retry_after == 4  # the first request ages out at 110
    now[0] = 110.0
    assert injector.decide("hubspot").kind is FaultKind.NONE
    assert injector.window_usage("hubspot").remaining == 0

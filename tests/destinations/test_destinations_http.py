"""The shared HTTP layer against a scripted loopback server: retries, rate limits, pacing, secrets."""

from __future__ import annotations

import email.utils
import logging
import pickle
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from airflow_segprovider.core.destination import (
    DestinationAuthError,
    DestinationConfigError,
    DestinationError,
    MalformedResponseError,
    RateLimitExhaustedError,
    TerminalDestinationError,
    TransientDestinationError,
    UnsupportedOperationError,
)
from airflow_segprovider.destinations.http import (
    BasicAuth,
    BearerAuth,
    DestinationHttpClient,
    HttpSettings,
    QueryTokenAuth,
    TokenBucket,
    parse_retry_after,
)

SECRET = "sk-live-9f8e7d6c5b4a39281706"


def make_client(server, **overrides) -> DestinationHttpClient:
    settings = {
        "base_url": server.url,
        "connect_timeout": 1.0,
        "read_timeout": 1.0,
        "max_attempts": 4,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
        "default_rate_limit_wait": 0.05,
        "max_concurrency": 4,
    }
    auth = overrides.pop("auth", None)
    settings.update(overrides)
    return DestinationHttpClient(
        destination="crm_test",
        settings=HttpSettings(**settings),
        auth=auth,
        auth_hint="check the API key in connection 'crm_default'",
    )


# --- retries --------------------------------------------------------------------------------


def test_5xx_is_retried_until_success(server):
    R = server.Reply
    server.queue(R(503), R(502), R(200, {"ok": True}))
    with make_client(server) as client:
        assert client.request_json("GET", "/things") == {"ok": True}
    assert len(server.requests) == 3


def test_5xx_exhausting_attempts_raises_transient_with_the_attempt_count(server):
    R = server.Reply
    server.queue(*[R(503, {"message": "down for maintenance"})] * 4)
    with make_client(server) as client, pytest.raises(TransientDestinationError) as caught:
        client.request("POST", "/things", json_body={"a": 1})
    error = caught.value
    assert len(server.requests) == 4
    assert error.attempts == 4
    assert error.status == 503
    assert error.destination == "crm_test"
    assert error.path == "/things"
    assert error.retryable is True
    assert "down for maintenance" in str(error)


def test_backoff_is_exponential_with_full_jitter(server):
    R = server.Reply
    server.queue(*[R(500)] * 5)
    sleeps: list[float] = []
    client = DestinationHttpClient(
        destination="crm_test",
        settings=HttpSettings(base_url=server.url, max_attempts=5, backoff_base=0.5, backoff_max=1.5),
        sleep=sleeps.append,
    )
    with client, pytest.raises(TransientDestinationError):
        client.request("GET", "/x")
    assert len(sleeps) == 4  # no sleep after the last attempt
    for attempt, delay in enumerate(sleeps, start=1):
        assert 0.0 <= delay <= min(1.5, 0.5 * 2 ** (attempt - 1))


def test_timeouts_are_retried_then_raise_transient(server):
    R = server.Reply
    server.queue(R(200, {"late": True}, delay=0.6), R(200, {"ok": True}))
    with make_client(server, read_timeout=0.2) as client:
        assert client.request_json("GET", "/slow") == {"ok": True}
    assert len(server.requests) == 2

    server.queue(*[R(200, delay=0.6)] * 2)
    with (
        make_client(server, read_timeout=0.2, max_attempts=2) as client,
        pytest.raises(TransientDestinationError, match="timed out"),
    ):
        client.request("GET", "/slow")


def test_a_dropped_connection_is_retried(server):
    R = server.Reply
    server.queue(R(drop=True), R(200, {"ok": True}))
    with make_client(server) as client:
        assert client.request_json("GET", "/flaky") == {"ok": True}
    assert len(server.requests) == 2


# --- rate limits ------------------------------------------------------------------------------


def test_retry_after_seconds_is_honoured_and_not_counted_as_an_attempt(server):
    R = server.Reply
    server.queue(R(429, headers={"Retry-After": "0.3"}), R(429, headers={"Retry-After": "0.3"}), R(200, {"ok": 1}))
    started = time.monotonic()
    with make_client(server, max_attempts=1) as client:  # one attempt, yet two 429s are survived
        assert client.request_json("GET", "/limited") == {"ok": 1}
    elapsed = time.monotonic() - started
    assert len(server.requests) == 3
    assert 0.55 <= elapsed < 10  # waited both Retry-After delays, without an extra backoff on top
    gap = server.requests[1].at - server.requests[0].at
    assert gap >= 0.28


def test_retry_after_http_date_is_honoured(server):
    R = server.Reply
    when = email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(seconds=2), usegmt=True)
    server.queue(R(429, headers={"Retry-After": when}), R(200, {"ok": 1}))
    started = time.monotonic()
    with make_client(server) as client:
        client.request("GET", "/limited")
    # HTTP-dates have one-second resolution: the wait is between 1 and 2 seconds.
    assert 0.9 <= time.monotonic() - started < 3.0


def test_parse_retry_after_forms():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after(None) is None


def test_rate_limit_wait_budget_by_count(server):
    R = server.Reply
    server.queue(*[R(429, headers={"Retry-After": "0"})] * 3)
    with make_client(server, max_rate_limit_waits=2) as client, pytest.raises(RateLimitExhaustedError) as caught:
        client.request("GET", "/limited")
    assert len(server.requests) == 3
    assert caught.value.retryable is True
    assert isinstance(caught.value, TransientDestinationError)


def test_rate_limit_wait_budget_by_time_fails_fast(server):
    R = server.Reply
    server.queue(R(429, headers={"Retry-After": "3600"}))
    started = time.monotonic()
    with make_client(server, max_rate_limit_wait_seconds=5) as client, pytest.raises(RateLimitExhaustedError) as caught:
        client.request("GET", "/limited")
    assert time.monotonic() - started < 1.0
    assert caught.value.retry_after == 3600.0


def test_a_rate_limit_pauses_every_thread_of_the_destination(server):
    R = server.Reply
    server.queue(R(429, headers={"Retry-After": "0.4"}))
    server.route("GET", "/.*", lambda seen, match: R(200, {"ok": 1}, delay=0.05))
    with make_client(server, max_concurrency=4) as client:
        threads = [threading.Thread(target=client.request, args=("GET", f"/t{i}")) for i in range(4)]
        for thread in threads:
            thread.start()
            time.sleep(0.02)
        for thread in threads:
            thread.join()
    first_at = server.requests[0].at
    # The threads that started after the 429 waited for the pause instead of hammering the server.
    later = [seen.at - first_at for seen in server.requests[1:]]
    assert len(server.requests) == 5
    assert sum(1 for gap in later if gap >= 0.35) >= 3


# --- classification -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_client_errors_are_terminal_and_not_retried(server, status):
    R = server.Reply
    server.queue(R(status, {"message": "email is invalid"}))
    with make_client(server) as client, pytest.raises(TerminalDestinationError) as caught:
        client.request("POST", "/contacts", json_body={}, operation="upsert 1 contact")
    error = caught.value
    assert not isinstance(error, DestinationAuthError)
    assert len(server.requests) == 1
    assert error.retryable is False
    assert error.status == status
    assert "upsert 1 contact was refused: email is invalid" in str(error)
    assert "destination 'crm_test'" in str(error)


def test_404_hint_can_be_specific(server):
    R = server.Reply
    server.queue(R(404, {"message": "not found"}))
    with make_client(server) as client, pytest.raises(TerminalDestinationError) as caught:
        client.request("GET", "/lists/abc", hints={404: "check config.list_id"})
    assert caught.value.hint == "check config.list_id"


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_are_terminal_with_the_connection_hint(server, status):
    R = server.Reply
    server.queue(R(status, {"message": "bad key"}))
    with make_client(server) as client, pytest.raises(DestinationAuthError) as caught:
        client.request("GET", "/ping")
    assert len(server.requests) == 1
    assert "check the API key in connection 'crm_default'" in str(caught.value)


def test_malformed_json_is_a_clear_terminal_error(server):
    R = server.Reply
    server.queue(R(200, b"<html>gateway login</html>", headers={"Content-Type": "text/html"}))
    with make_client(server) as client, pytest.raises(MalformedResponseError) as caught:
        client.request_json("GET", "/lists/abc/members")
    message = str(caught.value)
    assert len(server.requests) == 1
    assert "destination 'crm_test'" in message
    assert "/lists/abc/members" in message
    assert "expected a JSON body" in message
    assert isinstance(caught.value, TerminalDestinationError)


def test_a_json_array_where_an_object_is_documented_is_malformed(server):
    R = server.Reply
    server.queue(R(200, [1, 2]))
    with make_client(server) as client, pytest.raises(MalformedResponseError, match="JSON object"):
        client.request("GET", "/x").json_object()


# --- pacing -----------------------------------------------------------------------------------


def test_token_bucket_limits_the_observed_request_rate(server):
    R = server.Reply
    server.route("GET", "/.*", lambda seen, match: R(200, {}))
    with make_client(server, requests_per_second=20.0, burst=2, max_concurrency=4) as client:
        threads = [threading.Thread(target=lambda: [client.request("GET", "/r") for _ in range(4)]) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    times = sorted(seen.at for seen in server.requests)
    assert len(times) == 16
    # 2 immediately (burst), 14 more at 20/s: at least 0.7 s from first to last.
    assert times[-1] - times[0] >= 0.65
    # No one-second window can hold more than burst + rate requests.
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t - start < 0.5) <= 2 + 10 + 1


def test_token_bucket_with_a_fake_clock():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(rate=10.0, burst=3, clock=lambda: now[0], sleep=sleep)
    waits = [bucket.acquire() for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(0.1)
    assert waits[4] == pytest.approx(0.1)
    bucket.pause_for(2.0)
    assert bucket.acquire() == pytest.approx(2.0)


def test_concurrency_cap_is_never_exceeded(server):
    R = server.Reply
    server.route("GET", "/.*", lambda seen, match: R(200, {}, delay=0.08))
    with make_client(server, max_concurrency=3) as client:
        threads = [threading.Thread(target=lambda: [client.request("GET", "/c") for _ in range(2)]) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(server.requests) == 16
    assert server.max_in_flight == 3  # reached, never exceeded


# --- secrets ----------------------------------------------------------------------------------


def test_secrets_never_reach_logs_errors_or_reprs(server, caplog):
    R = server.Reply
    caplog.set_level(logging.DEBUG)
    # A hostile or careless server echoes the credentials back in its error body.
    server.queue(
        R(503, {"message": f"upstream saw token {SECRET}"}),
        R(401, {"message": f"token {SECRET} is revoked"}),
    )
    client = make_client(server, auth=QueryTokenAuth({"access_token": SECRET}))
    with client, pytest.raises(DestinationAuthError) as caught:
        client.request("GET", f"/v1/{SECRET}/users", params={"fields": "id"})
    error = caught.value
    assert server.requests[0].query["access_token"] == [SECRET]  # it was really sent
    for text in (str(error), repr(error), error.body_excerpt or "", error.path or "", repr(client), caplog.text):
        assert SECRET not in text
    assert "***" in (error.body_excerpt or "")
    assert "access_token=***" in caplog.text  # urllib3's request line, masked
    assert "QueryTokenAuth(params={'access_token': '***'})" in repr(client)


@pytest.mark.parametrize(
    ("auth", "header"),
    [(BearerAuth(SECRET), f"Bearer {SECRET}"), (BasicAuth("any", SECRET), None)],
)
def test_header_auth_is_sent_and_masked(server, caplog, auth, header):
    R = server.Reply
    caplog.set_level(logging.DEBUG)
    server.queue(R(500, {"message": f"bad {SECRET}"}), R(200, {}))
    with make_client(server, auth=auth) as client:
        client.request("GET", "/me")
        shown = repr(client)
    sent = server.requests[0].headers["Authorization"]
    if header:
        assert sent == header
    else:
        assert sent.startswith("Basic ")
    assert SECRET not in caplog.text
    assert SECRET not in shown
    assert sent.split(" ", 1)[1] not in caplog.text


# --- exceptions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        TerminalDestinationError("bad", destination="d", status=400, path="/p", body_excerpt="{}", hint="fix it"),
        DestinationAuthError("no", destination="d", status=401, hint="check key"),
        DestinationConfigError("missing", destination="d", field="list_id", hint="set it"),
        MalformedResponseError("not json", destination="d", status=200, path="/p"),
        UnsupportedOperationError("cannot", destination="d"),
        TransientDestinationError("down", destination="d", status=503, attempts=5),
        RateLimitExhaustedError("slow down", destination="d", status=429, attempts=1, retry_after=30.0),
    ],
)
def test_exceptions_pickle_with_their_fields(error):
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error)
    assert clone.__dict__ == error.__dict__
    assert str(clone) == str(error)
    assert isinstance(clone, DestinationError)


def test_raised_exceptions_pickle(server):
    R = server.Reply
    server.queue(R(422, {"message": "nope"}))
    with make_client(server) as client, pytest.raises(TerminalDestinationError) as caught:
        client.request("POST", "/x", json_body={})
    clone = pickle.loads(pickle.dumps(caught.value))
    assert (clone.status, clone.path, clone.destination) == (422, "/x", "crm_test")


def test_closed_client_refuses_requests(server):
    client = make_client(server)
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.request("GET", "/x")

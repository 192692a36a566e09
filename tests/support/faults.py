"""Helpers of the fault-injection tests: the intended membership computed in plain Python, what the
sandbox received, a kill-and-restart loop around ``segprovider sync``, and a sandbox that starts failing.

Nothing here asks the sync engine what it intends to do: the expected state is computed from the
warehouse's tables with Python, so a wrong plan in the engine cannot make its own test pass.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from airflow_segprovider.destinations.meta import normalize_and_hash
from segprovider_sandbox import (
    DEFAULT_HUBSPOT_TOKEN,
    DEFAULT_MAILCHIMP_API_KEY,
    DEFAULT_META_ACCESS_TOKEN,
    DemoFixtures,
)

if TYPE_CHECKING:
    import datetime as dt
    import random
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.warehouses.base import Warehouse
    from segprovider_sandbox import LoggedRequest, RunningSandbox
    from segprovider_sandbox.server import SandboxApp
    from segprovider_sandbox.wire import SandboxRequest, SandboxResponse

# One '@', something before it, a dotted domain after it: what any of the vendors would take as an address.
EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_EMAIL_TOKEN = re.compile(r"[^\s\"'<>,;:\[\]{}()=&/?]+@[^\s\"'<>,;:\[\]{}()=&/?]*")
_HEX_TOKEN = re.compile(r"(?<![0-9a-f])(?:[0-9a-f]{64}|[0-9a-f]{32})(?![0-9a-f])")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


# --- the intended state, computed independently ---------------------------------------------------


@dataclass
class Expected:
    """Where every member of a segment's snapshot should end up for one destination.

    :param intended: key -> normalised email, the members the destination must hold.
    :param suppressed: key -> email (or None) of members whose latest consent for the channel is withdrawn.
    :param missing_identity: members with consent but no email.
    :param invalid_identity: key -> email of members with consent and an email that is not an address.
    """

    intended: dict[str, str] = field(default_factory=dict)
    suppressed: dict[str, str | None] = field(default_factory=dict)
    missing_identity: set[str] = field(default_factory=set)
    invalid_identity: dict[str, str] = field(default_factory=dict)


def expected_membership(project: Project, warehouse: Warehouse, segment: str, destination: str,
                        as_of: dt.datetime) -> Expected:
    """The snapshot's members, minus withdrawn consent (latest answer wins), minus missing/invalid emails."""
    channel = project.destinations[destination].channel
    require_opt_in = project.model.consent.channels[channel].require_opt_in
    members = {key for (key,) in warehouse.query(
        "SELECT customer_key FROM segprovider_memberships "
        f"WHERE segment = '{segment}' AND as_of = TIMESTAMP '{as_of:%Y-%m-%d %H:%M:%S}'")}
    latest: dict[str, tuple[Any, bool]] = {}
    for key, opted_in, updated_at in warehouse.query(
            f"SELECT CAST(customer_id AS VARCHAR), opted_in, updated_at FROM consents WHERE channel = '{channel}'"):
        # the newest answer counts; on a tie a withdrawal wins (the cautious reading)
        rank = (updated_at, opted_in is False)
        if key not in latest or rank > latest[key][0]:
            latest[key] = (rank, bool(opted_in))
    emails = dict(warehouse.query("SELECT CAST(customer_id AS VARCHAR), email FROM customers"))
    expected = Expected()
    for key in members:
        email = emails.get(key)
        allowed = latest[key][1] if key in latest else not require_opt_in
        if not allowed:
            expected.suppressed[key] = email
        elif email is None or not email.strip():
            expected.missing_identity.add(key)
        elif not EMAIL_SHAPE.fullmatch(email.strip()):
            expected.invalid_identity[key] = email
        else:
            expected.intended[key] = email.strip().lower()
    return expected


# --- the destinations, as the tests see them ---------------------------------------------------


@dataclass(frozen=True)
class Vendor:
    """One destination of the example project, pointed at the sandbox.

    :param name: the sandbox's vendor name (its request log key).
    :param sync_id: the example project's sync to run.
    :param segment: that sync's segment.
    :param destination: that sync's destination.
    :param connection_id: the Airflow connection of the destination.
    :param path_prefix: what follows the sandbox URL in the connection's host.
    :param secret: the sandbox's default credential for the vendor.
    """

    name: str
    sync_id: str
    segment: str
    destination: str
    connection_id: str
    path_prefix: str
    secret: str

    def identity(self, email: str) -> str:
        """What the destination holds for an email: the email itself, or Meta's SHA-256."""
        if self.name == "meta":
            hashed = normalize_and_hash(email)
            assert hashed is not None
            return hashed
        return email.strip().lower()

    def held(self, sandbox: RunningSandbox) -> set[str]:
        """What the sandbox's list, segment or audience holds now."""
        fixtures = DemoFixtures()
        if self.name == "mailchimp":
            held = sandbox.state.mailchimp_segment_emails(fixtures.mailchimp_list_id, fixtures.mailchimp_segment_id)
        elif self.name == "hubspot":
            held = sandbox.state.hubspot_list_emails(fixtures.hubspot_list_id)
        else:
            return sandbox.state.meta_audience_hashes(fixtures.meta_audience_id)
        return {email.lower() for email in held}

    def connection(self, sandbox_url: str, extra: dict[str, Any]) -> dict[str, Any]:
        """The Airflow connection (JSON form of ``AIRFLOW_CONN_<ID>``) pointing at the sandbox."""
        return {"conn_type": self.name, "host": sandbox_url + self.path_prefix, "password": self.secret,
                "extra": extra}


VENDORS = {
    "mailchimp": Vendor("mailchimp", "vip__mailchimp_newsletter", "vip", "mailchimp_newsletter",
                        "segprovider_mailchimp", "/3.0", DEFAULT_MAILCHIMP_API_KEY),
    "hubspot": Vendor("hubspot", "vip__hubspot_crm", "vip", "hubspot_crm", "segprovider_hubspot", "",
                      DEFAULT_HUBSPOT_TOKEN),
    "meta": Vendor("meta", "win_back__meta_ads", "win_back", "meta_ads", "segprovider_meta", "",
                   DEFAULT_META_ACCESS_TOKEN),
}


# --- what the sandbox received ---------------------------------------------------------------------


def identity_tokens(request: LoggedRequest) -> set[str]:
    """Every email-like token and every MD5/SHA-256 hex digest in a request's path, query and body.

    Tokens, not substrings: ``user1@x.org`` must not be found inside ``user11@x.org``. Form bodies
    (Meta's ``payload=``) are decoded too.
    """
    tokens: set[str] = set()
    for raw in (request.path, request.query, request.body):
        text = (raw or "").lower()
        for variant in {text, unquote_plus(text)}:
            tokens.update(_EMAIL_TOKEN.findall(variant))
            tokens.update(_HEX_TOKEN.findall(variant))
    return tokens


def traces_of(email: str) -> set[str]:
    """Every form in which an email could reach a vendor: itself, Mailchimp's MD5 id, Meta's SHA-256."""
    normalized = email.strip().lower()
    return {normalized, hashlib.md5(normalized.encode()).hexdigest(),  # noqa: S324 - Mailchimp's id scheme
            hashlib.sha256(normalized.encode()).hexdigest()}


def write_requests(sandbox: RunningSandbox, vendor: str, after_id: int = 0) -> list[LoggedRequest]:
    """The vendor's non-GET requests logged after ``after_id``, whatever their answer."""
    return [r for r in sandbox.state.requests(vendor) if r.id > after_id and r.method in WRITE_METHODS]


def last_request_id(sandbox: RunningSandbox) -> int:
    with sandbox.state.read() as cursor:
        return int(cursor.execute("SELECT COALESCE(MAX(id), 0) FROM requests").fetchone()[0])


def count_writes_since(sandbox: RunningSandbox, vendor: str, after_id: int) -> int:
    """How many write requests of ``vendor`` the sandbox has answered (or dropped) since ``after_id``."""
    placeholders = ", ".join("?" for _ in WRITE_METHODS)
    with sandbox.state.read() as cursor:
        return int(cursor.execute(
            f"SELECT COUNT(*) FROM requests WHERE vendor = ? AND id > ? AND method IN ({placeholders})",
            (vendor, after_id, *WRITE_METHODS)).fetchone()[0])


# --- a sandbox that starts failing -----------------------------------------------------------------


class FailAfterWrites:
    """Wraps a sandbox's request processing: after ``allowed`` write requests to ``vendor`` succeeded,
    the sandbox's own fault knob is turned to a 503 on every request to that vendor.

    Install with ``monkeypatch.setattr(sandbox.app, "process", FailAfterWrites(sandbox.app, ...))``.
    """

    def __init__(self, app: SandboxApp, vendor: str, allowed: int) -> None:
        self.app, self.vendor, self.allowed = app, vendor, allowed
        self.writes = 0
        self._process: Callable[[SandboxRequest], SandboxResponse | None] = app.process
        self._lock = threading.Lock()

    def __call__(self, request: SandboxRequest) -> SandboxResponse | None:
        api = next((candidate for candidate in self.app.apis if candidate.owns(request.path)), None)
        if api is not None and api.vendor == self.vendor and request.method in WRITE_METHODS:
            with self._lock:
                self.writes += 1
                if self.writes == self.allowed + 1:
                    self.set_error_rate(1.0)
        return self._process(request)

    def set_error_rate(self, rate: float) -> None:
        current = self.app.faults.faults()[self.vendor]
        self.app.faults.reconfigure({self.vendor: replace(current, error_rate=rate, error_statuses=(503,))})


# --- kill and restart ------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One start of the sync subprocess.

    :param number: 1-based.
    :param plan: how it was to end, in words.
    :param killed: whether it was SIGKILLed (rather than exiting on its own).
    :param returncode: its exit status (``-9`` when killed).
    :param seconds: wall time.
    :param output: the tail of its stdout and stderr.
    :param writes: write requests the vendor's sandbox logged while it ran.
    """

    number: int
    plan: str
    killed: bool
    returncode: int
    seconds: float
    output: str
    writes: int = 0

    def __str__(self) -> str:
        ending = "SIGKILL" if self.killed else f"exit {self.returncode}"
        said = self.output.strip().splitlines()[-1][:160] if self.output.strip() and not self.killed else ""
        return f"#{self.number} {self.plan}: {ending} after {self.seconds:.2f}s, {self.writes} writes {said}"


def run_once(command: Sequence[str], env: dict[str, str], log: Path, timeout: float = 120.0) -> Attempt:
    """Run the sync to its end (no kill)."""
    return _attempt(0, "run to the end", command, env, log, lambda proc: _wait(proc, timeout))


def run_with_random_kills(command: Sequence[str], env: dict[str, str], *, sandbox: RunningSandbox, vendor: str,
                          rng: random.Random, log_dir: Path, max_attempts: int = 15, kill_attempts: int = 6,
                          kill_probability: float = 0.75) -> list[Attempt]:
    """Start the sync; maybe SIGKILL it at a random point; restart, until one run exits 0 on its own.

    A kill lands either after a random delay (anywhere: start-up, opening the warehouse, planning,
    sending, committing) or a few milliseconds after the sandbox answered the k-th write request of the
    run (mid-send, where acknowledged-but-uncommitted batches happen). The first start is always killed
    mid-send, when the most work is ahead of it. Every draw comes from ``rng``, the same numbers in the
    same order whatever happens, so the kill schedule is reproducible.

    :raises AssertionError: no run exited 0 within ``max_attempts``, with every attempt listed.
    """
    attempts: list[Attempt] = []
    for number in range(1, max_attempts + 1):
        kill_draw, mode_draw = rng.random(), rng.random()
        delay, writes, jitter = rng.uniform(0.2, 2.5), rng.randint(1, 6), rng.uniform(0.0, 0.05)
        log = log_dir / f"attempt{number:02d}.log"
        start_id = last_request_id(sandbox)
        if number > 1 and (number > kill_attempts or kill_draw >= kill_probability):
            attempt = _attempt(number, "run to the end", command, env, log, _wait)
        elif number > 1 and mode_draw < 0.5:
            attempt = _attempt(number, f"kill after {delay:.2f}s", command, env, log,
                               lambda proc, delay=delay: _kill_after_delay(proc, delay))
        else:
            attempt = _attempt(number, f"kill {jitter * 1000:.0f}ms after write #{writes}", command, env, log,
                               lambda proc, n=writes, j=jitter, s=start_id: _kill_after_writes(
                                   proc, sandbox, vendor, s, n, j))
        attempt.writes = count_writes_since(sandbox, vendor, start_id)
        attempts.append(attempt)
        if not attempt.killed and attempt.returncode == 0:
            return attempts
    raise AssertionError("the sync never finished cleanly:\n" + "\n".join(
        f"{attempt}\n{attempt.output}" for attempt in attempts))


def _attempt(number: int, plan: str, command: Sequence[str], env: dict[str, str], log: Path,
             drive: Callable[[subprocess.Popen], bool]) -> Attempt:
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(list(command), env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            killed = drive(proc)
        finally:
            if proc.poll() is None:  # a failing assertion must not leave the process behind
                proc.kill()
                proc.wait()
    output = log.read_text(errors="replace")[-3000:]
    return Attempt(number, plan, killed, proc.returncode, time.monotonic() - started, output)


def _wait(proc: subprocess.Popen, timeout: float = 120.0) -> bool:
    proc.wait(timeout=timeout)
    return False


def _kill(proc: subprocess.Popen) -> bool:
    if proc.poll() is not None:
        return False  # it finished first
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def _kill_after_delay(proc: subprocess.Popen, delay: float) -> bool:
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        return _kill(proc)


def _kill_after_writes(proc: subprocess.Popen, sandbox: RunningSandbox, vendor: str, after_id: int, writes: int,
                       jitter: float, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if count_writes_since(sandbox, vendor, after_id) >= writes:
            time.sleep(jitter)
            return _kill(proc)
        time.sleep(0.01)
    return _kill(proc)


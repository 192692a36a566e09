"""Pacing shared by every sender thread of one destination: a token bucket plus a destination-wide pause.

Some vendors limit a credential rather than a client: Mailchimp allows 10 simultaneous connections
per API key, across every client of that key. :func:`credential_slots` gives every client of one
credential in the process the same semaphore, so two syncs to the same account never exceed it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["TokenBucket", "credential_slots"]

_CREDENTIAL_SLOTS: dict[tuple[str, str], threading.BoundedSemaphore] = {}
_CREDENTIAL_SLOTS_LOCK = threading.Lock()


def credential_slots(vendor: str, credential: str, limit: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore of ``limit`` slots shared by every client of ``credential`` at ``vendor``.

    The first caller for a credential sets its limit (the vendor's, the same for every caller). The
    credential is kept only as a SHA-256 digest, so the registry holds no secret.

    :param vendor: the vendor whose limit this is, e.g. ``mailchimp``.
    :param credential: the API key or token the vendor counts connections by.
    :param limit: simultaneous requests the vendor allows per credential.
    """
    key = (vendor, hashlib.sha256(credential.encode("utf-8")).hexdigest())
    with _CREDENTIAL_SLOTS_LOCK:
        slots = _CREDENTIAL_SLOTS.get(key)
        if slots is None:
            slots = _CREDENTIAL_SLOTS[key] = threading.BoundedSemaphore(max(limit, 1))
        return slots


class TokenBucket:
    """Thread-safe token bucket plus a destination-wide pause.

    :param rate: tokens added per second; ``None`` disables rate limiting (pauses still apply).
    :param burst: bucket capacity.
    :param clock: monotonic clock, injectable for tests.
    :param sleep: sleep function, injectable for tests.
    """

    def __init__(
        self,
        rate: float | None,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rate = rate
        self._capacity = float(max(burst, 1))
        self._tokens = self._capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def pause_for(self, seconds: float) -> None:
        """Hold every caller of :meth:`acquire` back for ``seconds`` from now (never shortens a pause)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def acquire(self) -> float:
        """Block until a request may start; return the seconds spent waiting."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                delay = self._paused_until - now
                if delay <= 0:
                    if self._rate is None:
                        return waited
                    self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
                    self._updated = now
                    if self._tokens >= 1.0:
                        self._tokens -= 1.0
                        return waited
                    delay = (1.0 - self._tokens) / self._rate
            self._sleep(delay)
            waited += delay

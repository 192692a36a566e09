"""Seeded, reproducible fault injection for the sandbox vendors.

Every request to a vendor asks a :class:`FaultInjector` for a :class:`FaultDecision`
*before* the vendor touches any state, so a request that was rate limited, failed
with a 5xx or was dropped changed nothing.

Reproducibility: each vendor draws from its own ``random.Random`` seeded with
``"<seed>:<vendor>"``, and every decision draws the same four numbers whatever the
configuration, so the n-th request to a vendor meets the same fate in every run
with the same seed (sequential clients; concurrent clients interleave as they will).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


@dataclass(frozen=True)
class RateLimit:
    """A rolling window: at most ``max_requests`` admitted per ``window_seconds``.

    :param max_requests: requests admitted in any window.
    :param window_seconds: the window's length in seconds.
    """

    max_requests: int
    window_seconds: float

    def __post_init__(self) -> None:
        if self.max_requests < 1:
            raise ValueError(f"rate_limit.max_requests must be at least 1, got {self.max_requests}")
        if self.window_seconds <= 0:
            raise ValueError(f"rate_limit.window_seconds must be positive, got {self.window_seconds}")


@dataclass(frozen=True)
class VendorFaults:
    """The faults one vendor injects.

    :param rate_limit: rolling-window limit answered with 429 (with ``Retry-After`` where the vendor sends
        one); None for none.
    :param daily_limit: requests admitted per UTC calendar day (HubSpot's daily limit), answered with the
        vendor's 429 past it until the next day; None for none. Clients see it (HubSpot's ``-Daily``
        headers, the ``DAILY`` policy) alongside ``rate_limit``, which HubSpot always has.
    :param error_rate: fraction of requests answered with a 5xx drawn from ``error_statuses``.
    :param error_statuses: the 5xx statuses to draw from.
    :param slow_rate: fraction of requests delayed by ``slow_seconds`` before being served.
    :param slow_seconds: the delay of a slow request.
    :param drop_rate: fraction of requests whose connection is closed without an answer.
    """

    rate_limit: RateLimit | None = None
    daily_limit: int | None = None
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 502, 503, 504)
    slow_rate: float = 0.0
    slow_seconds: float = 0.5
    drop_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("error_rate", "slow_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a fraction between 0 and 1, got {value}")
        if not self.error_statuses or any(not 500 <= status <= 599 for status in self.error_statuses):
            raise ValueError(f"error_statuses must be 5xx statuses, got {list(self.error_statuses)}")
        if self.slow_seconds < 0:
            raise ValueError(f"slow_seconds must not be negative, got {self.slow_seconds}")
        if self.daily_limit is not None and (isinstance(self.daily_limit, bool) or not isinstance(
                self.daily_limit, int) or self.daily_limit < 1):
            raise ValueError(f"daily_limit must be a whole number of at least 1 or null, got {self.daily_limit!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: VendorFaults | None = None) -> VendorFaults:
        """Build from JSON, each key overriding ``base`` (the defaults when None).

        :param data: keys among this class's fields; ``rate_limit`` is an object or null.
        :param base: the settings the keys override.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s) {unknown}; expected some of {sorted(known)}")
        values = dict(data)
        if "rate_limit" in values and values["rate_limit"] is not None:
            values["rate_limit"] = RateLimit(**values["rate_limit"])
        if "error_statuses" in values:
            values["error_statuses"] = tuple(int(status) for status in values["error_statuses"])
        return replace(base or cls(), **values)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, the inverse of :meth:`from_dict`."""
        return {
            "rate_limit": None
            if self.rate_limit is None
            else {"max_requests": self.rate_limit.max_requests, "window_seconds": self.rate_limit.window_seconds},
            "daily_limit": self.daily_limit,
            "error_rate": self.error_rate,
            "error_statuses": list(self.error_statuses),
            "slow_rate": self.slow_rate,
            "slow_seconds": self.slow_seconds,
            "drop_rate": self.drop_rate,
        }


class FaultKind(Enum):
    """What happens to a request."""

    NONE = "none"
    RATE_LIMITED = "rate_limited"
    ERROR = "error"
    SLOW = "slow"
    DROP = "drop"


@dataclass(frozen=True)
class FaultDecision:
    """The fate of one request.

    :param kind: the fault, or ``NONE``.
    :param status: the 5xx status of an ``ERROR``.
    :param delay: seconds to wait first, for ``SLOW``.
    :param retry_after: whole seconds until the window admits a request again, for ``RATE_LIMITED``.
    :param daily: a ``RATE_LIMITED`` request was refused by the daily limit, not the window.
    """

    kind: FaultKind
    status: int | None = None
    delay: float = 0.0
    retry_after: int | None = None
    daily: bool = False


@dataclass(frozen=True)
class WindowUsage:
    """A vendor's rate-limit window as a client sees it (HubSpot reports it in headers).

    :param max_requests: requests admitted per window.
    :param remaining: requests still admitted in the current window.
    :param window_seconds: the window's length.
    :param last_second: requests admitted in the last second.
    :param daily_max: requests admitted per day, or None without a daily limit.
    :param daily_remaining: requests still admitted today, or None without a daily limit.
    """

    max_requests: int
    remaining: int
    window_seconds: float
    last_second: int
    daily_max: int | None = None
    daily_remaining: int | None = None


@dataclass
class _VendorState:
    faults: VendorFaults
    rng: random.Random
    admitted: deque[float] = field(default_factory=deque)
    day: int = 0
    admitted_today: int = 0


class FaultInjector:
    """Decides, per vendor and request, which fault (if any) to inject.

    :param faults: the settings per vendor; vendors not named inject nothing.
    :param seed: seed of the per-vendor random sequences.
    :param clock: monotonic clock, replaceable in tests.
    :param wall_clock: seconds since the epoch, for the daily limit's UTC day; replaceable in tests.
    """

    def __init__(
        self, faults: Mapping[str, VendorFaults], seed: int, clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._wall_clock = wall_clock
        self._seed = seed
        self._vendors: dict[str, _VendorState] = {}
        self.reconfigure(faults, seed)

    @property
    def seed(self) -> int:
        """The seed in force."""
        return self._seed

    def faults(self) -> dict[str, VendorFaults]:
        """The settings in force, per vendor."""
        with self._lock:
            return {vendor: state.faults for vendor, state in self._vendors.items()}

    def reconfigure(self, faults: Mapping[str, VendorFaults], seed: int | None = None) -> None:
        """Replace the settings of the vendors named; a new seed restarts every random sequence.

        A vendor whose rate limit changes starts with an empty window.

        :param faults: new settings per vendor.
        :param seed: new seed, or None to keep the sequences where they are.
        """
        with self._lock:
            if seed is not None:
                self._seed = seed
                for vendor, reseeded in self._vendors.items():
                    reseeded.rng = random.Random(f"{seed}:{vendor}")
            for vendor, settings in faults.items():
                current = self._vendors.get(vendor)
                if current is None:
                    self._vendors[vendor] = _VendorState(settings, random.Random(f"{self._seed}:{vendor}"))
                else:
                    if settings.rate_limit != current.faults.rate_limit:
                        current.admitted.clear()
                    current.faults = settings

    def decide(self, vendor: str) -> FaultDecision:
        """The fate of the vendor's next request; counts it in the rate-limit window when admitted.

        :param vendor: the vendor the request is for.
        """
        with self._lock:
            state = self._vendors.get(vendor)
            if state is None:
                return FaultDecision(FaultKind.NONE)
            settings = state.faults
            # Always draw the same four numbers so a request's fate does not depend on the settings
            # of the faults it did not meet.
            drop_draw, error_draw, slow_draw, status_draw = (state.rng.random() for _ in range(4))
            if self._daily_spent(state, settings.daily_limit):  # refused: counted in no window
                return FaultDecision(FaultKind.RATE_LIMITED, retry_after=self._seconds_to_next_day(), daily=True)
            retry_after = self._admit(state, settings.rate_limit)
            if retry_after is not None:
                return FaultDecision(FaultKind.RATE_LIMITED, retry_after=retry_after)
            state.admitted_today += 1
            if drop_draw < settings.drop_rate:
                return FaultDecision(FaultKind.DROP)
            if error_draw < settings.error_rate:
                statuses = settings.error_statuses
                return FaultDecision(FaultKind.ERROR, status=statuses[int(status_draw * len(statuses))])
            if slow_draw < settings.slow_rate:
                return FaultDecision(FaultKind.SLOW, delay=settings.slow_seconds)
            return FaultDecision(FaultKind.NONE)

    def window_usage(self, vendor: str) -> WindowUsage | None:
        """The vendor's rate-limit window now; None when it has no rate limit.

        :param vendor: the vendor.
        """
        with self._lock:
            state = self._vendors.get(vendor)
            if state is None or state.faults.rate_limit is None:
                return None
            limit = state.faults.rate_limit
            now = self._clock()
            self._expire(state, limit, now)
            last_second = sum(1 for admitted_at in state.admitted if admitted_at > now - 1.0)
            daily = state.faults.daily_limit
            if daily is not None:
                self._daily_spent(state, daily)  # rolls the day over
            return WindowUsage(
                max_requests=limit.max_requests,
                remaining=max(0, limit.max_requests - len(state.admitted)),
                window_seconds=limit.window_seconds,
                last_second=last_second,
                daily_max=daily,
                daily_remaining=None if daily is None else max(0, daily - state.admitted_today),
            )

    def _daily_spent(self, state: _VendorState, limit: int | None) -> bool:
        """Whether today's requests reached ``limit``; a new UTC day starts the count again."""
        if limit is None:
            return False
        today = int(self._wall_clock() // 86400)
        if today != state.day:
            state.day, state.admitted_today = today, 0
        return state.admitted_today >= limit

    def _seconds_to_next_day(self) -> int:
        now = self._wall_clock()
        return max(1, math.ceil((now // 86400 + 1) * 86400 - now))

    def _admit(self, state: _VendorState, limit: RateLimit | None) -> int | None:
        """Count the request in the window; the Retry-After seconds when the window is full."""
        if limit is None:
            return None
        now = self._clock()
        self._expire(state, limit, now)
        if len(state.admitted) >= limit.max_requests:
            return max(1, math.ceil(state.admitted[0] + limit.window_seconds - now))
        state.admitted.append(now)
        return None

    @staticmethod
    def _expire(state: _VendorState, limit: RateLimit, now: float) -> None:
        while state.admitted and state.admitted[0] <= now - limit.window_seconds:
            state.admitted.popleft()

"""Transport settings of one destination: timeouts, retries, pacing and rate-limit budgets."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow_segprovider.destinations.config import ConfigReader

__all__ = ["HttpSettings"]


@dataclass(frozen=True)
class HttpSettings:
    """Transport settings of one destination; every field can be overridden from its config.

    :param base_url: scheme, host and path prefix every request path is appended to.
    :param connect_timeout: seconds to establish a connection.
    :param read_timeout: seconds to wait for the response after sending.
    :param max_attempts: attempts per request for 5xx, timeouts and connection errors.
    :param backoff_base: first backoff ceiling in seconds; doubles every attempt (full jitter).
    :param backoff_max: cap of one backoff, in seconds.
    :param requests_per_second: token bucket refill rate; ``None`` means unlimited.
    :param burst: token bucket capacity: requests that may start back to back.
    :param max_concurrency: simultaneous requests, across all threads, for this destination.
    :param max_rate_limit_waits: how many rate-limit waits one request may sit through.
    :param max_rate_limit_wait_seconds: total seconds one request may spend waiting on rate limits.
    :param default_rate_limit_wait: seconds to wait on a rate limit that gives no ``Retry-After``.
    """

    base_url: str
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    requests_per_second: float | None = None
    burst: int = 1
    max_concurrency: int = 4
    max_rate_limit_waits: int = 20
    max_rate_limit_wait_seconds: float = 600.0
    default_rate_limit_wait: float = 10.0

    def overridden_by(self, reader: ConfigReader) -> HttpSettings:
        """Return these settings with the overrides found in a destination's config applied.

        :param reader: the destination's config; its field errors name the destination.
        """
        changes: dict[str, Any] = {}
        base_url = reader.optional_str("base_url")
        if base_url is not None:
            parts = urlsplit(base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                reader.fail("base_url", f"base_url must be an http(s) URL, got {base_url!r}")
            changes["base_url"] = base_url
        for name in (
            "connect_timeout",
            "read_timeout",
            "backoff_base",
            "backoff_max",
            "max_rate_limit_wait_seconds",
            "default_rate_limit_wait",
        ):
            value = reader.optional_float(name, minimum=0.0)
            if value is not None:
                changes[name] = value
        rate = reader.optional_float("requests_per_second", minimum=0.001)
        if rate is not None:
            changes["requests_per_second"] = rate
        for name in ("max_attempts", "burst", "max_concurrency"):
            value_int = reader.optional_int(name, minimum=1)
            if value_int is not None:
                changes[name] = value_int
        waits = reader.optional_int("max_rate_limit_waits", minimum=0)
        if waits is not None:
            changes["max_rate_limit_waits"] = waits
        return replace(self, **changes)

"""How a vendor says "slow down", "try again" or "no": the part of HTTP handling that differs per vendor.

Connectors subclass :class:`ResponsePolicy`; the retry loop in
:mod:`airflow_segprovider.destinations.http.client` exists once and asks the policy.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests

__all__ = ["RateLimited", "ResponsePolicy", "parse_retry_after"]


@dataclass(frozen=True)
class RateLimited:
    """A response that means "too many requests", as a vendor says it.

    :param wait: seconds the vendor asked us to wait, or ``None`` when it did not say.
    :param give_up: waiting inside this run cannot help (e.g. a daily quota is spent).
    :param reason: the vendor's words, for the log line and the error.
    :param limit: the name of the limit hit, as the vendor names it (e.g. HubSpot's ``DAILY``), if it says.
    :param hint: what to do about a limit no wait helps with (``give_up``).
    """

    wait: float | None
    give_up: bool = False
    reason: str = "rate limited"
    limit: str = ""
    hint: str = ""


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

    :param value: the header value, or ``None``.
    :param now: the current time, injectable for tests.
    :return: seconds (never negative), or ``None`` when absent or unreadable.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class ResponsePolicy:
    """How a vendor signals rate limits, transient failures and errors; plain HTTP semantics by default."""

    def rate_limit(self, response: requests.Response) -> RateLimited | None:
        """Return a :class:`RateLimited` when the response asks us to slow down, else ``None``."""
        if response.status_code != 429:
            return None
        return RateLimited(wait=parse_retry_after(response.headers.get("Retry-After")))

    def pace(self, response: requests.Response) -> float:
        """Seconds to pause the destination after this (accepted) response, from vendor quota headers."""
        return 0.0

    def is_transient(self, response: requests.Response) -> bool:
        """Whether a non-2xx response may succeed when repeated."""
        return response.status_code >= 500 or response.status_code == 408

    def is_auth_failure(self, response: requests.Response) -> bool:
        """Whether the response refuses our credentials or their permissions."""
        return response.status_code in (401, 403)

    def error_detail(self, response: requests.Response) -> str:
        """The vendor's explanation of a failed request, from its error body."""
        try:
            payload = response.json()
        except ValueError:
            return ""
        if isinstance(payload, dict):
            for key in ("detail", "message", "error_description", "error", "title"):
                value = payload.get(key)
                if isinstance(value, str) and value:
                    return value
                if isinstance(value, dict) and isinstance(value.get("message"), str):
                    return value["message"]
        return ""

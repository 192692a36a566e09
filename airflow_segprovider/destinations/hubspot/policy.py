"""How HubSpot says "slow down": 429 bodies naming the limit hit, and quota headers to pace by."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_segprovider.destinations.http import RateLimited, ResponsePolicy, parse_retry_after

if TYPE_CHECKING:
    import requests

__all__ = ["HubSpotResponsePolicy"]


class HubSpotResponsePolicy(ResponsePolicy):
    """HubSpot's rate-limit headers and 429 bodies.

    :param low_water: when ``X-HubSpot-RateLimit-Remaining`` drops to this many
        requests or fewer, pause so that the rolling window can refill.
    """

    def __init__(self, low_water: int = 5) -> None:
        self.low_water = low_water

    def rate_limit(self, response: requests.Response) -> RateLimited | None:
        if response.status_code != 429:
            return None
        try:
            body = response.json()
        except ValueError:
            body = {}
        policy = str(body.get("policyName", "")) if isinstance(body, dict) else ""
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        reason = f"{policy or 'rate limit'}: {message}".rstrip(": ")
        if policy.upper() == "DAILY":
            # The daily quota resets at midnight in the account's time zone: no wait inside a run helps.
            return RateLimited(wait=None, give_up=True, reason=reason)
        wait = parse_retry_after(response.headers.get("Retry-After"))
        if wait is None:
            wait = self._interval_seconds(response)
        return RateLimited(wait=wait, reason=reason)

    def pace(self, response: requests.Response) -> float:
        remaining = response.headers.get("X-HubSpot-RateLimit-Remaining")
        interval = self._interval_seconds(response)
        if remaining is None or interval is None:
            return 0.0
        try:
            left = int(remaining)
        except ValueError:
            return 0.0
        if left > self.low_water:
            return 0.0
        # The window is rolling: the emptier it is, the longer we wait; a full interval at zero.
        return interval * (self.low_water + 1 - max(left, 0)) / (self.low_water + 1)

    @staticmethod
    def _interval_seconds(response: requests.Response) -> float | None:
        value = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        try:
            return int(value) / 1000.0 if value is not None else None
        except ValueError:
            return None

    def error_detail(self, response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return ""
        if not isinstance(body, dict):
            return ""
        message = str(body.get("message", ""))
        category = body.get("category")
        return f"{category}: {message}" if category else message

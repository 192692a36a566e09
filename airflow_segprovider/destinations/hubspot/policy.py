"""How HubSpot says "slow down": 429 bodies naming the limit hit, and quota headers to pace by.

As HubSpot documents it (https://developers.hubspot.com/docs/api/usage-details): a 429 carries no
``Retry-After``; its body's ``policyName`` names the limit (``TEN_SECONDLY_ROLLING`` for the burst limit,
``DAILY`` for the daily one), and responses carry ``X-HubSpot-RateLimit-Max``, ``-Remaining`` and
``-Interval-Milliseconds`` (the rolling window) and ``X-HubSpot-RateLimit-Daily`` and ``-Daily-Remaining``.
A burst 429 waits out the window the headers give (a full interval: every request counted in a rolling
window has left it by then); a daily 429 is terminal for today (the quota resets at midnight in the
account's time zone), and the error names the limit and its size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_segprovider.destinations.http import RateLimited, ResponsePolicy, parse_retry_after

if TYPE_CHECKING:
    import requests

__all__ = ["HubSpotResponsePolicy"]


class HubSpotResponsePolicy(ResponsePolicy):
    """HubSpot's rate-limit headers and 429 bodies.

    :param low_water: when ``X-HubSpot-RateLimit-Remaining`` drops to this many
        requests or fewer, pause so that the rolling window can refill: one slot of the window
        (``-Interval-Milliseconds`` over ``-Max``) for each request below ``low_water + 1``. The
        client's own pace (the connection's tier) leaves a few requests of every window unused, so
        this only slows it down when other apps of the account spend the same quota.
    """

    def __init__(self, low_water: int = 1) -> None:
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
        daily = response.headers.get("X-HubSpot-RateLimit-Daily")
        if policy.upper() == "DAILY" or response.headers.get("X-HubSpot-RateLimit-Daily-Remaining") == "0":
            # The daily quota resets at midnight in the account's time zone: no wait inside a run helps.
            size = f" of {daily} requests" if daily else ""
            return RateLimited(
                wait=None, give_up=True, limit="DAILY",
                reason=f"HubSpot's daily API limit{size} (X-HubSpot-RateLimit-Daily) is spent for today: {reason}",
                hint="the daily limit resets at midnight in the HubSpot account's time zone: rerun then (what was "
                     "acknowledged is kept, the rerun sends the rest), or raise the account's limit (API limit "
                     "increase) and set the connection's tier")
        # HubSpot sends no Retry-After (an explicit one still wins); wait out the window the headers give
        wait = parse_retry_after(response.headers.get("Retry-After"))
        if wait is None:
            wait = self._interval_seconds(response)
        return RateLimited(wait=wait, reason=reason, limit=policy)

    def pace(self, response: requests.Response) -> float:
        remaining = response.headers.get("X-HubSpot-RateLimit-Remaining")
        interval = self._interval_seconds(response)
        if remaining is None or interval is None:
            return 0.0
        try:
            left = int(remaining)
            most = int(response.headers.get("X-HubSpot-RateLimit-Max") or 0)
        except ValueError:
            return 0.0
        if left > self.low_water:
            return 0.0
        # The window is rolling: a slot frees about every interval / max seconds; wait a slot for each request
        # missing (a pause of a whole interval at every low reading would idle a client paced to the tier)
        slot = interval / most if most > 0 else interval / (self.low_water + 1)
        return slot * (self.low_water + 1 - max(left, 0))

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

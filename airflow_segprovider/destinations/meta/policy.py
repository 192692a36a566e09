"""How Meta says "slow down", "try again" or "no": Graph error codes and the Business Use Case usage header."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_segprovider.destinations.http import RateLimited, ResponsePolicy, parse_retry_after

if TYPE_CHECKING:
    import requests

__all__ = ["AUTH_CODES", "THROTTLING_CODES", "TRANSIENT_CODES", "MetaResponsePolicy", "regain_access_seconds"]

THROTTLING_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
TRANSIENT_CODES = frozenset({1, 2})
AUTH_CODES = frozenset({10, 102, 190})


def graph_error(response: requests.Response) -> dict[str, Any]:
    """The ``error`` object of a Graph answer; empty when there is none."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def regain_access_seconds(response: requests.Response) -> float | None:
    """The longest ``estimated_time_to_regain_access`` (minutes) in ``X-Business-Use-Case-Usage``, in seconds."""
    header = response.headers.get("X-Business-Use-Case-Usage")
    if not header:
        return None
    try:
        usage = json.loads(header)
    except ValueError:
        return None
    minutes = [
        entry.get("estimated_time_to_regain_access")
        for entries in (usage.values() if isinstance(usage, dict) else [])
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, dict)
    ]
    numbers = [float(m) for m in minutes if isinstance(m, (int, float))]
    return max(numbers) * 60.0 if numbers else None


class MetaResponsePolicy(ResponsePolicy):
    """Graph API error codes decide what a failure means, whatever the HTTP status says."""

    def rate_limit(self, response: requests.Response) -> RateLimited | None:
        error = graph_error(response)
        if response.status_code != 429 and error.get("code") not in THROTTLING_CODES:
            return None
        wait = regain_access_seconds(response)
        if not wait:
            wait = parse_retry_after(response.headers.get("Retry-After"))
        return RateLimited(wait=wait, reason=f"code {error.get('code')}: {error.get('message', 'throttled')}")

    def pace(self, response: requests.Response) -> float:
        return regain_access_seconds(response) or 0.0

    def is_transient(self, response: requests.Response) -> bool:
        error = graph_error(response)
        return (
            super().is_transient(response) or error.get("code") in TRANSIENT_CODES or error.get("is_transient") is True
        )

    def is_auth_failure(self, response: requests.Response) -> bool:
        code = graph_error(response).get("code")
        return (
            super().is_auth_failure(response)
            or code in AUTH_CODES
            or (isinstance(code, int) and 200 <= code < 300)  # the permission error family
        )

    def error_detail(self, response: requests.Response) -> str:
        error = graph_error(response)
        if not error:
            return ""
        text = str(error.get("error_user_msg") or error.get("message") or "")
        codes = f"code {error.get('code')}"
        if error.get("error_subcode"):
            codes += f", subcode {error['error_subcode']}"
        return f"{text} ({codes})"

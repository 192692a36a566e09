"""How Mailchimp explains a failed request."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_segprovider.destinations.http import ResponsePolicy

if TYPE_CHECKING:
    import requests

__all__ = ["MailchimpResponsePolicy"]


class MailchimpResponsePolicy(ResponsePolicy):
    """Mailchimp errors are RFC 7807 problem documents, with per-field ``errors`` on validation failures."""

    def error_detail(self, response: requests.Response) -> str:
        try:
            problem = response.json()
        except ValueError:
            return ""
        if not isinstance(problem, dict):
            return ""
        parts = [str(problem[key]) for key in ("title", "detail") if problem.get(key)]
        for field_error in problem.get("errors") or []:
            if isinstance(field_error, dict):
                parts.append(f"{field_error.get('field', '?')}: {field_error.get('message', '')}")
        return "; ".join(parts)

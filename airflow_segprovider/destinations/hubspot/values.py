"""How our identities, attributes and timestamps look on HubSpot's side."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

__all__ = ["normalize_email", "parse_timestamp", "property_value"]


def normalize_email(email: str) -> str:
    """An address as HubSpot matches it: HubSpot stores and matches contact emails case-insensitively."""
    return email.strip().lower()


def property_value(value: Any) -> str:
    """A property value as HubSpot takes it (strings); ``None`` clears the property."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def parse_timestamp(value: Any) -> datetime | None:
    """A HubSpot ISO 8601 timestamp (``Z`` suffix allowed), or ``None`` when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None

"""Mailchimp's member ids and value formats: how our identities and attributes look on its side."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = ["merge_value", "normalize_email", "parse_timestamp", "subscriber_hash"]


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 hex digest of the lowercased email address."""
    return hashlib.md5(email.strip().lower().encode("utf-8")).hexdigest()  # Mailchimp's id scheme, not security


def normalize_email(email: str) -> str:
    """An address as Mailchimp matches it: trimmed and lowercased."""
    return email.strip().lower()


def merge_value(value: Any) -> Any:
    """A merge field value as Mailchimp takes it; ``None`` clears the field."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat()  # Mailchimp date merge fields hold a date, YYYY-MM-DD
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (str, int, float, dict)):
        return value  # dict: an address merge field
    return str(value)


def parse_timestamp(value: Any) -> datetime | None:
    """A Mailchimp ISO 8601 timestamp, or ``None`` when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None

"""What a Meta destination is configured with: its connection fields, limits and validated config."""

from __future__ import annotations

import re
from dataclasses import dataclass

from airflow_segprovider.destinations.config import ConnectionField, base_url_field

__all__ = ["API_VERSION_PATTERN", "CONNECTION_FIELDS", "DEFAULT_API_VERSION", "DEFAULT_MIN_MATCH_RATE",
           "FLAGGED_AUDIENCE_STATUS", "KIND", "MAX_ENTRIES_PER_CALL", "SCHEMA", "SESSIONS_READ", "MetaConfig"]

KIND = "meta"
MAX_ENTRIES_PER_CALL = 10_000
#: the schema of an upload of emails alone
SCHEMA = "EMAIL_SHA256"
DEFAULT_API_VERSION = "v25.0"
API_VERSION_PATTERN = re.compile(r"^v[0-9]+\.0$")
FLAGGED_AUDIENCE_STATUS = 471
#: The lowest share of uploaded people a healthy Meta audience matches; below it a count check fails.
DEFAULT_MIN_MATCH_RATE = 0.3
#: How many recent upload sessions a count reading looks at (one sync of 200,000 people is 20).
SESSIONS_READ = 50

CONNECTION_FIELDS = (
    ConnectionField(
        name="access_token",
        label="Access token",
        conn_attr="password",
        target="credentials",
        required=True,
        secret=True,
        description="A system user token with ads_management on the ad account that owns the audience.",
    ),
    ConnectionField(
        name="app_secret",
        label="App secret",
        conn_attr="extra",
        target="credentials",
        required=False,
        secret=True,
        description="When set, every call carries appsecret_proof (required if the app enforces it).",
    ),
    base_url_field("https://graph.facebook.com"),
    ConnectionField(
        name="api_version",
        label="Graph API version",
        conn_attr="extra",
        target="config",
        required=False,
        secret=False,
        description=f"Marketing API version, e.g. {DEFAULT_API_VERSION}.",
    ),
)


@dataclass(frozen=True)
class MetaConfig:
    """Validated configuration of one Meta destination.

    :param audience_id: the customer file custom audience.
    :param api_version: Graph API version, ``vNN.0``.
    :param connection_id: the Airflow connection holding the token, for messages.
    :param min_match_rate: the lowest share of the people sent that the audience may report matching
        before a count check calls it drift.
    """

    audience_id: str
    api_version: str
    connection_id: str | None
    min_match_rate: float = DEFAULT_MIN_MATCH_RATE


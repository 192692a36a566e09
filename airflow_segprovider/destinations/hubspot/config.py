"""What a HubSpot destination is configured with: its connection fields, limits and validated config."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_segprovider.destinations.config import ConnectionField, base_url_field

__all__ = [
    "CONNECTION_FIELDS",
    "CONTACT_OBJECT_TYPE",
    "KIND",
    "MAX_INPUTS_PER_CALL",
    "MAX_MEMBERSHIP_PAGE",
    "WRITABLE_PROCESSING_TYPES",
    "HubSpotConfig",
    "TIER_LIMITS",
    "DEFAULT_TIER",
]

KIND = "hubspot"
MAX_INPUTS_PER_CALL = 100
MAX_MEMBERSHIP_PAGE = 250
CONTACT_OBJECT_TYPE = "0-1"
WRITABLE_PROCESSING_TYPES = ("MANUAL", "SNAPSHOT")
#: requests per 10 s each HubSpot tier allows a private app (https://developers.hubspot.com/docs/api/usage-details):
#: Free and Starter 100, Professional and Enterprise 190, with the API limit increase pack 250
TIER_LIMITS = {"free": 100, "starter": 100, "professional": 190, "enterprise": 190, "api_limit_increase": 250}
#: the tier a connection without a ``tier`` extra is paced for
DEFAULT_TIER = "professional"
#: the length of HubSpot's rolling burst window, in seconds
BURST_WINDOW_SECONDS = 10.0


#: the share of a tier's limit the client paces to: the rest absorbs the jitter between a request leaving the
#: client and reaching HubSpot's rolling window, which would otherwise put a 191st request into some window
PACE_MARGIN = 0.99


def tier_pacing(tier: str) -> tuple[float, int]:
    """``(requests_per_second, burst)`` that keep every 10 s window under ``tier``'s limit: an even pace (a
    burst of 1) of 99 % of the limit (Professional's 190: 18.7 requests/s, at most 188 in any window).
    """
    limit = TIER_LIMITS[tier]
    return (limit - 1) * PACE_MARGIN / BURST_WINDOW_SECONDS, 1

CONNECTION_FIELDS = (
    ConnectionField(
        name="access_token",
        label="Private app access token",
        conn_attr="password",
        target="credentials",
        required=True,
        secret=True,
        description="Needs scopes crm.objects.contacts.read/write and crm.lists.read/write.",
    ),
    ConnectionField(
        name="tier",
        label="HubSpot tier",
        conn_attr="extra",
        target="config",
        required=False,
        secret=False,
        description="The account's API tier, which sets the request pace: free or starter (100 requests / 10 s), "
        "professional or enterprise (190, the default), api_limit_increase (250).",
    ),
    base_url_field("https://api.hubapi.com"),
)


@dataclass(frozen=True)
class HubSpotConfig:
    """Validated configuration of one HubSpot destination.

    :param list_id: the ILS list id of a MANUAL or SNAPSHOT contact list.
    :param connection_id: the Airflow connection holding the token, for messages.
    :param tier: the account's API tier (a key of :data:`TIER_LIMITS`), which the client is paced to.
    """

    list_id: str
    connection_id: str | None
    tier: str = DEFAULT_TIER

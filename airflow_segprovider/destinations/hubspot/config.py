"""What a HubSpot destination is configured with: its connection fields, limits and validated config."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_segprovider.destinations.config import ConnectionField

__all__ = [
    "CONNECTION_FIELDS",
    "CONTACT_OBJECT_TYPE",
    "KIND",
    "MAX_INPUTS_PER_CALL",
    "MAX_MEMBERSHIP_PAGE",
    "WRITABLE_PROCESSING_TYPES",
    "HubSpotConfig",
]

KIND = "hubspot"
MAX_INPUTS_PER_CALL = 100
MAX_MEMBERSHIP_PAGE = 250
CONTACT_OBJECT_TYPE = "0-1"
WRITABLE_PROCESSING_TYPES = ("MANUAL", "SNAPSHOT")

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
        name="base_url",
        label="Base URL",
        conn_attr="host",
        target="config",
        required=False,
        secret=False,
        description="Override of https://api.hubapi.com, e.g. a local sandbox.",
    ),
)


@dataclass(frozen=True)
class HubSpotConfig:
    """Validated configuration of one HubSpot destination.

    :param list_id: the ILS list id of a MANUAL or SNAPSHOT contact list.
    :param connection_id: the Airflow connection holding the token, for messages.
    """

    list_id: str
    connection_id: str | None

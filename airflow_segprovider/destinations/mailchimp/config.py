"""What a Mailchimp destination is configured with: its connection fields, limits and validated config."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_segprovider.destinations.config import ConnectionField, base_url_field

__all__ = [
    "CONNECTION_FIELDS",
    "KIND",
    "MAX_CONNECTIONS",
    "MAX_MEMBERS_PER_CALL",
    "MAX_PAGE_SIZE",
    "MEMBERSHIP_MODES",
    "MEMBER_STATUSES",
    "MailchimpConfig",
]

KIND = "mailchimp"
MAX_MEMBERS_PER_CALL = 500
MAX_CONNECTIONS = 10
MAX_PAGE_SIZE = 1000
MEMBERSHIP_MODES = ("static_segment", "tags")
MEMBER_STATUSES = ("subscribed", "pending", "transactional")

CONNECTION_FIELDS = (
    ConnectionField(
        name="api_key",
        label="API key",
        conn_attr="password",
        target="credentials",
        required=True,
        secret=True,
        description="Marketing API key, ending in its data center (e.g. …-us6).",
    ),
    base_url_field("https://<dc>.api.mailchimp.com/3.0"),
)


@dataclass(frozen=True)
class MailchimpConfig:
    """Validated configuration of one Mailchimp destination.

    :param list_id: the audience (list) id.
    :param membership: ``static_segment`` (an existing segment, by id or name) or ``tags`` (a tag, by name).
    :param segment_id: id of the static segment (``static_segment`` mode).
    :param segment_name: name of the static segment, created on first add if missing (``static_segment`` mode).
    :param tag: the tag name, created on first add if missing (``tags`` mode).
    :param member_status: status sent for members in the batch subscribe call.
    :param connection_id: the Airflow connection holding the API key, for messages.
    """

    list_id: str
    membership: str
    segment_id: str | None
    segment_name: str | None
    tag: str | None
    member_status: str
    connection_id: str | None

"""The spokes of the hybrid model: field types and attribute-only pushes.

Built on the Mailchimp and HubSpot connectors (their HTTP client, auth, rate limits and
errors); nothing here talks to a vendor any other way.

* :func:`field_types` reads what the spoke's fields are: Mailchimp merge fields
  (``GET /lists/{id}/merge-fields``: ``type`` and ``options.date_format``), HubSpot contact
  properties (``GET /crm/v3/properties/contacts``: ``type``).
* :class:`PushClient` is a connector limited to attribute updates (``upsert``): it has no
  membership target to check, reads no members and removes nobody.

The spokes' own rule-based segments are in :mod:`airflow_segprovider.destinations.spoke_segments`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.destination import FieldType, TerminalDestinationError
from airflow_segprovider.core.project.hybrid import SPOKE_KINDS, push_sync_id

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_segprovider.core.destination import BatchResult, DestinationClient, Record
    from airflow_segprovider.core.project.spec import Project, Sync

#: Config that satisfies a connector's membership settings for a client that never touches membership.
PUSH_CONFIG: dict[str, dict[str, Any]] = {
    "mailchimp": {"membership": "tags", "tag": "segprovider-hub"},
    "hubspot": {"list_id": "0"},
}


def push_overrides(project: Project, sync: Sync) -> dict[str, Any] | None:
    """:data:`PUSH_CONFIG` of the sync's destination when ``sync`` is a hub push (``hub__<destination>``), else None:
    what a connector for a push needs beyond the destination's config (an erasure builds one per sync it reaches)."""
    if sync.id != push_sync_id(sync.destination):
        return None
    return PUSH_CONFIG.get(project.destinations[sync.destination].kind)


def require_spoke_kind(client: Any) -> str:
    """The client's kind when it is a spoke (Mailchimp or HubSpot); a terminal error naming it otherwise."""
    kind = getattr(client, "kind", "")
    if kind not in SPOKE_KINDS:
        raise TerminalDestinationError(f"{kind or type(client).__name__} destinations are not spokes of the hybrid "
                                       "model (only Mailchimp and HubSpot evaluate attributes themselves)",
                                       destination=getattr(client, "name", "?"))
    return kind


def field_types(client: Any) -> dict[str, FieldType]:
    """The spoke's fields by name, with their types as its API describes them."""
    if require_spoke_kind(client) == "mailchimp":
        return {str(item.get("tag", "")).upper(): FieldType(str(item.get("tag", "")).upper(),
                                                            str(item.get("type", "text")),
                                                            (item.get("options") or {}).get("date_format"))
                for item in client.merge_fields()}
    return {str(item["name"]): FieldType(str(item["name"]), str(item.get("type", "string")))
            for item in client.contact_properties()}


class PushClient:
    """A spoke connector limited to attribute updates, for :class:`~airflow_segprovider.core.hybrid.push.AttributePushEngine`.

    :param client: the Mailchimp or HubSpot connector (owned: closed with this object).
    """

    can_read_members = False

    def __init__(self, client: DestinationClient) -> None:
        self.kind = require_spoke_kind(client)
        self.client = client
        self.name = client.name
        self.max_batch_size = client.max_batch_size

    def check(self) -> None:
        """Nothing to check beyond the fields (:meth:`check_fields` authenticates and reads them)."""

    def check_fields(self, field_names: Sequence[str]) -> None:
        self.client.check_fields(field_names)

    def upsert(self, records: Sequence[Record]) -> BatchResult:
        return self.client.upsert(records)

    def add_members(self, records: Sequence[Record]) -> BatchResult:
        # a push creates or updates contacts; it never touches a list or segment
        return self.client.upsert(records)

    def remove_members(self, records: Sequence[Record], destination_ids: Mapping[str, str] | None = None):
        raise TerminalDestinationError("an attribute push never removes anyone from a spoke", destination=self.name)

    def iter_members(self, page_size: int = 500):
        return iter(())

    def member_count(self) -> int:
        raise TerminalDestinationError("an attribute push has no member list", destination=self.name)

    def close(self) -> None:
        self.client.close()

"""The spokes of the hybrid model: field types, attribute-only pushes and rule-based segments.

Built on the Mailchimp and HubSpot connectors (their HTTP client, auth, rate limits and
errors); nothing here talks to a vendor any other way.

* :func:`field_types` reads what the spoke's fields are: Mailchimp merge fields
  (``GET /lists/{id}/merge-fields``: ``type`` and ``options.date_format``), HubSpot contact
  properties (``GET /crm/v3/properties/contacts``: ``type``).
* :class:`PushClient` is a connector limited to attribute updates (``upsert``): it has no
  membership target to check, reads no members and removes nobody.
* :func:`deploy_spoke_segment` creates or updates the spoke's own segment (a Mailchimp saved
  segment with merge-field conditions, a HubSpot DYNAMIC list with a filter branch), and
  :func:`spoke_segment_count` reads the count the spoke reports for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_segprovider.core.hybrid.hub import FieldType, hubspot_filter_branch, mailchimp_conditions
from airflow_segprovider.core.project.hybrid import SPOKE_KINDS
from airflow_segprovider.core.destination import MalformedResponseError, TerminalDestinationError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_segprovider.core.project.hybrid import Hub, SpokeSegment
    from airflow_segprovider.core.destination import BatchResult, DestinationClient, Record

#: Config that satisfies a connector's membership settings for a client that never touches membership.
PUSH_CONFIG: dict[str, dict[str, Any]] = {
    "mailchimp": {"membership": "tags", "tag": "segprovider-hub"},
    "hubspot": {"list_id": "0"},
}
MAX_PAGE = 1000


def _require_kind(client: Any) -> str:
    kind = getattr(client, "kind", "")
    if kind not in SPOKE_KINDS:
        raise TerminalDestinationError(f"{kind or type(client).__name__} destinations are not spokes of the hybrid "
                                       "model (only Mailchimp and HubSpot evaluate attributes themselves)",
                                       destination=getattr(client, "name", "?"))
    return kind


def field_types(client: Any) -> dict[str, FieldType]:
    """The spoke's fields by name, with their types as its API describes them."""
    if _require_kind(client) == "mailchimp":
        return {str(item.get("tag", "")).upper(): FieldType(str(item.get("tag", "")).upper(),
                                                            str(item.get("type", "text")),
                                                            (item.get("options") or {}).get("date_format"))
                for item in client.merge_fields()}
    return {str(item["name"]): FieldType(str(item["name"]), str(item.get("type", "string")))
            for item in client.contact_properties()}


class PushClient:
    """A spoke connector limited to attribute updates, for :class:`~airflow_segprovider.core.hybrid.hub.AttributePushEngine`.

    :param client: the Mailchimp or HubSpot connector (owned: closed with this object).
    """

    can_read_members = False

    def __init__(self, client: DestinationClient) -> None:
        self.kind = _require_kind(client)
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


# --- spoke segments ------------------------------------------------------------------------


def _mailchimp_saved(client: Any, name: str) -> dict[str, Any] | None:
    path = f"/lists/{quote(client.config.list_id, safe='')}/segments"
    offset = 0
    while True:
        page = client.http.request("GET", path, params={"type": "saved", "count": MAX_PAGE, "offset": offset},
                                   operation=f"find saved segment '{name}'").json_object()
        segments = page.get("segments") or []
        for segment in segments:
            if segment.get("name") == name:
                return segment
        offset += len(segments)
        if not segments or offset >= int(page.get("total_items") or 0):
            return None


def _hubspot_list(client: Any, name: str) -> dict[str, Any] | None:
    try:
        answer = client.http.request("GET", f"/crm/v3/lists/object-type-id/0-1/name/{quote(name, safe='')}",
                                     operation=f"find list '{name}'").json_object()
    except TerminalDestinationError as exc:
        if getattr(exc, "status", None) == 404:
            return None
        raise
    return answer.get("list") or None


def deploy_spoke_segment(client: Any, hub: Hub, spoke: SpokeSegment) -> dict[str, Any]:
    """Create the spoke's segment, or update its rule when it differs; returns ``{id, action}``.

    :raises TerminalDestinationError: a HubSpot list of that name exists but is not DYNAMIC (the
        segment would not follow its rule).
    """
    kind = _require_kind(client)
    name = spoke.spoke_name
    if kind == "mailchimp":
        options = mailchimp_conditions(spoke, hub)
        existing = _mailchimp_saved(client, name)
        path = f"/lists/{quote(client.config.list_id, safe='')}/segments"
        if existing is None:
            created = client.http.request("POST", path, json_body={"name": name, "options": options},
                                          operation=f"create saved segment '{name}'").json_object()
            return {"id": str(created["id"]), "action": "created"}
        if existing.get("options") == options:
            return {"id": str(existing["id"]), "action": "unchanged"}
        client.http.request("PATCH", f"{path}/{existing['id']}", json_body={"options": options},
                            operation=f"update saved segment '{name}'")
        return {"id": str(existing["id"]), "action": "updated"}
    branch = hubspot_filter_branch(spoke, hub)
    existing = _hubspot_list(client, name)
    if existing is None:
        created = client.http.request("POST", "/crm/v3/lists", json_body={
            "name": name, "objectTypeId": "0-1", "processingType": "DYNAMIC", "filterBranch": branch},
            operation=f"create dynamic list '{name}'").json_object()
        return {"id": str((created.get("list") or {})["listId"]), "action": "created"}
    if existing.get("processingType") != "DYNAMIC":
        raise TerminalDestinationError(
            f"list '{name}' exists with processingType {existing.get('processingType')}, not DYNAMIC",
            destination=client.name, hint=f"rename the static list, or set target.list_name of spoke segment "
            f"'{spoke.name}' to another name")
    if existing.get("filterBranch") == branch:
        return {"id": str(existing["listId"]), "action": "unchanged"}
    client.http.request("PUT", f"/crm/v3/lists/{existing['listId']}/update-list-filters",
                        json_body={"filterBranch": branch}, operation=f"update filters of list '{name}'")
    return {"id": str(existing["listId"]), "action": "updated"}


def spoke_segment_count(client: Any, spoke: SpokeSegment) -> int | None:
    """The count the spoke reports for its segment; None when the segment does not exist there."""
    kind = _require_kind(client)
    name = spoke.spoke_name
    found = _mailchimp_saved(client, name) if kind == "mailchimp" else _hubspot_list(client, name)
    if found is None:
        return None
    count = found.get("member_count") if kind == "mailchimp" else found.get("size")
    if not isinstance(count, int):
        raise MalformedResponseError(f"{kind} segment '{name}' has no integer count", destination=client.name,
                                     path=name)
    return count

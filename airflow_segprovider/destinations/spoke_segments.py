"""The spokes' own segments: a spoke rule written in each spoke's segment language, deployed and counted.

Built on the Mailchimp and HubSpot connectors (their HTTP client, auth, rate limits and
errors); nothing here talks to a vendor any other way.

* :func:`mailchimp_conditions` and :func:`hubspot_filter_branch` write a spoke segment's rule
  in each spoke's own segment language (the hub evaluates the same rule centrally:
  :func:`~airflow_segprovider.core.hybrid.spokes.spoke_count_sql`).
* :func:`deploy_spoke_segment` creates or updates the spoke's own segment (a Mailchimp saved
  segment with merge-field conditions, a HubSpot DYNAMIC list with a filter branch), and
  :func:`spoke_segment_count` reads the count the spoke reports for it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_segprovider.core.destination import MalformedResponseError, TerminalDestinationError
from airflow_segprovider.destinations.spokes import require_spoke_kind

if TYPE_CHECKING:
    from airflow_segprovider.core.project.hybrid import Hub, SpokeSegment
    from airflow_segprovider.core.project.rules import AttributeCondition

MAX_PAGE = 1000


def mailchimp_conditions(spoke: SpokeSegment, hub: Hub) -> dict[str, Any]:
    """The rule as Mailchimp segment ``options``: ``match`` and merge-field ``conditions``."""
    fields = {attr: name for name, attr in hub.push[spoke.destination].fields.items()}
    match, conditions = spoke.conditions()
    ops = {"eq": "is", "ne": "not", "gt": "greater", "lt": "less", "contains": "contains",
           "starts_with": "starts", "is_null": "blank", "is_not_null": "blank_not"}
    out = []
    for node in conditions:
        value_type = hub.attributes[node.attribute].type
        value = node.predicate.value
        condition: dict[str, Any] = {
            "condition_type": "DateMerge" if value_type == "date" else "TextMerge",
            "field": fields[node.attribute].upper(), "op": ops[node.predicate.op]}
        if node.predicate.op not in ("is_null", "is_not_null"):
            condition["value"] = (value.isoformat() if isinstance(value, dt.date) else
                                  ("true" if value else "false") if isinstance(value, bool) else str(value))
        out.append(condition)
    return {"match": match, "conditions": out}


def hubspot_filter_branch(spoke: SpokeSegment, hub: Hub) -> dict[str, Any]:
    """The rule as a HubSpot list ``filterBranch`` (an OR of AND branches, as HubSpot requires)."""
    fields = {attr: name for name, attr in hub.push[spoke.destination].fields.items()}
    match, conditions = spoke.conditions()
    filters = [_hubspot_filter(node, fields[node.attribute], hub.attributes[node.attribute].type)
               for node in conditions]
    groups = [filters] if match == "all" else [[f] for f in filters]
    return {"filterBranchType": "OR", "filters": [], "filterBranches": [
        {"filterBranchType": "AND", "filters": group, "filterBranches": []} for group in groups]}


def _hubspot_filter(node: AttributeCondition, prop: str, value_type: str) -> dict[str, Any]:
    op, value = node.predicate.op, node.predicate.value
    if op in ("is_null", "is_not_null"):
        operation: dict[str, Any] = {"operationType": "ALL_PROPERTY",
                                     "operator": "IS_UNKNOWN" if op == "is_null" else "IS_KNOWN"}
    elif value_type in ("date", "timestamp"):
        moment = value if isinstance(value, dt.datetime) else dt.datetime(value.year, value.month, value.day)
        point: dict[str, Any] = {"timeType": "DATE", "timezoneSource": "CUSTOM", "zoneId": "UTC",
                                 "year": moment.year, "month": moment.month, "day": moment.day}
        if value_type == "timestamp":
            point.update(timeType="INDEXED", hour=moment.hour, minute=moment.minute, second=moment.second)
        operation = {"operationType": "TIME_POINT", "operator": "IS_AFTER" if op == "gt" else "IS_BEFORE",
                     "timePoint": point}
    else:
        operators = {"eq": "IS_EQUAL_TO", "ne": "IS_NOT_EQUAL_TO", "gt": "IS_GREATER_THAN",
                     "gte": "IS_GREATER_THAN_OR_EQUAL_TO", "lt": "IS_LESS_THAN",
                     "lte": "IS_LESS_THAN_OR_EQUAL_TO", "contains": "CONTAINS", "starts_with": "STARTS_WITH"}
        operation_type = {"number": "NUMBER", "boolean": "BOOL"}.get(value_type, "STRING")
        operation = {"operationType": operation_type, "operator": operators[op],
                     "value": value if value_type in ("number", "boolean") else str(value)}
    operation["includeObjectsWithNoValueSet"] = False
    return {"filterType": "PROPERTY", "property": prop, "operation": operation}



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
    kind = require_spoke_kind(client)
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
    kind = require_spoke_kind(client)
    name = spoke.spoke_name
    found = _mailchimp_saved(client, name) if kind == "mailchimp" else _hubspot_list(client, name)
    if found is None:
        return None
    count = found.get("member_count") if kind == "mailchimp" else found.get("size")
    if not isinstance(count, int):
        raise MalformedResponseError(f"{kind} segment '{name}' has no integer count", destination=client.name,
                                     path=name)
    return count

"""Attribute updates of contacts the audience already holds: one ``PUT`` each, their status untouched.

Batch subscribe has no ``status_if_new``; with ``update_existing: true`` it applies ``status`` to
existing members, which would turn a ``pending`` contact into ``subscribed`` and re-subscribe one who
unsubscribed through the API. ``PUT /lists/{list_id}/members/{hash}`` with merge fields and
``status_if_new`` only updates an existing member and leaves its status as it is (the status applies
only if the contact was deleted or archived meanwhile and is added again).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.destination import BatchResult, DestinationAuthError, TerminalDestinationError
from airflow_segprovider.destinations.base import group_by_identity
from airflow_segprovider.destinations.mailchimp.refusals import rejection
from airflow_segprovider.destinations.mailchimp.values import merge_value, normalize_email, subscriber_hash

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow_segprovider.core.destination import Record
    from airflow_segprovider.destinations.http import HttpResponse

__all__ = ["update_members"]


def update_members(request: Callable[..., HttpResponse], list_path: str, list_id: str, status_if_new: str,
                   records: Sequence[Record], *, workers: int) -> BatchResult:
    """Write the records' merge fields to the contacts the audience holds, ``workers`` requests at a time.

    :param request: the connector's request function (pacing and connection slots included).
    :param list_path: ``/lists/{list_id}``, quoted.
    :param list_id: the audience id, for messages.
    :param status_if_new: the status a contact gets only if it must be added again.
    :raises DestinationAuthError: the API key was refused; other refusals of a member are rejected records.
    """
    groups = group_by_identity(records, normalize_email)
    if not groups:
        return BatchResult()

    def put(group: tuple[str, Sequence[Record]]) -> BatchResult:
        email, same = group
        member_hash = subscriber_hash(email)
        try:
            request(
                "PUT",
                f"{list_path}/members/{member_hash}",
                json_body={
                    "email_address": same[0].identity.strip(),
                    "status_if_new": status_if_new,
                    # later records of the same contact win, as they would in sequential updates
                    "merge_fields": {k: merge_value(v) for r in same for k, v in r.attributes.items()},
                },
                operation=f"update member {member_hash} of audience '{list_id}'",
                hints={404: f"no audience with list_id '{list_id}': check config.list_id"},
            )
        except DestinationAuthError:
            raise
        except TerminalDestinationError as exc:
            if exc.status != 400:
                raise
            # a 400 is about this member (a merge value, a compliance state), not about the batch
            return BatchResult(rejected=[rejection(r.key, "invalid_member", exc.message) for r in same])
        keys = [r.key for r in same]
        return BatchResult(acknowledged=keys, destination_ids=dict.fromkeys(keys, member_hash))

    result = BatchResult()
    with ThreadPoolExecutor(max_workers=max(1, min(len(groups), workers)), thread_name_prefix="mailchimp-put") as pool:
        outcomes: list[Any] = list(pool.map(put, groups.items()))
    for outcome in outcomes:
        result.merge(outcome)
    return result

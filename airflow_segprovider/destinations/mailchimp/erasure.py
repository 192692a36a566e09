"""Erasure: each contact deleted for good with ``POST .../members/{hash}/actions/delete-permanent``.

Mailchimp's permanent delete removes the member and its data from the audience; unlike an archive
(``DELETE .../members/{hash}``) the address cannot be re-imported afterwards, only re-subscribe through a
signup form (https://mailchimp.com/developer/marketing/api/list-members/delete-list-member/). The call
answers 204 with no body. A contact the audience does not hold answers 404: that person is not there,
which is what an erasure wants, so it is acknowledged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_segprovider.core.destination import BatchResult, TerminalDestinationError
from airflow_segprovider.destinations.base import group_by_identity, split_blank_identities
from airflow_segprovider.destinations.mailchimp.values import normalize_email, subscriber_hash

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow_segprovider.core.destination import Record
    from airflow_segprovider.destinations.http import HttpResponse

__all__ = ["erase_members"]


def erase_members(request: Callable[..., HttpResponse], list_path: str, list_id: str,
                  records: Sequence[Record]) -> BatchResult:
    """Delete each record's contact from the audience for good, one call per address.

    :param request: the connector's request function (pacing and connection slots included).
    :param list_path: ``/lists/{list_id}``, quoted.
    :param list_id: the audience id, for messages.
    :raises TerminalDestinationError: a refusal other than "not found" (e.g. the API key); retry the erasure.
    """
    sendable, blank = split_blank_identities(records)
    result = BatchResult(rejected=list(blank))
    for email, same in group_by_identity(sendable, normalize_email).items():
        member_hash = subscriber_hash(email)
        try:
            request("POST", f"{list_path}/members/{member_hash}/actions/delete-permanent",
                    operation=f"permanently delete member {member_hash} of audience '{list_id}'")
        except TerminalDestinationError as exc:
            if exc.status != 404:
                raise
        result.acknowledged.extend(record.key for record in same)
    return result

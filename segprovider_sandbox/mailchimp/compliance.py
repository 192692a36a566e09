"""Compliance states: the contacts Mailchimp will not let the API subscribe again, and who segments count.

Mailchimp refuses to re-subscribe (through the API) a contact that was cleaned (bounced), that
unsubscribed itself (an unsubscribe link, not the account's own API call), or that was permanently
deleted. ``PUT``/``PATCH`` answer 400 and batch subscribe reports the member in ``errors``:

* ``Member In Compliance State``: "{email} is in a compliance state due to unsubscribe, bounce, or
  compliance review and cannot be subscribed." A self-unsubscribed contact may still be set to
  ``pending`` (Mailchimp then mails a confirmation), a cleaned one may not;
* ``Forgotten Email Not Subscribed``: "{email} was permanently deleted and cannot be re-imported. The
  contact must re-subscribe to get back on the list."

The wording is Mailchimp's own, as its API returns it (quoted in public bug reports, e.g.
ibericode/mailchimp-for-wordpress#798). Mailchimp documents only two batch ``error_code`` values,
``ERROR_CONTACT_EXISTS`` (already a member, ``update_existing`` false) and ``ERROR_GENERIC``; a
compliance refusal is not "already a member", so batch subscribe reports it as ``ERROR_GENERIC``.

Segment and tag reads (``GET .../segments``, ``.../segments/{id}``, ``.../segments/{id}/members``)
count and list subscribed and pending members only, unless ``include_unsubscribed``,
``include_cleaned`` or ``include_transactional`` is ``true``; archived members never.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

    from segprovider_sandbox.wire import SandboxRequest

#: statuses a segment read shows without any ``include_*`` flag
DEFAULT_SEGMENT_STATUSES = ("subscribed", "pending")
_INCLUDE_FLAGS = (("include_unsubscribed", "unsubscribed"), ("include_cleaned", "cleaned"),
                  ("include_transactional", "transactional"))

COMPLIANCE_TITLE = "Member In Compliance State"
FORGOTTEN_TITLE = "Forgotten Email Not Subscribed"


def segment_statuses(request: SandboxRequest | None) -> tuple[str, ...]:
    """The member statuses a segment read counts and lists, given its ``include_*`` flags."""
    statuses = list(DEFAULT_SEGMENT_STATUSES)
    if request is not None:
        statuses += [status for flag, status in _INCLUDE_FLAGS
                     if (request.query_value(flag) or "").lower() == "true"]
    return tuple(statuses)


def compliance_mark(cursor: sqlite3.Cursor, list_id: str, member_hash: str) -> str | None:
    """``unsubscribed`` (self-unsubscribed), ``deleted`` (permanently deleted) or None."""
    row = cursor.execute("SELECT reason FROM mailchimp_compliance WHERE list_id = ? AND subscriber_hash = ?",
                         (list_id, member_hash)).fetchone()
    return None if row is None else str(row[0])


def set_compliance_mark(cursor: sqlite3.Cursor, list_id: str, member_hash: str, reason: str | None) -> None:
    """Record (or, with None, clear) why the API may not subscribe the contact again."""
    if reason is None:
        cursor.execute("DELETE FROM mailchimp_compliance WHERE list_id = ? AND subscriber_hash = ?",
                       (list_id, member_hash))
    else:
        cursor.execute("INSERT OR REPLACE INTO mailchimp_compliance VALUES (?, ?, ?, ?)",
                       (list_id, member_hash, reason, time.time()))


def compliance_refusal(cursor: sqlite3.Cursor, list_id: str, member_hash: str, email: str,
                       current_status: str | None, requested_status: str | None) -> tuple[str, str] | None:
    """``(title, detail)`` when Mailchimp refuses to give the contact ``requested_status``, else None.

    :param current_status: the member's status now; None when the audience has no such member.
    :param requested_status: the status asked for; None when the request leaves it as it is.
    """
    mark = compliance_mark(cursor, list_id, member_hash)
    if current_status is None and mark == "deleted":
        return FORGOTTEN_TITLE, (f"{email} was permanently deleted and cannot be re-imported. The contact must "
                                 "re-subscribe to get back on the list.")
    if requested_status is None or requested_status == current_status:
        return None
    blocked = (current_status == "cleaned" and requested_status in ("subscribed", "pending")) or (
        mark == "unsubscribed" and requested_status == "subscribed")  # also once pending: only the person confirms
    if not blocked:
        return None
    return COMPLIANCE_TITLE, (f"{email} is in a compliance state due to unsubscribe, bounce, or compliance review "
                              "and cannot be subscribed.")

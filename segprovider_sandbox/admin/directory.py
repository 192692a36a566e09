"""Every list the sandbox holds, across vendors: found by id or name, counted, and their members read.

A "list" here is whatever a vendor keeps people in: a Mailchimp audience, static segment (tag) or
saved segment; a HubSpot MANUAL or DYNAMIC list; a Meta custom audience. Counts and members are
read with the same queries the HTTP endpoints answer with, so ``segprovider sandbox lists`` shows
what a client would be told.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from segprovider_sandbox.hubspot.dynamic_lists import hubspot_dynamic_members
from segprovider_sandbox.mailchimp.saved_segments import mailchimp_saved_members

if TYPE_CHECKING:
    import sqlite3

    from segprovider_sandbox.store import SandboxState

#: The vendors that keep lists of people (the webhook receiver keeps batches).
LIST_VENDORS = ("mailchimp", "hubspot", "meta")

AUDIENCE, STATIC_SEGMENT, SAVED_SEGMENT = "audience", "static segment", "saved segment"
MANUAL_LIST, DYNAMIC_LIST, CUSTOM_AUDIENCE = "list", "dynamic list", "custom audience"
#: Kinds whose members follow a rule: they change through attributes, never by hand.
RULE_BASED = (SAVED_SEGMENT, DYNAMIC_LIST)


class AdminError(Exception):
    """A command the sandbox cannot carry out; its message names the argument at fault and says what to do."""


@dataclass(frozen=True)
class SandboxList:
    """One list of people in the sandbox.

    :param vendor: ``mailchimp``, ``hubspot`` or ``meta``.
    :param kind: one of the kind constants of this module.
    :param id: the id the vendor's API uses.
    :param name: its name.
    :param parent: the Mailchimp audience of a segment, the ad account of a Meta audience; else empty.
    """

    vendor: str
    kind: str
    id: str
    name: str
    parent: str = ""

    def label(self) -> str:
        """How messages name it, e.g. ``mailchimp static segment 1001 (vip)``."""
        return f"{self.vendor} {self.kind} {self.id} ({self.name})"


def all_lists(state: SandboxState, vendor: str | None = None) -> list[SandboxList]:
    """Every list of ``vendor`` (all vendors when None), in a stable order: by vendor, parent, then id."""
    found: list[SandboxList] = []
    with state.read() as cursor:
        if vendor in (None, "mailchimp"):
            audiences = cursor.execute("SELECT list_id, name FROM mailchimp_lists ORDER BY list_id").fetchall()
            for list_id, name in audiences:
                found.append(SandboxList("mailchimp", AUDIENCE, list_id, name))
                for kind, table in ((STATIC_SEGMENT, "mailchimp_segments"), (SAVED_SEGMENT, "mailchimp_saved_segments")):
                    rows = cursor.execute(
                        f"SELECT segment_id, name FROM {table} WHERE list_id = ? ORDER BY segment_id", (list_id,)
                    ).fetchall()
                    found += [SandboxList("mailchimp", kind, str(segment_id), segment, list_id)
                              for segment_id, segment in rows]
        if vendor in (None, "hubspot"):
            rows = cursor.execute("SELECT list_id, name, 0 FROM hubspot_lists UNION ALL"
                                  " SELECT list_id, name, 1 FROM hubspot_dynamic_lists ORDER BY 1").fetchall()
            found += [SandboxList("hubspot", DYNAMIC_LIST if dynamic else MANUAL_LIST, str(list_id), name)
                      for list_id, name, dynamic in rows]
        if vendor in (None, "meta"):
            rows = cursor.execute("SELECT audience_id, name, ad_account_id FROM meta_audiences ORDER BY audience_id")
            found += [SandboxList("meta", CUSTOM_AUDIENCE, str(audience_id), name, f"act_{account}")
                      for audience_id, name, account in rows]
    return found


def find_list(state: SandboxState, vendor: str | None, text: str) -> SandboxList:
    """The one list whose id or name is ``text`` (ids win over names).

    :param vendor: look only among this vendor's lists; all vendors when None.
    :raises AdminError: when no list, or more than one, answers to ``text``.
    """
    candidates = all_lists(state, vendor)
    by_id = [item for item in candidates if item.id == text]
    matches = by_id or [item for item in candidates if item.name == text]
    where = f"{vendor} " if vendor else ""
    if not matches:
        known = ", ".join(f"{item.id} ({item.name})" for item in candidates) or "none; run `segprovider sandbox seed`"
        raise AdminError(f"LIST {text!r}: no {where}list, segment or audience has that id or name (known: {known})")
    if len(matches) > 1:
        raise AdminError(f"LIST {text!r} is ambiguous: {'; '.join(item.label() for item in matches)}; "
                         f"give its id{'' if vendor else ' or --vendor'}")
    return matches[0]


@dataclass(frozen=True)
class ListMember:
    """One member of a list as the vendor shows it: an email (a SHA-256 hash for Meta) and, for Mailchimp, a status."""

    key: str
    status: str = ""


def list_members(state: SandboxState, item: SandboxList) -> list[ListMember]:
    """The members of ``item``, in the order the vendor's API pages them."""
    with state.read() as cursor:
        return _members(cursor, state, item)


def member_counts(state: SandboxState, item: SandboxList) -> dict[str, int]:
    """How many members ``item`` has, per status for a Mailchimp audience (``{"": n}`` otherwise)."""
    counts: dict[str, int] = {}
    for member in list_members(state, item):
        counts[member.status] = counts.get(member.status, 0) + 1
    return counts


def _members(cursor: sqlite3.Cursor, state: SandboxState, item: SandboxList) -> list[ListMember]:
    if item.kind == AUDIENCE:
        rows = cursor.execute("SELECT email_address, status FROM mailchimp_members WHERE list_id = ? ORDER BY rowid",
                              (item.id,)).fetchall()
    elif item.kind == STATIC_SEGMENT:
        rows = cursor.execute(
            "SELECT m.email_address, m.status FROM mailchimp_segment_members s JOIN mailchimp_members m"
            " ON m.list_id = ? AND m.subscriber_hash = s.subscriber_hash WHERE s.segment_id = ? ORDER BY m.rowid",
            (item.parent, int(item.id))).fetchall()
    elif item.kind == SAVED_SEGMENT:
        (options,) = cursor.execute("SELECT options FROM mailchimp_saved_segments WHERE segment_id = ?",
                                    (int(item.id),)).fetchone()
        rows = [(row[1], row[2]) for row in mailchimp_saved_members(cursor, state, item.parent, json.loads(options))]
    elif item.kind == MANUAL_LIST:
        rows = cursor.execute("SELECT c.email, '' FROM hubspot_list_members m JOIN hubspot_contacts c"
                              " ON c.id = m.contact_id WHERE m.list_id = ? ORDER BY c.id", (int(item.id),)).fetchall()
    elif item.kind == DYNAMIC_LIST:
        (branch,) = cursor.execute("SELECT filter_branch FROM hubspot_dynamic_lists WHERE list_id = ?",
                                   (int(item.id),)).fetchone()
        ids = {contact_id for contact_id, _ in hubspot_dynamic_members(cursor, json.loads(branch))}
        contacts = cursor.execute("SELECT id, email FROM hubspot_contacts ORDER BY id").fetchall()
        rows = [(email, "") for contact_id, email in contacts if contact_id in ids]
    else:
        rows = cursor.execute("SELECT hash, '' FROM meta_audience_members WHERE audience_id = ? ORDER BY hash",
                              (int(item.id),)).fetchall()
    return [ListMember(key, status) for key, status in rows]

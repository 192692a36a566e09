"""Hand edits of the sandbox's state: members in and out of lists, attributes, Mailchimp statuses.

Each edit is what a person (or the vendor itself) does outside the API: a marketer adding a contact
in Mailchimp's UI, a sales rep editing a CRM property, a reader clicking "unsubscribe", a bounce
cleaning an address. They go through the store's ``edit_*`` methods, in one SQLite transaction each,
so a sandbox serving the same file sees them on its next request; values are checked with the same
rules the vendors' endpoints apply (email shape, merge-field and property types), so the state stays
one the API could have produced. Edits are not written to the request log: no client sent them.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from segprovider_sandbox.admin.directory import (
    AUDIENCE,
    CUSTOM_AUDIENCE,
    MANUAL_LIST,
    RULE_BASED,
    STATIC_SEGMENT,
    AdminError,
    SandboxList,
    all_lists,
    find_list,
)
from segprovider_sandbox.hubspot.properties import hubspot_property_problem, property_types
from segprovider_sandbox.mailchimp.members import STATUSES
from segprovider_sandbox.mailchimp.merge_fields import mailchimp_field_specs, mailchimp_merge_problem
from segprovider_sandbox.wire import is_valid_email

if TYPE_CHECKING:
    from collections.abc import Sequence

    from segprovider_sandbox.store import SandboxState


def checked_emails(emails: Sequence[str]) -> list[str]:
    """The addresses, stripped; :class:`AdminError` naming the first one no vendor would accept."""
    stripped = [email.strip() for email in emails]
    for email in stripped:
        if not is_valid_email(email):
            raise AdminError(f"EMAIL {email!r}: not a valid email address (one @, a dotted domain)")
    return stripped


def meta_hash(email: str) -> str:
    """Meta's key of an email: the SHA-256 hex digest of the trimmed, lower-cased address."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def refuse_blocklisted_contact(state: SandboxState, email: str) -> None:
    """:class:`AdminError` for an edit that would create a HubSpot contact a GDPR delete blocklisted.

    HubSpot refuses such an address in its UI and imports (only a form, a connected inbox or the API may bring
    it back: https://knowledge.hubspot.com/privacy-and-consent/how-do-i-perform-a-gdpr-delete-in-hubspot); a
    contact the API re-created since is edited as any other.
    """
    if state.hubspot_contact(email) is None and state.hubspot_gdpr_blocklisted(email):
        raise AdminError(f"EMAIL {email!r}: HubSpot blocklisted this address when its contact was permanently "
                         "(GDPR) deleted; it cannot be added back by hand or by an import")


def editable_list(state: SandboxState, vendor: str, text: str) -> SandboxList:
    """The list ``text`` of ``vendor`` whose members can be changed by hand; :class:`AdminError` otherwise."""
    item = find_list(state, vendor, text)
    if item.kind in RULE_BASED:
        raise AdminError(f"LIST {text!r} is a {item.label()}: its members follow its rule; "
                         "change attributes with set-attribute instead")
    return item


def change_members(state: SandboxState, vendor: str, text: str, emails: Sequence[str], present: bool) -> list[str]:
    """Add (``present``) or remove people of a list, as a person would in the vendor's UI.

    A Mailchimp audience gains subscribed members (members it has keep their status) or loses them with their
    tags; a static segment (tag) or a HubSpot list gains members created when missing; a Meta audience gains or
    loses the addresses' hashes.

    :returns: one line per address saying what changed.
    """
    addresses = checked_emails(emails)
    item = editable_list(state, vendor, text)
    verb = "added to" if present else "removed from"
    if item.kind == CUSTOM_AUDIENCE:
        changed = state.edit_meta_audience(item.id, [meta_hash(email) for email in addresses], present)
        return [f"{changed} of {len(addresses)} hashed address(es) {verb} {item.label()}"]
    if present and item.kind == MANUAL_LIST:  # refused before any address is added: all or none
        for email in addresses:
            refuse_blocklisted_contact(state, email)
    lines = []
    for email in addresses:
        if item.kind == AUDIENCE:
            changed = state.edit_mailchimp_audience(item.id, email, present)
        else:
            # the store's edits create a missing member: only call them for a real change
            changed = _has_member(state, item, email) != present
            if changed and item.kind == STATIC_SEGMENT:
                state.edit_mailchimp_segment(item.parent, item.id, email, present)
            elif changed:
                state.edit_hubspot_list(item.id, email, present)
        lines.append(f"{email} {verb} {item.label()}" if changed else
                     f"{email} already {'in' if present else 'not in'} {item.label()}")
    return lines


def set_attribute(state: SandboxState, vendor: str, email: str, field: str, value: str,
                  audience: str | None = None) -> str:
    """Set a Mailchimp merge value or a HubSpot contact property of one person ('' clears it).

    :param audience: the Mailchimp audience (id or name); may be left out when only one audience has the member.
    :returns: a line saying what changed.
    """
    (email,) = checked_emails([email])
    if vendor == "meta":
        raise AdminError("VENDOR 'meta': custom audiences hold hashed emails only, no attributes")
    if vendor == "hubspot":
        types = property_types(state)
        if field not in types:
            raise AdminError(f"FIELD {field!r}: no HubSpot contact property of that name (known: {', '.join(types)})")
        problem = hubspot_property_problem(types, {field: value})
        if problem:
            raise AdminError(f"VALUE {value!r}: HubSpot refuses it for {field} ({problem[1]}: {problem[2]})")
        refuse_blocklisted_contact(state, email)
        created = state.edit_hubspot_contact(email, {field: value})
        return f"hubspot contact {email.lower()}{' (created)' if created else ''}: {field} = {value!r}"
    item = _member_audience(state, email, audience)
    specs = mailchimp_field_specs(state, item.id)
    tag = field.upper()
    if tag not in specs:
        raise AdminError(f"FIELD {field!r}: no merge field of that tag in {item.label()} (known: {', '.join(specs)})")
    problem = mailchimp_merge_problem(specs, {tag: value})
    if problem:
        raise AdminError(f"VALUE {value!r}: Mailchimp refuses it for {tag} ({problem[1]})")
    state.edit_mailchimp_member(item.id, email, merge_fields={tag: value})
    return f"{email} in {item.label()}: {tag} = {value!r}"


def set_status(state: SandboxState, text: str, email: str, status: str) -> str:
    """Set a Mailchimp member's status as Mailchimp or the person would (unsubscribe link, bounce, confirmation).

    :param text: the audience (id or name).
    :returns: a line saying what changed.
    """
    (email,) = checked_emails([email])
    if status not in STATUSES:
        raise AdminError(f"STATUS {status!r}: Mailchimp statuses are {', '.join(STATUSES)}")
    item = _audience(state, text)
    before = state.mailchimp_member(item.id, email)
    if before is None:
        raise AdminError(f"EMAIL {email!r}: not a member of {item.label()}; add it with add-member first")
    state.edit_mailchimp_member(item.id, email, status=status)
    return f"{email} in {item.label()}: {before['status']} -> {status}"


def _audience(state: SandboxState, text: str) -> SandboxList:
    item = find_list(state, "mailchimp", text)
    if item.kind != AUDIENCE:
        raise AdminError(f"LIST {text!r} is a {item.label()}: statuses and merge fields belong to its audience "
                         f"{item.parent}")
    return item


def _member_audience(state: SandboxState, email: str, audience: str | None) -> SandboxList:
    if audience is not None:
        item = _audience(state, audience)
        if state.mailchimp_member(item.id, email) is None:
            raise AdminError(f"EMAIL {email!r}: not a member of {item.label()}; add it with add-member first")
        return item
    holding = [item for item in all_lists(state, "mailchimp")
               if item.kind == AUDIENCE and state.mailchimp_member(item.id, email) is not None]
    if not holding:
        raise AdminError(f"EMAIL {email!r}: no Mailchimp audience has this member; add it with add-member first")
    if len(holding) > 1:
        raise AdminError(f"EMAIL {email!r} is in {len(holding)} audiences ({', '.join(i.id for i in holding)}): "
                         "name one with --list")
    return holding[0]


def _has_member(state: SandboxState, item: SandboxList, email: str) -> bool:
    if item.kind == STATIC_SEGMENT:
        return email.lower() in {address.lower() for address in state.mailchimp_segment_emails(item.parent, item.id)}
    if item.kind == MANUAL_LIST:
        return email.lower() in state.hubspot_list_emails(item.id)
    raise AssertionError(item.kind)  # pragma: no cover - change_members handles the other kinds

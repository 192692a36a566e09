"""HubSpot's data in the store: contacts, contact properties and MANUAL lists."""

from __future__ import annotations

import json
import time
from typing import Any

from segprovider_sandbox.store.connection import SqliteStore

# A subset of HubSpot's default contact properties: (name, label, type, fieldType, groupName).
DEFAULT_HUBSPOT_CONTACT_PROPERTIES = (
    ("email", "Email", "string", "text", "contactinformation"),
    ("firstname", "First Name", "string", "text", "contactinformation"),
    ("lastname", "Last Name", "string", "text", "contactinformation"),
    ("phone", "Phone Number", "string", "phonenumber", "contactinformation"),
    ("country", "Country/Region", "string", "text", "contactinformation"),
    ("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", "contactinformation"),
)


class HubSpotState(SqliteStore):
    """Reads, seeds and hand-edits HubSpot's data."""

    def hubspot_contact_properties(self) -> list[dict[str, Any]]:
        """The contact properties (``name``, ``label``, ``type``, ``field_type``, ``group_name``,
        ``hubspot_defined``, ``created_at``): HubSpot's defaults first, then custom ones as created."""
        with self.read() as cursor:
            rows = cursor.execute(
                "SELECT name, label, type, field_type, group_name, created_at FROM hubspot_properties ORDER BY rowid"
            ).fetchall()
        defined = {row[0] for row in rows}
        defaults = [
            {"name": name, "label": label, "type": kind, "field_type": field_type, "group_name": group,
             "hubspot_defined": True, "created_at": 0.0}
            for name, label, kind, field_type, group in DEFAULT_HUBSPOT_CONTACT_PROPERTIES
            if name not in defined
        ]
        stored = [
            {"name": row[0], "label": row[1], "type": row[2], "field_type": row[3], "group_name": row[4],
             "hubspot_defined": False, "created_at": row[5]}
            for row in rows
        ]
        return defaults + stored

    def hubspot_contact(self, email: str) -> dict[str, Any] | None:
        """A contact (``id`` and ``properties``) by email, or None.

        :param email: the address, any case.
        """
        with self.read() as cursor:
            row = cursor.execute(
                "SELECT id, properties FROM hubspot_contacts WHERE email = ?", (email.strip().lower(),)
            ).fetchone()
        return None if row is None else {"id": str(row[0]), "properties": json.loads(row[1])}

    def hubspot_gdpr_blocklisted(self, email: str) -> bool:
        """Whether a GDPR delete blocklisted the address (its contact's, or an address HubSpot did not know).

        :param email: the address, any case.
        """
        with self.read() as cursor:
            row = cursor.execute("SELECT 1 FROM hubspot_gdpr_blocklist WHERE email = ?",
                                 (email.strip().lower(),)).fetchone()
        return row is not None

    def hubspot_list_emails(self, list_id: int | str) -> set[str]:
        """Email addresses of a list's member contacts.

        :param list_id: the list.
        """
        with self.read() as cursor:
            rows = cursor.execute(
                "SELECT c.email FROM hubspot_list_members m JOIN hubspot_contacts c ON c.id = m.contact_id"
                " WHERE m.list_id = ?",
                (int(list_id),),
            )
            return {row[0] for row in rows}

    def seed_hubspot_contact_property(self, name: str, label: str, property_type: str = "string") -> None:
        """Create a custom contact property; a no-op when one of that name exists.

        :param name: the internal name, e.g. ``lifetime_value``.
        :param label: its label.
        :param property_type: ``string``, ``number``, ``date``, ``datetime``, ``enumeration`` or ``bool``.
        """
        field_types = {"number": "number", "date": "date", "datetime": "date", "bool": "booleancheckbox"}
        if name in {default[0] for default in DEFAULT_HUBSPOT_CONTACT_PROPERTIES}:
            return
        with self.write() as cursor:
            cursor.execute(
                "INSERT OR IGNORE INTO hubspot_properties (name, label, type, field_type, group_name, created_at)"
                " VALUES (?, ?, ?, ?, 'contactinformation', ?)",
                (name, label, property_type, field_types.get(property_type, "text"), time.time()),
            )

    def seed_hubspot_list(self, list_id: int | str, name: str) -> None:
        """Create an empty MANUAL contact list with a known id; a no-op when it exists.

        :param list_id: the list's numeric id.
        :param name: its name.
        """
        now = time.time()
        with self.write() as cursor:
            cursor.execute(
                "INSERT OR IGNORE INTO hubspot_lists"
                " (list_id, name, object_type_id, processing_type, created_at, updated_at)"
                " VALUES (?, ?, '0-1', 'MANUAL', ?, ?)",
                (int(list_id), name, now, now),
            )

    def edit_hubspot_list(self, list_id: int | str, email: str, present: bool, *, at: float | None = None) -> None:
        """A person adds or removes a contact of a MANUAL list in HubSpot's UI: not logged as a request.

        The contact is created when HubSpot lacks it.

        :param at: epoch seconds of the membership (its ``membershipTimestamp``); now when None.
        """
        when = time.time() if at is None else at
        with self.write() as cursor:
            row = cursor.execute("SELECT id FROM hubspot_contacts WHERE email = ?", (email.lower(),)).fetchone()
            if row is None:
                cursor.execute("INSERT INTO hubspot_contacts (email, properties, created_at, updated_at)"
                               " VALUES (?, ?, ?, ?)", (email.lower(), json.dumps({"email": email.lower()}), when, when))
                contact_id = cursor.lastrowid
            else:
                contact_id = row[0]
            if present:
                cursor.execute("INSERT INTO hubspot_list_members (list_id, contact_id, added_at) VALUES (?, ?, ?)"
                               " ON CONFLICT (list_id, contact_id) DO UPDATE SET added_at = excluded.added_at",
                               (int(list_id), contact_id, when))
            else:
                cursor.execute("DELETE FROM hubspot_list_members WHERE list_id = ? AND contact_id = ?",
                               (int(list_id), contact_id))

    def edit_hubspot_contact(self, email: str, properties: dict[str, str], *, at: float | None = None) -> bool:
        """A person sets properties of a contact in HubSpot's UI (creating the contact when missing): not logged.

        :param properties: property values as HubSpot stores them (text); merged into the contact's.
        :param at: epoch seconds of the change; now when None.
        :returns: whether the contact was created.
        """
        when = time.time() if at is None else at
        address = email.strip().lower()
        with self.write() as cursor:
            row = cursor.execute("SELECT id, properties FROM hubspot_contacts WHERE email = ?", (address,)).fetchone()
            if row is None:
                cursor.execute("INSERT INTO hubspot_contacts (email, properties, created_at, updated_at)"
                               " VALUES (?, ?, ?, ?)",
                               (address, json.dumps({**properties, "email": address}), when, when))
                return True
            merged = {**json.loads(row[1]), **properties}
            cursor.execute("UPDATE hubspot_contacts SET properties = ?, updated_at = ? WHERE id = ?",
                           (json.dumps(merged), when, row[0]))
            return False

    def hubspot_subscriptions(self, email: str) -> dict[str, str]:
        """An address's status per subscription type id (``SUBSCRIBED``/``NOT_SUBSCRIBED``; unanswered types left out).

        :param email: the address, any case.
        """
        with self.read() as cursor:
            return dict(cursor.execute("SELECT subscription_id, status FROM hubspot_subscription_statuses "
                                       "WHERE email = ?", (email.strip().lower(),)).fetchall())

    def set_hubspot_subscription(self, email: str, subscription_id: str, status: str) -> None:
        """The person's own answer for a subscription type (a form, the preference centre): not logged.

        Unlike the API, this may subscribe an address that opted out: the person opting in again.
        """
        with self.write() as cursor:
            cursor.execute("INSERT OR REPLACE INTO hubspot_subscription_statuses (email, subscription_id, status, "
                           "updated_at) VALUES (?, ?, ?, ?)", (email.strip().lower(), subscription_id, status,
                                                               time.time()))

"""The HubSpot client: contacts upserted by email, membership changed by record id in a static list."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_segprovider.core.destination import (
    BatchResult,
    Member,
    Record,
    RejectedRecord,
    TerminalDestinationError,
)
from airflow_segprovider.destinations.base import (
    HttpDestination,
    chunked,
    connection_phrase,
    group_by_identity,
    missing_fields_error,
    split_blank_identities,
)
from airflow_segprovider.destinations.config import config_readers
from airflow_segprovider.destinations.http import BearerAuth, DestinationHttpClient, HttpSettings
from airflow_segprovider.destinations.hubspot.config import (
    CONTACT_OBJECT_TYPE,
    DEFAULT_TIER,
    KIND,
    MAX_INPUTS_PER_CALL,
    MAX_MEMBERSHIP_PAGE,
    TIER_LIMITS,
    WRITABLE_PROCESSING_TYPES,
    HubSpotConfig,
    tier_pacing,
)
from airflow_segprovider.destinations.hubspot.policy import HubSpotResponsePolicy
from airflow_segprovider.destinations.hubspot.values import normalize_email, parse_timestamp, property_value

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

__all__ = ["HubSpotClient"]

_EMAIL_IN_TEXT = re.compile(r"[^\s'\"<>,;()\[\]{}=]+@[^\s'\"<>,;()\[\]{}=]+")


class HubSpotClient(HttpDestination):
    """HubSpot contacts plus one static contact list.

    :param name: the destination's name.
    :param config: validated configuration.
    :param http: the HTTP client (bearer auth, ~190 requests / 10 s).
    """

    kind = KIND
    max_batch_size = MAX_INPUTS_PER_CALL
    can_read_members = True

    def __init__(self, name: str, config: HubSpotConfig, http: DestinationHttpClient) -> None:
        super().__init__(name, http)
        self.config = config
        self._list_path = f"/crm/v3/lists/{quote(config.list_id, safe='')}"

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any], credentials: Mapping[str, Any]) -> HubSpotClient:
        """Validate ``config`` and ``credentials`` and build the client.

        :param name: the destination's name.
        :param config: ``list_id``, ``connection_id``, ``tier`` (the account's API tier, a key of
            :data:`~airflow_segprovider.destinations.hubspot.config.TIER_LIMITS`; it sets the pace unless
            ``requests_per_second``/``burst`` are given) and HTTP overrides such as ``base_url``.
        :param credentials: ``access_token``.
        :raises DestinationConfigError: a field is missing or invalid.
        """
        reader, secrets, connection_id = config_readers(name, config, credentials)
        token = secrets.required_str("access_token")
        tier = reader.choice("tier", tuple(TIER_LIMITS), DEFAULT_TIER)
        hubspot_config = HubSpotConfig(list_id=reader.required_str("list_id"), connection_id=connection_id, tier=tier)
        # e.g. 18 requests/s with a burst of 10 keeps any 10 s window at or under Professional's 190 requests
        rate, burst = tier_pacing(tier)
        settings = HttpSettings(
            base_url="https://api.hubapi.com", requests_per_second=rate, burst=burst, max_concurrency=4
        ).overridden_by(reader)
        http = DestinationHttpClient(
            destination=name,
            settings=settings,
            auth=BearerAuth(token),
            policy=HubSpotResponsePolicy(),
            auth_hint=f"check the private app access token in {connection_phrase(name, connection_id)} "
            "and that it has the crm.objects.contacts and crm.lists scopes",
        )
        return cls(name, hubspot_config, http)

    def check(self) -> None:
        """Verify the token and that the list exists, holds contacts and accepts manual membership changes."""
        answer = self.http.request(
            "GET",
            self._list_path,
            operation=f"read list '{self.config.list_id}'",
            hints={404: f"no list with id '{self.config.list_id}' in this HubSpot account: check config.list_id"},
        ).json_object()
        hub_list = answer.get("list") or {}
        processing = str(hub_list.get("processingType", ""))
        if processing not in WRITABLE_PROCESSING_TYPES:
            raise TerminalDestinationError(
                f"list '{self.config.list_id}' has processingType {processing or 'unknown'}; "
                "its members cannot be set by API",
                destination=self.name,
                hint="use a static list (processingType MANUAL or SNAPSHOT) in config.list_id",
            )
        object_type = str(hub_list.get("objectTypeId", CONTACT_OBJECT_TYPE))
        if object_type != CONTACT_OBJECT_TYPE:
            raise TerminalDestinationError(
                f"list '{self.config.list_id}' holds objects of type {object_type}, "
                f"not contacts ({CONTACT_OBJECT_TYPE})",
                destination=self.name,
                hint="point config.list_id at a contact list",
            )

    def check_fields(self, field_names: Sequence[str]) -> None:
        """Verify that each name is a contact property (by internal name, as HubSpot matches them).

        :param field_names: contact property names the records' attributes are written to.
        :raises DestinationConfigError: some names are not contact properties of the account.
        """
        if not field_names:
            return
        properties = self._contact_property_names()
        missing = [name for name in field_names if name not in properties]
        if missing:
            raise missing_fields_error(
                self.name, missing, what=("contact property", "contact properties"), where="in this HubSpot account"
            )

    def upsert(self, records: Sequence[Record]) -> BatchResult:
        """Create or update contacts by email, 100 per call; returns their HubSpot ids."""
        result = BatchResult()
        for chunk in chunked(records, MAX_INPUTS_PER_CALL):
            result.merge(self._upsert_chunk(chunk))
        return result

    def add_members(self, records: Sequence[Record]) -> BatchResult:
        """Upsert the contacts, then add their ids to the list."""
        result = BatchResult()
        for chunk in chunked(records, MAX_INPUTS_PER_CALL):
            upserted = self._upsert_chunk(chunk)
            changed = self._change_membership(upserted.destination_ids, "recordIdsToAdd")
            changed.rejected[:0] = upserted.rejected
            result.merge(changed)
        return result

    def remove_members(
        self, records: Sequence[Record], destination_ids: Mapping[str, str] | None = None
    ) -> BatchResult:
        """Remove contacts from the list by id; ids not given are looked up by email.

        Contacts HubSpot does not know are acknowledged: they are not in the list, which is the goal.
        """
        known = dict(destination_ids or {})
        result = BatchResult()
        for chunk in chunked(records, MAX_INPUTS_PER_CALL):
            sendable, rejected = split_blank_identities(chunk)
            ids = {record.key: known[record.key] for record in sendable if record.key in known}
            unknown = group_by_identity([r for r in sendable if r.key not in ids], normalize_email)
            found = self._read_ids_by_email(unknown)
            absent = []
            for email, same in unknown.items():
                for record in same:
                    if email in found:
                        ids[record.key] = found[email]
                    else:
                        absent.append(record.key)
            changed = self._change_membership(ids, "recordIdsToRemove")
            changed.acknowledged.extend(absent)
            changed.rejected[:0] = rejected
            result.merge(changed)
        return result

    def erase(self, records: Sequence[Record], destination_ids: Mapping[str, str] | None = None) -> BatchResult:
        """Delete each contact for good: ``POST /crm/v3/objects/contacts/gdpr-delete`` by e-mail, one call per address.

        By e-mail, not by the contact id ``destination_ids`` may hold: a delete by address also blocklists it
        when HubSpot does not hold it (a contact merged or deleted by hand since the sync), which a delete by id
        cannot do, and the ids add nothing an address lacks.

        HubSpot's GDPR delete removes the contact and its associations, and blocklists its address (or an address
        it does not know) (https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/gdpr/
        gdpr-delete-contact). The blocklist holds for HubSpot's UI and imports only: an API request may create
        the contact again (https://knowledge.hubspot.com/privacy-and-consent/how-do-i-perform-a-gdpr-delete-in-hubspot),
        and HubSpot answers it as any other write, so nothing here may send a forgotten person: the erasure's
        suppression and tombstone keep them out of every sync. A 404 (nothing by that address) is acknowledged.
        """
        sendable, blank = split_blank_identities(records)
        result = BatchResult(rejected=list(blank))
        for email, same in group_by_identity(sendable, normalize_email).items():
            try:
                self.http.request("POST", "/crm/v3/objects/contacts/gdpr-delete",
                                  json_body={"objectId": email, "idProperty": "email"},
                                  operation="GDPR-delete a contact by e-mail")
            except TerminalDestinationError as exc:
                if exc.status != 404:
                    raise
            result.acknowledged.extend(record.key for record in same)
        return result

    def unsubscribe(self, records: Sequence[Record]) -> BatchResult:
        """Opt each address out of every e-mail subscription type it is subscribed to (a consent removal).

        HubSpot keeps who may receive marketing e-mail in its subscription preferences, not in a list: a contact
        taken out of the list would still get the account's marketing e-mail. The v3 API (the one the official
        SDK speaks, https://developers.hubspot.com/docs/api-reference/legacy/communication-preferences/v3/guide)
        reads an address's status per subscription type and unsubscribes one type per call; only types the
        address is ``SUBSCRIBED`` to are changed, so an address that never opted in is left as it is and none
        is ever subscribed. An address HubSpot refuses is a rejected record (the engine keeps the contact and
        retries the removal and the unsubscribe on the next run); a token without the
        ``communication_preferences.read_write`` scope fails the call, naming it.
        """
        sendable, blank = split_blank_identities(records)
        result = BatchResult(rejected=list(blank))
        hints = {403: "the private app's token needs the communication_preferences.read_write scope to unsubscribe "
                      "contacts who withdrew consent"}
        for email, same in group_by_identity(sendable, normalize_email).items():
            try:
                answer = self.http.request(
                    "GET", f"/communication-preferences/v3/status/email/{quote(email, safe='')}",
                    operation="read the subscription status of a contact who withdrew consent", hints=hints,
                ).json_object()
                for status in answer.get("subscriptionStatuses") or []:
                    if status.get("status") != "SUBSCRIBED":
                        continue
                    self.http.request(
                        "POST", "/communication-preferences/v3/unsubscribe",
                        json_body={"emailAddress": email, "subscriptionId": str(status.get("id")),
                                   "legalBasisExplanation": "the contact withdrew consent"},
                        operation=f"unsubscribe a contact from subscription type {status.get('id')}", hints=hints)
            except TerminalDestinationError as exc:
                if exc.status in (401, 403) or exc.status is None:
                    raise
                if "already unsubscribed" not in (exc.body_excerpt or "") + exc.message:
                    result.rejected.extend(RejectedRecord(record.key, f"http_{exc.status}", exc.message)
                                           for record in same)
                    continue
            result.acknowledged.extend(record.key for record in same)
        return result

    def iter_members(self, page_size: int = 100) -> Iterator[Member]:
        """List members with the ``after`` cursor; emails fetched per page (at most 100 ids per read)."""
        limit = max(1, min(page_size, MAX_MEMBERSHIP_PAGE))
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if after:
                params["after"] = after
            page = self.http.request(
                "GET",
                f"{self._list_path}/memberships",
                params=params,
                operation=f"read memberships of list '{self.config.list_id}'",
            ).json_object()
            memberships = [m for m in page.get("results") or [] if m.get("recordId") is not None]
            emails: dict[str, str] = {}
            for start in range(0, len(memberships), MAX_INPUTS_PER_CALL):
                ids = [str(m["recordId"]) for m in memberships[start : start + MAX_INPUTS_PER_CALL]]
                emails.update(self._read_emails_by_id(ids))
            for membership in memberships:
                record_id = str(membership["recordId"])
                yield Member(
                    identity=emails.get(record_id, ""),
                    destination_id=record_id,
                    last_changed=parse_timestamp(membership.get("membershipTimestamp")),
                )
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after or not memberships:
                return

    def member_count(self) -> int:
        """The list's ``size`` as HubSpot reports it; counted by paging when it does not."""
        hub_list = (
            self.http.request("GET", self._list_path, operation=f"read list '{self.config.list_id}'")
            .json_object()
            .get("list")
            or {}
        )
        size = hub_list.get("size")
        if isinstance(size, int):
            return size
        return sum(1 for _ in self.iter_members(MAX_MEMBERSHIP_PAGE))

    def _upsert_chunk(self, chunk: Sequence[Record]) -> BatchResult:
        sendable, rejected = split_blank_identities(chunk)
        groups = group_by_identity(sendable, normalize_email)
        if not groups:
            return BatchResult(rejected=rejected)
        inputs = [
            {
                "idProperty": "email",
                "id": email,
                "properties": {
                    **{k: property_value(v) for r in same for k, v in r.attributes.items()},
                    "email": email,
                },
            }
            for email, same in groups.items()
        ]
        answer = self.http.request(
            "POST",
            "/crm/v3/objects/contacts/batch/upsert",
            json_body={"inputs": inputs},
            operation=f"upsert {len(inputs)} contacts",
        ).json_object()

        ids: dict[str, str] = {}
        for contact in answer.get("results") or []:
            email = (contact.get("properties") or {}).get("email")
            if email and contact.get("id") is not None:
                ids[normalize_email(str(email))] = str(contact["id"])
        failures = self._attribute_errors(answer.get("errors") or [], groups)
        unconfirmed = {e: same for e, same in groups.items() if e not in ids and e not in failures}
        # A result without its email (or an error we could not pin on a contact) leaves contacts
        # unconfirmed: ask HubSpot which of them exist now rather than guess.
        ids.update(self._read_ids_by_email(unconfirmed))
        general_error = next((str(e.get("message", "")) for e in answer.get("errors") or [] if isinstance(e, dict)), "")

        result = BatchResult(rejected=rejected)
        for email, same in groups.items():
            for record in same:
                if email in failures:
                    code, message = failures[email]
                    result.rejected.append(RejectedRecord(record.key, code, message))
                elif email in ids:
                    result.acknowledged.append(record.key)
                    result.destination_ids[record.key] = ids[email]
                else:
                    result.rejected.append(
                        RejectedRecord(
                            record.key, "unconfirmed", general_error or "HubSpot did not confirm this contact"
                        )
                    )
        return result

    @staticmethod
    def _attribute_errors(errors: Iterable[Any], groups: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
        """Pin 207 errors on contacts by the emails their ``context``, ``id`` or message name."""
        failures: dict[str, tuple[str, str]] = {}
        for error in errors:
            if not isinstance(error, dict):
                continue
            named: set[str] = set()
            for value in (error.get("context") or {}).values():
                for item in value if isinstance(value, list) else [value]:
                    named.add(normalize_email(str(item)))
            if error.get("id"):
                named.add(normalize_email(str(error["id"])))
            message = str(error.get("message", "rejected by HubSpot"))
            named.update(normalize_email(m.rstrip(".")) for m in _EMAIL_IN_TEXT.findall(message))
            code = str(error.get("category") or "hubspot_error")
            for email in named & set(groups):
                failures[email] = (code, message)
        return failures

    def _change_membership(self, ids_by_key: Mapping[str, str], action: str) -> BatchResult:
        if not ids_by_key:
            return BatchResult()
        other = "recordIdsToRemove" if action == "recordIdsToAdd" else "recordIdsToAdd"
        unique_ids = list(dict.fromkeys(ids_by_key.values()))
        answer = self.http.request(
            "PUT",
            f"{self._list_path}/memberships/add-and-remove",
            json_body={action: unique_ids, other: []},
            operation=f"{'add' if action == 'recordIdsToAdd' else 'remove'} {len(unique_ids)} "
            f"contacts {'to' if action == 'recordIdsToAdd' else 'from'} list '{self.config.list_id}'",
            hints={404: f"no list with id '{self.config.list_id}': check config.list_id"},
        ).json_object()
        missing = {str(record_id) for record_id in answer.get("recordIdsMissing") or []}
        result = BatchResult()
        for key, record_id in ids_by_key.items():
            if record_id in missing and action == "recordIdsToAdd":
                result.rejected.append(
                    RejectedRecord(key, "record_missing", f"HubSpot has no contact with id {record_id}")
                )
            else:
                # A missing id on removal is a deleted contact: it is not in the list either way.
                result.acknowledged.append(key)
                result.destination_ids[key] = record_id
        return result

    def _contact_property_names(self) -> set[str]:
        """Internal names of the contact properties."""
        return {str(p["name"]) for p in self.contact_properties()}

    def contact_properties(self) -> list[dict[str, Any]]:
        """The contact properties (``name``, ``type``, ...); follows ``paging.next.after`` should HubSpot page them."""
        properties: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"archived": "false"}
            if after:
                params["after"] = after
            page = self.http.request(
                "GET",
                "/crm/v3/properties/contacts",
                params=params,
                operation="read contact properties",
                hints={403: "the token needs the crm.schemas.contacts.read scope to read contact properties"},
            ).json_object()
            properties.extend(p for p in page.get("results") or [] if isinstance(p, dict) and p.get("name"))
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return properties

    def _batch_read(self, inputs: list[str], *, by_email: bool) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"inputs": [{"id": value} for value in inputs], "properties": ["email"]}
        if by_email:
            body["idProperty"] = "email"
        answer = self.http.request(
            "POST",
            "/crm/v3/objects/contacts/batch/read",
            json_body=body,
            operation=f"read {len(inputs)} contacts by {'email' if by_email else 'id'}",
        ).json_object()
        return [c for c in answer.get("results") or [] if isinstance(c, dict)]

    def _read_ids_by_email(self, emails: Iterable[str]) -> dict[str, str]:
        """Contact ids of the given (normalised) emails; emails HubSpot does not know are left out."""
        wanted = list(emails)
        found: dict[str, str] = {}
        for start in range(0, len(wanted), MAX_INPUTS_PER_CALL):
            for contact in self._batch_read(wanted[start : start + MAX_INPUTS_PER_CALL], by_email=True):
                email = (contact.get("properties") or {}).get("email")
                if email and contact.get("id") is not None:
                    found[normalize_email(str(email))] = str(contact["id"])
        return found

    def _read_emails_by_id(self, ids: list[str]) -> dict[str, str]:
        return {
            str(contact["id"]): str((contact.get("properties") or {}).get("email") or "")
            for contact in self._batch_read(ids, by_email=False)
            if contact.get("id") is not None
        }

"""HubSpot connector: contacts upserted by email, membership in a static (MANUAL/SNAPSHOT) list.

Contract followed (HubSpot CRM v3 and Lists v3 reference):

* Auth: ``Authorization: Bearer <private app access token>``.
* ``POST /crm/v3/objects/contacts/batch/upsert`` with ``inputs`` of
  ``{"idProperty": "email", "id": <email>, "properties": {...}}``, at most 100
  per call. A 207 Multi-Status answer carries ``results`` (``id`` and
  ``properties``) for the contacts written and ``errors`` (``category``,
  ``message``, ``context``) for the others; those become rejected records.
* ``PUT /crm/v3/lists/{listId}/memberships/add-and-remove`` with
  ``recordIdsToAdd`` / ``recordIdsToRemove`` takes HubSpot record ids, so adds
  use the ids the upsert returned and removes use the ids the caller kept from
  earlier runs, falling back to ``POST /crm/v3/objects/contacts/batch/read``
  with ``idProperty=email``. Ids that do not exist come back in ``recordIdsMissing``.
  It only works on lists whose ``processingType`` is ``MANUAL`` or ``SNAPSHOT``.
* Members are read with ``GET /crm/v3/lists/{listId}/memberships`` and the
  ``after`` cursor of ``paging.next`` (``limit`` at most 250), then their emails
  with ``batch/read``.
* Rate limits: about 190 requests per 10 s for private apps (burst limit per
  app), a daily limit, 429 with ``policyName`` naming which one was hit, and
  ``X-HubSpot-RateLimit-Remaining`` / ``-Interval-Milliseconds`` headers that
  let us slow down before the wall.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_segprovider.core.destination import BatchResult, Member, Record
from airflow_segprovider.destinations.base import (
    ConfigReader,
    ConnectionField,
    HttpDestination,
    chunked,
    connection_phrase,
    group_by_identity,
    missing_fields_error,
    split_blank_identities,
)
from airflow_segprovider.core.destination import RejectedRecord, TerminalDestinationError
from airflow_segprovider.destinations.http import (
    BearerAuth,
    DestinationHttpClient,
    HttpSettings,
    RateLimited,
    ResponsePolicy,
    parse_retry_after,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    import requests

KIND = "hubspot"
MAX_INPUTS_PER_CALL = 100
MAX_MEMBERSHIP_PAGE = 250
CONTACT_OBJECT_TYPE = "0-1"
WRITABLE_PROCESSING_TYPES = ("MANUAL", "SNAPSHOT")
_EMAIL_IN_TEXT = re.compile(r"[^\s'\"<>,;()\[\]{}=]+@[^\s'\"<>,;()\[\]{}=]+")

CONNECTION_FIELDS = (
    ConnectionField(
        name="access_token",
        label="Private app access token",
        conn_attr="password",
        target="credentials",
        required=True,
        secret=True,
        description="Needs scopes crm.objects.contacts.read/write and crm.lists.read/write.",
    ),
    ConnectionField(
        name="base_url",
        label="Base URL",
        conn_attr="host",
        target="config",
        required=False,
        secret=False,
        description="Override of https://api.hubapi.com, e.g. a local sandbox.",
    ),
)


def _normalize_email(email: str) -> str:
    # HubSpot stores and matches contact emails case-insensitively.
    return email.strip().lower()


def _property_value(value: Any) -> str:
    """A property value as HubSpot takes it (strings); ``None`` clears the property."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _parse_timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class HubSpotResponsePolicy(ResponsePolicy):
    """HubSpot's rate-limit headers and 429 bodies.

    :param low_water: when ``X-HubSpot-RateLimit-Remaining`` drops to this many
        requests or fewer, pause so that the rolling window can refill.
    """

    def __init__(self, low_water: int = 5) -> None:
        self.low_water = low_water

    def rate_limit(self, response: requests.Response) -> RateLimited | None:
        if response.status_code != 429:
            return None
        try:
            body = response.json()
        except ValueError:
            body = {}
        policy = str(body.get("policyName", "")) if isinstance(body, dict) else ""
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        reason = f"{policy or 'rate limit'}: {message}".rstrip(": ")
        if policy.upper() == "DAILY":
            # The daily quota resets at midnight in the account's time zone: no wait inside a run helps.
            return RateLimited(wait=None, give_up=True, reason=reason)
        wait = parse_retry_after(response.headers.get("Retry-After"))
        if wait is None:
            wait = self._interval_seconds(response)
        return RateLimited(wait=wait, reason=reason)

    def pace(self, response: requests.Response) -> float:
        remaining = response.headers.get("X-HubSpot-RateLimit-Remaining")
        interval = self._interval_seconds(response)
        if remaining is None or interval is None:
            return 0.0
        try:
            left = int(remaining)
        except ValueError:
            return 0.0
        if left > self.low_water:
            return 0.0
        # The window is rolling: the emptier it is, the longer we wait; a full interval at zero.
        return interval * (self.low_water + 1 - max(left, 0)) / (self.low_water + 1)

    @staticmethod
    def _interval_seconds(response: requests.Response) -> float | None:
        value = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        try:
            return int(value) / 1000.0 if value is not None else None
        except ValueError:
            return None

    def error_detail(self, response: requests.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return ""
        if not isinstance(body, dict):
            return ""
        message = str(body.get("message", ""))
        category = body.get("category")
        return f"{category}: {message}" if category else message


@dataclass(frozen=True)
class HubSpotConfig:
    """Validated configuration of one HubSpot destination.

    :param list_id: the ILS list id of a MANUAL or SNAPSHOT contact list.
    :param connection_id: the Airflow connection holding the token, for messages.
    """

    list_id: str
    connection_id: str | None


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
        :param config: ``list_id``, ``connection_id`` and HTTP overrides such as ``base_url``.
        :param credentials: ``access_token``.
        :raises DestinationConfigError: a field is missing or invalid.
        """
        reader = ConfigReader(name, config)
        connection_id = reader.optional_str("connection_id")
        secrets = ConfigReader(name, credentials, source="credentials", connection_id=connection_id or "")
        token = secrets.required_str("access_token")
        hubspot_config = HubSpotConfig(list_id=reader.required_str("list_id"), connection_id=connection_id)
        # 18 requests/s with a burst of 10 keeps any 10 s window at or under 190 requests.
        settings = HttpSettings(
            base_url="https://api.hubapi.com", requests_per_second=18.0, burst=10, max_concurrency=4
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

    # --- DestinationClient ------------------------------------------------------------------

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
            unknown = group_by_identity([r for r in sendable if r.key not in ids], _normalize_email)
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
                    last_changed=_parse_timestamp(membership.get("membershipTimestamp")),
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

    # --- internals --------------------------------------------------------------------------

    def _upsert_chunk(self, chunk: Sequence[Record]) -> BatchResult:
        sendable, rejected = split_blank_identities(chunk)
        groups = group_by_identity(sendable, _normalize_email)
        if not groups:
            return BatchResult(rejected=rejected)
        inputs = [
            {
                "idProperty": "email",
                "id": email,
                "properties": {
                    **{k: _property_value(v) for r in same for k, v in r.attributes.items()},
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
                ids[_normalize_email(str(email))] = str(contact["id"])
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
                    named.add(_normalize_email(str(item)))
            if error.get("id"):
                named.add(_normalize_email(str(error["id"])))
            message = str(error.get("message", "rejected by HubSpot"))
            named.update(_normalize_email(m.rstrip(".")) for m in _EMAIL_IN_TEXT.findall(message))
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
                    found[_normalize_email(str(email))] = str(contact["id"])
        return found

    def _read_emails_by_id(self, ids: list[str]) -> dict[str, str]:
        return {
            str(contact["id"]): str((contact.get("properties") or {}).get("email") or "")
            for contact in self._batch_read(ids, by_email=False)
            if contact.get("id") is not None
        }

"""The Mailchimp client: batch subscribe into an audience, membership in a static segment or a tag."""

from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_segprovider.core.destination import (
    BatchResult,
    DestinationAuthError,
    MalformedResponseError,
    Member,
    Record,
    RejectedRecord,
    ReportedCount,
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
from airflow_segprovider.destinations.http import BasicAuth, DestinationHttpClient, HttpSettings
from airflow_segprovider.destinations.http.pacing import credential_slots
from airflow_segprovider.destinations.mailchimp.config import (
    KIND,
    MAX_CONNECTIONS,
    MAX_MEMBERS_PER_CALL,
    MAX_PAGE_SIZE,
    MEMBER_STATUSES,
    MEMBERSHIP_MODES,
    MailchimpConfig,
)
from airflow_segprovider.destinations.mailchimp.erasure import erase_members
from airflow_segprovider.destinations.mailchimp.policy import MailchimpResponsePolicy
from airflow_segprovider.destinations.mailchimp.refusals import CONTACT_EXISTS, rejection
from airflow_segprovider.destinations.mailchimp.updates import update_members
from airflow_segprovider.destinations.mailchimp.values import (
    merge_value,
    normalize_email,
    parse_timestamp,
    subscriber_hash,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from airflow_segprovider.destinations.http import HttpResponse

__all__ = ["MailchimpClient"]

# The connector's name, as before it became a package: log configuration keyed on it keeps working.
logger = logging.getLogger("airflow_segprovider.destinations.mailchimp")

_DATA_CENTER = re.compile(r"^[a-z]+[0-9]+$")

# Segment reads leave out unsubscribed, cleaned and transactional members unless asked. The segment
# or tag is the sync's own, so every member it holds counts, whatever its status: without the flags
# a `member_status: transactional` segment reads as empty and a member who unsubscribes vanishes
# from reads and counts, and reconciliation would add them back every run.
_EVERY_STATUS = {"include_unsubscribed": "true", "include_cleaned": "true", "include_transactional": "true"}


class MailchimpClient(HttpDestination):
    """A Mailchimp audience plus the static segment or tag that holds the synced segment.

    :param name: the destination's name.
    :param config: validated configuration.
    :param http: the HTTP client (basic auth, base URL, at most 10 connections).
    :param key_slots: the API key's connection slots, shared by every client of the key in the process
        (:func:`~airflow_segprovider.destinations.http.pacing.credential_slots`); a private set of 10 when None.
    """

    kind = KIND
    max_batch_size = MAX_MEMBERS_PER_CALL
    can_read_members = True
    # a batch is two calls (batch subscribe, then the segment's or tags' call), and its thread holds no
    # connection between them: twice the key's connections in batches keeps all 10 busy (10 batches in
    # flight measured 0.74 of the 10-connection ceiling, 20 batches 0.97; the per-key cap still holds at 10)
    batches_in_flight = 2 * MAX_CONNECTIONS

    def __init__(self, name: str, config: MailchimpConfig, http: DestinationHttpClient, *,
                 key_slots: threading.BoundedSemaphore | None = None) -> None:
        super().__init__(name, http)
        self.config = config
        self._key_slots = key_slots or threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._list_path = f"/lists/{quote(config.list_id, safe='')}"
        self._segment_lock = threading.Lock()
        self._resolved_segment_id: str | None = config.segment_id

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any], credentials: Mapping[str, Any]) -> MailchimpClient:
        """Validate ``config`` and ``credentials`` and build the client.

        :param name: the destination's name.
        :param config: destination config (``list_id``, ``membership``, ``segment_id``/``segment_name``/``tag``,
            ``member_status``, ``connection_id`` and HTTP overrides such as ``base_url``).
        :param credentials: ``api_key``.
        :raises DestinationConfigError: a field is missing or invalid.
        """
        reader, secrets, connection_id = config_readers(name, config, credentials)
        api_key = secrets.required_str("api_key")
        membership = reader.choice("membership", MEMBERSHIP_MODES, "static_segment")
        mailchimp_config = MailchimpConfig(
            list_id=reader.required_str("list_id"),
            membership=membership,
            segment_id=reader.optional_str("segment_id"),
            segment_name=reader.optional_str("segment_name"),
            tag=reader.optional_str("tag"),
            member_status=reader.choice("member_status", MEMBER_STATUSES, "subscribed"),
            connection_id=connection_id,
        )
        if membership == "static_segment" and not (mailchimp_config.segment_id or mailchimp_config.segment_name):
            reader.fail("segment_id", "membership 'static_segment' needs segment_id (or segment_name)")
        if membership == "tags" and not mailchimp_config.tag:
            reader.fail("tag", "membership 'tags' needs the tag name in 'tag'")

        base_url = reader.optional_str("base_url")
        if base_url is None:
            _, _, data_center = api_key.rpartition("-")
            if not _DATA_CENTER.match(data_center):
                secrets.fail(
                    "api_key",
                    "the API key has no data-center suffix (expected '<key>-us6'); "
                    "use the full key or set base_url in the destination config",
                )
            base_url = f"https://{data_center}.api.mailchimp.com/3.0"
        # Mailchimp throttles by simultaneous connections, not by request rate.
        settings = HttpSettings(
            base_url=base_url, max_concurrency=MAX_CONNECTIONS, default_rate_limit_wait=5.0
        ).overridden_by(reader)
        if settings.max_concurrency > MAX_CONNECTIONS:
            reader.fail("max_concurrency", f"Mailchimp allows at most {MAX_CONNECTIONS} simultaneous connections")
        http = DestinationHttpClient(
            destination=name,
            settings=settings,
            auth=BasicAuth("segprovider", api_key),
            policy=MailchimpResponsePolicy(),
            auth_hint=f"check the API key in {connection_phrase(name, connection_id)}",
        )
        # Mailchimp counts connections per API key, not per client: every client of the key shares 10.
        return cls(name, mailchimp_config, http, key_slots=credential_slots(KIND, api_key, MAX_CONNECTIONS))

    def _request(self, method: str, path: str, **kwargs: Any) -> HttpResponse:
        """One request holding one of the API key's connection slots (retry waits included, so never above 10)."""
        with self._key_slots:
            return self.http.request(method, path, **kwargs)

    def check(self) -> None:
        """Verify the API key, the audience and the segment or tag, their two reads sent side by side.

        The audience's read proves the key (a bad one is a 401 there as on ``/ping``, not sent). A segment given
        by id must be static; one given by name (or a tag) is looked up and remembered. The most telling error
        wins: a refused key, then the audience (a missing one fails the segment's read too), then the segment.
        """
        audience = dict(params={"fields": "id,name"}, operation=f"read audience '{self.config.list_id}'",
                        hints={404: f"no audience with list_id '{self.config.list_id}' in this account: "
                               "check config.list_id"})
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="mailchimp-check") as pool:
            reads = [pool.submit(self._request, "GET", self._list_path, **audience), pool.submit(self._check_segment)]
        failures = [error for error in (read.exception() for read in reads) if error is not None]
        refused = [error for error in failures if isinstance(error, DestinationAuthError)]
        if refused or failures:
            raise (refused or failures)[0]

    def _check_segment(self) -> None:
        """The segment given by id is a static one; a segment or tag given by name is resolved (not created)."""
        if not self.config.segment_id:
            self._segment_id(create=False)
            return
        segment = self._read_segment(self.config.segment_id, fields="id,name,type")
        if segment.get("type") != "static":
            raise TerminalDestinationError(
                f"segment '{self.config.segment_id}' is a {segment.get('type')!s} segment, not a static one",
                destination=self.name,
                hint="membership can only be written to a static segment or a tag: "
                "point config.segment_id at a static segment, or use membership: tags",
            )

    def check_fields(self, field_names: Sequence[str]) -> None:
        """Verify that the audience has a merge field for each name (tags compare case-insensitively).

        :param field_names: merge tags the records' attributes are written to, e.g. ``FNAME``.
        :raises DestinationConfigError: some tags are not merge fields of the audience.
        """
        if not field_names:
            return
        tags = self._merge_field_tags()
        missing = [name for name in field_names if name.upper() not in tags]
        if missing:
            raise missing_fields_error(
                self.name, missing, what=("merge field", "merge fields"), where=f"in audience {self.config.list_id}"
            )

    def upsert(self, records: Sequence[Record]) -> BatchResult:
        """Create or update contacts' merge fields; never change the status of a contact Mailchimp holds.

        New contacts are created by batch subscribe (500 per call) *without* ``update_existing``, with
        ``member_status``, the status their consent allows. Contacts the audience already holds come back
        as ``ERROR_CONTACT_EXISTS`` and get their merge fields with ``PUT .../members/{hash}`` carrying
        ``status_if_new`` and no ``status``: batch subscribe has no ``status_if_new``, and with
        ``update_existing`` it applies ``status`` to existing members, turning a ``pending`` contact into
        ``subscribed`` (skipping double opt-in) and re-subscribing one who unsubscribed through the API.
        """
        result = BatchResult()
        for chunk in chunked(records, MAX_MEMBERS_PER_CALL):
            created = self._batch_subscribe(chunk, update_existing=False)
            existing = {r.key for r in created.rejected if r.code == CONTACT_EXISTS}
            created.rejected = [r for r in created.rejected if r.key not in existing]
            result.merge(created)
            result.merge(update_members(self._request, self._list_path, self.config.list_id, self.config.member_status,
                                        [record for record in chunk if record.key in existing],
                                        workers=self.http.settings.max_concurrency))
        return result

    def add_members(self, records: Sequence[Record]) -> BatchResult:
        """Batch subscribe, then add the accepted contacts to the segment or tag."""
        result = BatchResult()
        for chunk in chunked(records, MAX_MEMBERS_PER_CALL):
            subscribed = self._batch_subscribe(chunk)
            accepted = set(subscribed.acknowledged)
            segment_result = self._change_segment(
                [record for record in chunk if record.key in accepted], "members_to_add", create=True
            )
            segment_result.rejected[:0] = subscribed.rejected
            result.merge(segment_result)
        return result

    def remove_members(
        self, records: Sequence[Record], destination_ids: Mapping[str, str] | None = None
    ) -> BatchResult:
        """Remove the records from the segment or tag; contacts stay in the audience, subscribed as they were."""
        result = BatchResult()
        for chunk in chunked(records, MAX_MEMBERS_PER_CALL):
            result.merge(self._change_segment(chunk, "members_to_remove", create=False))
        return result

    def unsubscribe(self, records: Sequence[Record]) -> BatchResult:
        """Set the contacts' audience status to ``unsubscribed``: batch subscribe, 500 per call.

        Sent with a consent removal only (the person withdrew e-mail consent), so a contact the sync
        subscribed does not stay subscribed. An address Mailchimp refuses is a rejected record; the
        engine keeps it in its state and retries the removal and the unsubscribe on the next run.
        """
        result = BatchResult()
        for chunk in chunked(records, MAX_MEMBERS_PER_CALL):
            sendable, blank = split_blank_identities(chunk)
            result.rejected.extend(blank)
            groups = group_by_identity(sendable, normalize_email)
            if not groups:
                continue
            answer = self._request(
                "POST",
                self._list_path,
                json_body={"members": [{"email_address": same[0].identity.strip(), "status": "unsubscribed"}
                                       for same in groups.values()], "update_existing": True},
                operation=f"unsubscribe {len(groups)} members of audience '{self.config.list_id}'",
                hints={404: f"no audience with list_id '{self.config.list_id}': check config.list_id"},
            ).json_object()
            failed = {normalize_email(str(error.get("email_address", ""))): error
                      for error in answer.get("errors") or []}
            for email, same in groups.items():
                for record in same:
                    if email in failed:  # a forgotten contact's refusal is final, as in every other write
                        error = failed[email]
                        code = str(error.get("error_code") or "unsubscribe_error")
                        result.rejected.append(rejection(record.key, code, str(error.get("error") or "refused")))
                    else:
                        result.acknowledged.append(record.key)
        return result

    def erase(self, records: Sequence[Record], destination_ids: Mapping[str, str] | None = None) -> BatchResult:
        """Delete the contacts from the audience for good (``delete-permanent``, see :mod:`.erasure`).

        By address: a member's id (``destination_ids``) is the MD5 of its lower-cased address, so each identity
        names its member already, and an older address the state no longer keeps an id for is deleted too.
        """
        return erase_members(self._request, self._list_path, self.config.list_id, records)

    def iter_members(self, page_size: int = 500) -> Iterator[Member]:
        """Members of the segment or tag, with ``count``/``offset`` paging (at most 1000 a page)."""
        segment_id = self._segment_id(create=False)
        if segment_id is None:
            return
        count = max(1, min(page_size, MAX_PAGE_SIZE))
        path = f"{self._list_path}/segments/{quote(segment_id, safe='')}/members"
        offset = 0
        while True:
            page = self._request(
                "GET",
                path,
                params={
                    "count": count,
                    "offset": offset,
                    "fields": "members.id,members.email_address,members.last_changed,total_items",
                    **_EVERY_STATUS,
                },
                operation=f"read members of segment '{segment_id}'",
            ).json_object()
            members = page.get("members") or []
            for member in members:
                email = str(member.get("email_address", ""))
                yield Member(
                    identity=email,
                    destination_id=str(member.get("id") or subscriber_hash(email)),
                    last_changed=parse_timestamp(member.get("last_changed")),
                )
            offset += len(members)
            total = page.get("total_items")
            if not members or (isinstance(total, int) and offset >= total):
                return

    def member_count(self) -> int:
        """The segment's (or tag's) ``member_count`` over every status; 0 when the tag does not exist yet."""
        segment_id = self._segment_id(create=False)
        if segment_id is None:
            return 0
        count = self._read_segment(segment_id, fields="member_count", every_status=True).get("member_count")
        if not isinstance(count, int):
            raise MalformedResponseError(
                "segment has no integer member_count", destination=self.name, path=f"{self._list_path}/segments"
            )
        return count

    def reported_count(self) -> ReportedCount:
        """Exact: every member the segment or tag holds, subscribed, pending, transactional, unsubscribed or cleaned.

        This is what the sync wrote and what its state holds. Mailchimp's own count (its UI, a read
        without ``include_*``) is subscribed and pending only, and lower once members unsubscribe or bounce.
        """
        return ReportedCount.exact(self.member_count())

    def merge_fields(self) -> list[dict[str, Any]]:
        """The audience's merge fields (``tag``, ``type``, ``options``), read with ``count``/``offset`` paging."""
        merge_fields: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self._request(
                "GET",
                f"{self._list_path}/merge-fields",
                params={"count": MAX_PAGE_SIZE, "offset": offset,
                        "fields": "merge_fields.tag,merge_fields.type,merge_fields.options,total_items"},
                operation=f"read merge fields of audience '{self.config.list_id}'",
                hints={404: f"no audience with list_id '{self.config.list_id}': check config.list_id"},
            ).json_object()
            fields = page.get("merge_fields") or []
            merge_fields.extend(field for field in fields if isinstance(field, dict))
            offset += len(fields)
            if not fields or offset >= int(page.get("total_items") or 0):
                return merge_fields

    def _merge_field_tags(self) -> set[str]:
        """The audience's merge tags, upper-cased."""
        return {str(field.get("tag", "")).upper() for field in self.merge_fields()}

    def _read_segment(self, segment_id: str, *, fields: str, every_status: bool = False) -> dict[str, Any]:
        return self._request(
            "GET",
            f"{self._list_path}/segments/{quote(segment_id, safe='')}",
            params={"fields": fields, **(_EVERY_STATUS if every_status else {})},
            operation=f"read segment '{segment_id}'",
            hints={404: f"no segment '{segment_id}' in audience '{self.config.list_id}': check config.segment_id"},
        ).json_object()

    def _segment_id(self, *, create: bool) -> str | None:
        """The id of the target segment or tag, resolved by name once; created on demand when ``create``."""
        with self._segment_lock:
            if self._resolved_segment_id is None:
                # from_config guarantees the name of the mode in use when no segment_id was given.
                name = (self.config.tag if self.config.membership == "tags" else self.config.segment_name) or ""
                self._resolved_segment_id = self._find_segment(name)
                if self._resolved_segment_id is None and create:
                    created = self._request(
                        "POST",
                        f"{self._list_path}/segments",
                        json_body={"name": name, "static_segment": []},
                        operation=f"create tag '{name}'",
                    ).json_object()
                    self._resolved_segment_id = str(created["id"])
            return self._resolved_segment_id

    def _find_segment(self, name: str) -> str | None:
        if self.config.membership == "tags":
            # tag-search matches by prefix, so insist on the exact name.
            found = self._request(
                "GET", f"{self._list_path}/tag-search", params={"name": name}, operation=f"find tag '{name}'"
            ).json_object()
            for tag in found.get("tags") or []:
                if tag.get("name") == name:
                    return str(tag["id"])
            return None
        offset = 0
        while True:
            page = self._request(
                "GET",
                f"{self._list_path}/segments",
                params={
                    "type": "static",
                    "count": MAX_PAGE_SIZE,
                    "offset": offset,
                    "fields": "segments.id,segments.name,total_items",
                },
                operation=f"find static segment '{name}'",
            ).json_object()
            segments = page.get("segments") or []
            for segment in segments:
                if segment.get("name") == name:
                    return str(segment["id"])
            offset += len(segments)
            if not segments or offset >= int(page.get("total_items") or 0):
                return None

    def _batch_subscribe(self, chunk: Sequence[Record], *, update_existing: bool = True) -> BatchResult:
        sendable, rejected = split_blank_identities(chunk)
        groups = group_by_identity(sendable, normalize_email)
        if not groups:
            return BatchResult(rejected=rejected)
        members = [
            {
                "email_address": same[0].identity.strip(),
                "status": self.config.member_status,
                # Later records of the same contact win, as they would in sequential updates.
                "merge_fields": {k: merge_value(v) for r in same for k, v in r.attributes.items()},
            }
            for same in groups.values()
        ]
        answer = self._request(
            "POST",
            self._list_path,
            json_body={"members": members, "update_existing": update_existing},
            operation=f"batch subscribe {len(members)} members to audience '{self.config.list_id}'",
            hints={404: f"no audience with list_id '{self.config.list_id}': check config.list_id"},
        ).json_object()
        failed: dict[str, RejectedRecord] = {}
        for error in answer.get("errors") or []:
            email = normalize_email(str(error.get("email_address", "")))
            code = str(error.get("error_code") or "mailchimp_error")
            message = str(error.get("error") or "rejected by Mailchimp")
            if error.get("field"):
                message += f" ({error['field']}: {error.get('field_message', '')})"
            for record in groups.get(email, []):
                failed[record.key] = rejection(record.key, code, message)
        result = BatchResult(rejected=rejected + list(failed.values()))
        for email, same in groups.items():
            for record in same:
                if record.key not in failed:
                    result.acknowledged.append(record.key)
                    result.destination_ids[record.key] = subscriber_hash(email)
        return result

    def _change_segment(self, records: Sequence[Record], action: str, *, create: bool) -> BatchResult:
        sendable, rejected = split_blank_identities(records)
        groups = group_by_identity(sendable, normalize_email)
        if not groups:
            return BatchResult(rejected=rejected)
        segment_id = self._segment_id(create=create)
        if segment_id is None:
            # Removing from a tag that was never created: nobody is in it, so the wish already holds.
            return BatchResult(acknowledged=[r.key for r in sendable], rejected=rejected)
        answer = self._request(
            "POST",
            f"{self._list_path}/segments/{quote(segment_id, safe='')}",
            json_body={action: [same[0].identity.strip() for same in groups.values()]},
            operation=f"{action.replace('_', ' ')} of segment '{segment_id}' ({len(groups)} members)",
            hints={404: f"no segment '{segment_id}' in audience '{self.config.list_id}': check config.segment_id"},
        ).json_object()
        failed: dict[str, RejectedRecord] = {}
        for error in answer.get("errors") or []:
            message = str(error.get("error") or "rejected by Mailchimp")
            for address in error.get("email_addresses") or []:
                for record in groups.get(normalize_email(str(address)), []):
                    failed[record.key] = RejectedRecord(record.key, "segment_error", message)
        if action == "members_to_remove" and failed:
            # An address Mailchimp cannot remove is one it does not hold (not on the list, or not an
            # address at all): it is not in the segment, which is what the removal asked for.
            logger.info(
                "destination '%s': %d addresses to remove were not on audience '%s'; counted as removed",
                self.name,
                len(failed),
                self.config.list_id,
            )
            failed = {}
        result = BatchResult(rejected=rejected + list(failed.values()))
        for email, same in groups.items():
            for record in same:
                if record.key not in failed:
                    result.acknowledged.append(record.key)
                    result.destination_ids[record.key] = subscriber_hash(email)
        return result

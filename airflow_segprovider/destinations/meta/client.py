"""The Meta client: one customer-file custom audience, people added and removed by hashed match keys."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_segprovider.core.destination import (
    BatchResult,
    MalformedResponseError,
    Record,
    RejectedRecord,
    ReportedCount,
    TerminalDestinationError,
    UnsupportedOperationError,
)
from airflow_segprovider.destinations.base import HttpDestination, connection_phrase
from airflow_segprovider.destinations.config import config_readers
from airflow_segprovider.destinations.http import DestinationHttpClient, HttpSettings, QueryTokenAuth
from airflow_segprovider.destinations.meta.config import (
    API_VERSION_PATTERN,
    DEFAULT_API_VERSION,
    DEFAULT_MIN_MATCH_RATE,
    FLAGGED_AUDIENCE_STATUS,
    KIND,
    MAX_ENTRIES_PER_CALL,
    SCHEMA,
    SESSIONS_READ,
    MetaConfig,
)
from airflow_segprovider.destinations.meta.keys import (
    EMAIL_SHAPE,
    hashed_key,
    match_keys,
    normalize_and_hash,
    schema_of,
    sent_entry,
    stored_keys,
)
from airflow_segprovider.destinations.meta.policy import MetaResponsePolicy
from airflow_segprovider.destinations.meta.sessions import (
    ADD_SESSION_TAG,
    REMOVE_SESSION_TAG,
    new_session_id,
    summarize_sessions,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from airflow_segprovider.core.destination import Member

__all__ = ["MetaCustomAudienceClient"]

logger = logging.getLogger(__name__)


class MetaCustomAudienceClient(HttpDestination):
    """One Meta customer file custom audience, fed with hashed emails.

    :param name: the destination's name.
    :param config: validated configuration.
    :param http: the HTTP client (token as query parameters).
    """

    kind = KIND
    max_batch_size = MAX_ENTRIES_PER_CALL
    can_read_members = False

    def __init__(self, name: str, config: MetaConfig, http: DestinationHttpClient) -> None:
        super().__init__(name, http)
        self.config = config
        self._audience_path = f"/{config.api_version}/{quote(config.audience_id, safe='')}"

    @classmethod
    def from_config(
        cls, name: str, config: Mapping[str, Any], credentials: Mapping[str, Any]
    ) -> MetaCustomAudienceClient:
        """Validate ``config`` and ``credentials`` and build the client.

        :param name: the destination's name.
        :param config: ``audience_id``, ``api_version``, ``connection_id``, ``min_match_rate`` (0 to 1, default
            :data:`DEFAULT_MIN_MATCH_RATE`) and HTTP overrides such as ``base_url``.
        :param credentials: ``access_token`` and optionally ``app_secret``.
        :raises DestinationConfigError: a field is missing or invalid.
        """
        reader, secrets, connection_id = config_readers(name, config, credentials)
        token = secrets.required_str("access_token")
        app_secret = secrets.optional_str("app_secret")
        api_version = reader.optional_str("api_version") or DEFAULT_API_VERSION
        if not API_VERSION_PATTERN.match(api_version):
            reader.fail("api_version", f"api_version must look like {DEFAULT_API_VERSION}, got {api_version!r}")
        min_match_rate = reader.optional_float("min_match_rate", minimum=0.0, maximum=1.0)
        meta_config = MetaConfig(
            audience_id=reader.required_str("audience_id"),
            api_version=api_version,
            connection_id=connection_id,
            min_match_rate=DEFAULT_MIN_MATCH_RATE if min_match_rate is None else min_match_rate,
        )
        params = {"access_token": token}
        if app_secret:
            params["appsecret_proof"] = hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
        settings = HttpSettings(base_url="https://graph.facebook.com", max_concurrency=2, read_timeout=120.0)
        http = DestinationHttpClient(
            destination=name,
            settings=settings.overridden_by(reader),
            auth=QueryTokenAuth(params),
            policy=MetaResponsePolicy(),
            auth_hint=f"check the access token (and app secret) in {connection_phrase(name, connection_id)}; "
            "the token needs ads_management on the audience's ad account",
        )
        return cls(name, meta_config, http)

    def check_fields(self, field_names: Sequence[str]) -> None:
        """Verify that each mapped field is one of Meta's match keys (the email comes from the identity).

        :param field_names: the destination's ``field_mapping`` names: Meta keys such as ``PHONE``, ``FN``.
        :raises DestinationConfigError: a name is not a Meta match key, or is ``EMAIL``; the error names it.
        """
        match_keys(self.name, field_names)

    def check(self) -> None:
        """Verify the token and that the audience exists, is a customer file audience and is not flagged."""
        audience = self._read_audience("id,name,subtype,operation_status")
        subtype = audience.get("subtype")
        if subtype not in (None, "CUSTOM"):
            raise TerminalDestinationError(
                f"audience '{self.config.audience_id}' is a {subtype} audience, not a customer file (CUSTOM) one",
                destination=self.name,
                hint="point config.audience_id at a customer file custom audience",
            )
        status = audience.get("operation_status") or {}
        if isinstance(status, dict) and status.get("code") == FLAGGED_AUDIENCE_STATUS:
            raise TerminalDestinationError(
                f"audience '{self.config.audience_id}' is flagged (operation_status 471): "
                f"{status.get('description', '')}",
                destination=self.name,
                hint="resolve the audience's restrictions in Audience Manager, or use a new audience",
            )

    def upsert(self, records: Sequence[Record]) -> BatchResult:
        """A member whose match keys changed is uploaded again with the new keys (an upload of someone already
        in the audience only adds ways to match them); with the email alone, nothing is sent and every record
        is acknowledged (custom audiences hold no attributes)."""
        if schema_of(records, ()) == ("EMAIL",):
            return BatchResult(acknowledged=[record.key for record in records])
        return self._send("POST", records)

    def replace_members(self, records: Sequence[Record], destination_ids: Mapping[str, str]) -> BatchResult:
        """A member whose match keys changed (a new phone number): the row uploaded before, kept as their
        destination id, is deleted first, then the new row is uploaded. An upload alone only adds ways to match
        them: Meta would go on matching the person by the old phone, past a later removal or erasure that names
        the new row. A record whose old row could not be deleted is not uploaded (the state keeps the old row,
        the next run tries again); one without an old row is an :meth:`upsert`."""
        old = {key: value for key, value in destination_ids.items() if stored_keys(value)}
        replaced = [record for record in records if record.key in old]
        result = BatchResult()
        if replaced:
            deleted = self._send("DELETE", replaced, old)
            result.rejected.extend(deleted.rejected)
            done = set(deleted.acknowledged)
            if done:
                result.merge(self._send("POST", [record for record in replaced if record.key in done]))
        others = [record for record in records if record.key not in old]
        if others:
            result.merge(self.upsert(others))
        return result

    def add_members(self, records: Sequence[Record]) -> BatchResult:
        """Add people to the audience, 10,000 per call: the hashed email, plus the match keys the records carry
        (the destination's ``field_mapping``: Meta key to customer attribute), each normalized by Meta's rules."""
        return self._send("POST", records)

    def remove_members(
        self, records: Sequence[Record], destination_ids: Mapping[str, str] | None = None
    ) -> BatchResult:
        """Remove people from the audience, 10,000 per call, by the same hashed keys they were added with (kept
        as their destination id by :meth:`add_members`; Meta may have matched them on any of them); by the
        hashed email for whoever has none."""
        return self._send("DELETE", records, destination_ids)

    def erase(self, records: Sequence[Record], destination_ids: Mapping[str, str] | None = None) -> BatchResult:
        """An erasure: the person's rows out of the audience, the one deletion the Marketing API offers for them.

        Meta may hold someone under any key of the row they were uploaded with (a phone, an external id, a
        name and ZIP), not only their e-mail's hash, so a person with a destination id (the hashed keys
        :meth:`add_members` sent) is deleted by that row, in its schema, as
        https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences#remove asks; each
        identity that row does not carry (an older e-mail, a pulled one) is deleted by its hashed e-mail too.
        """
        given = dict(destination_ids or {})
        stored = {key: keys for key, value in given.items() if (keys := stored_keys(value))}
        by_row: dict[str, Record] = {}  # one record per person with a stored row: the row names them
        by_email: list[Record] = []
        for record in records:
            keys = stored.get(record.key)
            if keys is not None and record.key not in by_row:
                by_row[record.key] = record
            if keys is None or keys.get("EMAIL") != normalize_and_hash(record.identity or ""):
                by_email.append(record)
        result = BatchResult()
        if by_row:
            result.merge(self._send("DELETE", list(by_row.values()), {key: given[key] for key in by_row}))
        if by_email:
            result.merge(self._send("DELETE", by_email))
        return result

    def iter_members(self, page_size: int = 500) -> Iterator[Member]:
        """Always fails: Meta does not disclose who is in an audience."""
        raise UnsupportedOperationError(
            "Meta custom audiences cannot be read back; Meta reports only an approximate size",
            destination=self.name,
            hint="use member_count() (approximate_count_lower_bound) and skip member-level "
            "reconciliation for this destination",
        )

    def member_count(self) -> int:
        """``approximate_count_lower_bound``: Meta only reports a range, and not a member list."""
        return self.approximate_count_bounds()[0]

    def reported_count(self) -> ReportedCount:
        """The audience's size as Meta reports it: the approximate range of *matched* people, held to
        ``[min_match_rate × sent, sent]``, with the match rate and whether uploads are still being applied
        as the recent upload sessions tell."""
        lower, upper = self.approximate_count_bounds()
        match_rate, pending = self.upload_sessions_summary()
        return ReportedCount(lower, lower, upper, min_match_rate=self.config.min_match_rate, pending=pending,
                             match_rate=match_rate)

    def upload_sessions_summary(self, now: float | None = None) -> tuple[float | None, bool]:
        """``(match rate, pending)`` of the recent upload sessions, as
        :func:`~airflow_segprovider.destinations.meta.sessions.summarize_sessions` reads them: the match rate of
        our completed add sessions, and whether a session is still being applied (a failed or stuck one never
        will: it is logged, not pending).

        A failure to read the sessions is logged and read as "no information": the count itself still holds.

        :param now: the reading's time (seconds since the epoch; default: now).
        """
        try:
            answer = self.http.request(
                "GET",
                f"{self._audience_path}/sessions",
                params={"limit": str(SESSIONS_READ)},
                operation=f"read upload sessions of audience '{self.config.audience_id}'",
            ).json_object()
        except TerminalDestinationError as exc:
            logger.warning("destination '%s': cannot read upload sessions: %s", self.name, exc)
            return None, False
        sessions = [entry for entry in answer.get("data") or [] if isinstance(entry, dict)]

        def report(what: str) -> None:
            logger.warning("destination '%s': audience '%s': %s", self.name, self.config.audience_id, what)

        return summarize_sessions(sessions, time.time() if now is None else now, report)

    def approximate_count_bounds(self) -> tuple[int, int]:
        """The audience's ``(approximate_count_lower_bound, approximate_count_upper_bound)``."""
        audience = self._read_audience("approximate_count_lower_bound,approximate_count_upper_bound")
        lower = audience.get("approximate_count_lower_bound")
        upper = audience.get("approximate_count_upper_bound")
        if not isinstance(lower, int) or not isinstance(upper, int):
            raise MalformedResponseError(
                "audience has no integer approximate_count_lower_bound/upper_bound",
                destination=self.name,
                path=self._audience_path,
            )
        return lower, upper

    def _read_audience(self, fields: str) -> dict[str, Any]:
        return self.http.request(
            "GET",
            self._audience_path,
            params={"fields": fields},
            operation=f"read audience '{self.config.audience_id}'",
            hints={
                400: f"audience '{self.config.audience_id}' does not exist or this token cannot see it: "
                "check config.audience_id",
                404: f"audience '{self.config.audience_id}' does not exist: check config.audience_id",
            },
        ).json_object()

    def _send(self, method: str, records: Sequence[Record],
              destination_ids: Mapping[str, str] | None = None) -> BatchResult:
        """Send ``records`` as rows of one schema: ``EMAIL_SHA256`` alone, or the email and the mapped keys."""
        result = BatchResult()
        stored = {key: stored_keys(value) for key, value in (destination_ids or {}).items()}
        keys = schema_of(records, stored.values())
        entries: dict[str, list[str]] = {}  # the entry as sent (its JSON for a row) -> the records it carries
        rows: dict[str, Any] = {}
        for record in records:
            row, refusal = self._row(method, keys, record, stored.get(record.key))
            if refusal is not None:
                result.rejected.append(refusal)
                continue
            entry = row if isinstance(row, str) else json.dumps(row, separators=(",", ":"))
            rows.setdefault(entry, row)
            entries.setdefault(entry, []).append(record.key)
            if method == "POST" and len(keys) > 1:  # what a removal will need to name them as Meta knows them
                result.destination_ids[record.key] = json.dumps(
                    {name: value for name, value in zip(keys, row) if value}, separators=(",", ":"))
        schema: str | list[str] = SCHEMA if keys == ("EMAIL",) else list(keys)
        sent = list(entries)
        verb = "add to" if method == "POST" else "remove from"
        tag = ADD_SESSION_TAG if method == "POST" else REMOVE_SESSION_TAG
        for start in range(0, len(sent), MAX_ENTRIES_PER_CALL):
            batch = sent[start : start + MAX_ENTRIES_PER_CALL]
            data = batch if keys == ("EMAIL",) else [rows[entry] for entry in batch]
            answer = self.http.request(
                method,
                f"{self._audience_path}/users",
                form={"payload": json.dumps({"schema": schema, "data": data}, separators=(",", ":")),
                      "session": json.dumps({"session_id": new_session_id(tag), "batch_seq": 1,
                                             "last_batch_flag": True, "estimated_num_total": len(batch)},
                                            separators=(",", ":"))},
                operation=f"{verb} audience '{self.config.audience_id}' ({len(batch)} entries)",
                hints={
                    400: "Meta refused the payload: check config.audience_id and that the audience "
                    "is a customer file audience this token may edit"
                },
            ).json_object()
            invalid = self._invalid_entries(answer, batch)
            for entry in batch:
                for key in entries[entry]:
                    if entry in invalid:
                        result.rejected.append(RejectedRecord(key, "invalid_entry", invalid[entry]))
                        result.destination_ids.pop(key, None)
                    else:
                        result.acknowledged.append(key)
        return result

    @staticmethod
    def _row(method: str, keys: tuple[str, ...], record: Record,
             stored: dict[str, str] | None) -> tuple[Any, RejectedRecord | None]:
        """The entry sent for ``record`` (a hash, or one value per key of a multi-key schema), or its refusal."""
        identity = (record.identity or "").strip()
        hashed = normalize_and_hash(identity)
        if hashed is not None and method == "POST" and hashed != identity.lower() and not EMAIL_SHAPE.match(
                identity):
            # Meta cannot see through the hash, so it would accept it and never match; removals still send it
            hashed = None
            problem = RejectedRecord(record.key, "invalid_email", "not an email address (expected "
                                     "name@domain.tld): its hash could never match a Meta account")
        else:
            problem = RejectedRecord(record.key, "missing_identity", "empty email: nothing to hash and send to Meta")
        if keys == ("EMAIL",):
            return (hashed, None) if hashed is not None else (None, problem)
        if stored:  # a removal names the person by the keys they were added with
            row = [stored.get(name, "") or (hashed or "" if name == "EMAIL" else "") for name in keys]
        else:
            row = [hashed or ""] + [hashed_key(name, record.attributes.get(name)) for name in keys[1:]]
        if not any(row):
            if hashed is None and problem.code == "missing_identity":
                problem = RejectedRecord(record.key, "missing_identity",
                                         f"no match key: the email and {', '.join(keys[1:])} are all empty")
            return None, problem
        return row, None

    def _invalid_entries(self, answer: Mapping[str, Any], batch: Sequence[str]) -> dict[str, str]:
        """Map the entries Meta sampled as invalid back to ours (a hash, or a row's compact JSON); warn about the
        ones it did not sample."""
        count = answer.get("num_invalid_entries") or 0
        samples = answer.get("invalid_entry_samples") or {}
        sent = set(batch)
        if isinstance(samples, dict):
            invalid = {sent_entry(k): str(v) for k, v in samples.items() if sent_entry(k) in sent}
        else:
            invalid = {sent_entry(s): "invalid entry" for s in samples if sent_entry(s) in sent}
        received = answer.get("num_received")
        if isinstance(received, int) and received != len(batch):
            logger.warning("destination '%s': Meta received %d of %d entries", self.name, received, len(batch))
        if isinstance(count, int) and count > len(invalid):
            logger.warning(
                "destination '%s': Meta counted %d invalid entries but named only %d; the others cannot be "
                "told apart and are reported as acknowledged",
                self.name,
                count,
                len(invalid),
            )
        return invalid

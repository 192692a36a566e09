"""Meta (Facebook) Custom Audiences connector: hashed emails added to and removed from one audience.

Contract followed (Marketing API, Custom Audience Users and Customer File Custom Audiences):

* ``POST /v{N}.0/{custom_audience_id}/users`` adds and ``DELETE`` on the same
  path removes, with ``payload={"schema": "EMAIL_SHA256", "data": [...]}``;
  at most 10,000 entries per call. The answer reports ``num_received``,
  ``num_invalid_entries`` and ``invalid_entry_samples``.
* Identifiers are normalised (surrounding whitespace trimmed, lowercased) and
  then SHA-256 hashed, hex encoded. Values that already are 64 hex characters
  are taken as hashed and passed through; empty identifiers, and on adds values
  that are not an email address (Meta would take their hash, which can never
  match anyone), are dropped and reported as rejected, never failing the batch.
* Members cannot be read back; the audience only reports
  ``approximate_count_lower_bound`` / ``approximate_count_upper_bound``, a count of the people
  Meta *matched* to an account (often well under the number uploaded), and an upload may take
  up to 24 hours to change it. ``GET /{audience_id}/sessions`` lists the upload sessions with
  ``num_received``, ``num_matched`` and ``stage``.

Counts: :meth:`MetaCustomAudienceClient.reported_count` holds ``N`` people sent to the range
``[min_match_rate × N, N]`` (destination config ``min_match_rate``, default
:data:`DEFAULT_MIN_MATCH_RATE`: below Meta's usual 40-75 %, far above an upload that matched
nobody), takes the observed match rate from the recent sessions, and marks the count pending
while a session is not ``completed`` (so "not yet applied" is not read as drift).
* Auth: ``access_token`` (and ``appsecret_proof``, the HMAC-SHA256 of the token
  keyed by the app secret, when an app secret is configured) as parameters.
* Graph errors are ``{"error": {"message", "code", "error_subcode", ...}}``.
  Throttling is reported with codes 4, 17, 32, 613 and 80000-80014 (Business
  Use Case limits), with ``X-Business-Use-Case-Usage`` carrying
  ``estimated_time_to_regain_access`` in minutes; code 190 is an invalid token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
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
from airflow_segprovider.destinations.config import ConfigReader, ConnectionField
from airflow_segprovider.destinations.http import (
    DestinationHttpClient,
    HttpSettings,
    QueryTokenAuth,
    RateLimited,
    ResponsePolicy,
    parse_retry_after,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    import requests

    from airflow_segprovider.core.destination import Member

logger = logging.getLogger(__name__)

KIND = "meta"
MAX_ENTRIES_PER_CALL = 10_000
SCHEMA = "EMAIL_SHA256"
DEFAULT_API_VERSION = "v25.0"
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_API_VERSION = re.compile(r"^v[0-9]+\.0$")
THROTTLING_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
TRANSIENT_CODES = frozenset({1, 2})
AUTH_CODES = frozenset({10, 102, 190})
FLAGGED_AUDIENCE_STATUS = 471
#: The lowest share of uploaded people a healthy Meta audience matches; below it a count check fails.
DEFAULT_MIN_MATCH_RATE = 0.3
#: How many recent upload sessions a count reading looks at (one sync of 200,000 people is 20).
SESSIONS_READ = 50
_DONE_STAGES = frozenset({"completed", "complete", "finished", "done"})

CONNECTION_FIELDS = (
    ConnectionField(
        name="access_token",
        label="Access token",
        conn_attr="password",
        target="credentials",
        required=True,
        secret=True,
        description="A system user token with ads_management on the ad account that owns the audience.",
    ),
    ConnectionField(
        name="app_secret",
        label="App secret",
        conn_attr="extra",
        target="credentials",
        required=False,
        secret=True,
        description="When set, every call carries appsecret_proof (required if the app enforces it).",
    ),
    ConnectionField(
        name="base_url",
        label="Base URL",
        conn_attr="host",
        target="config",
        required=False,
        secret=False,
        description="Override of https://graph.facebook.com, e.g. a local sandbox.",
    ),
    ConnectionField(
        name="api_version",
        label="Graph API version",
        conn_attr="extra",
        target="config",
        required=False,
        secret=False,
        description=f"Marketing API version, e.g. {DEFAULT_API_VERSION}.",
    ),
)


def normalize_and_hash(identity: str) -> str | None:
    """The ``EMAIL_SHA256`` value of an email: trimmed, lowercased, SHA-256 hex.

    :param identity: an email address, or an already hashed one (64 hex characters, passed through).
    :return: the hash, or ``None`` for an empty identifier.
    """
    normalized = identity.strip().lower()
    if not normalized:
        return None
    if _SHA256_HEX.match(normalized):
        return normalized
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def _graph_error(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _regain_access_seconds(response: requests.Response) -> float | None:
    """The longest ``estimated_time_to_regain_access`` (minutes) in ``X-Business-Use-Case-Usage``, in seconds."""
    header = response.headers.get("X-Business-Use-Case-Usage")
    if not header:
        return None
    try:
        usage = json.loads(header)
    except ValueError:
        return None
    minutes = [
        entry.get("estimated_time_to_regain_access")
        for entries in (usage.values() if isinstance(usage, dict) else [])
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, dict)
    ]
    numbers = [float(m) for m in minutes if isinstance(m, (int, float))]
    return max(numbers) * 60.0 if numbers else None


def _as_int(value: Any) -> int:
    """Graph's numeric strings (and numbers) as an int; anything else as 0."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


class MetaResponsePolicy(ResponsePolicy):
    """Graph API error codes decide what a failure means, whatever the HTTP status says."""

    def rate_limit(self, response: requests.Response) -> RateLimited | None:
        error = _graph_error(response)
        if response.status_code != 429 and error.get("code") not in THROTTLING_CODES:
            return None
        wait = _regain_access_seconds(response)
        if not wait:
            wait = parse_retry_after(response.headers.get("Retry-After"))
        return RateLimited(wait=wait, reason=f"code {error.get('code')}: {error.get('message', 'throttled')}")

    def pace(self, response: requests.Response) -> float:
        return _regain_access_seconds(response) or 0.0

    def is_transient(self, response: requests.Response) -> bool:
        error = _graph_error(response)
        return (
            super().is_transient(response) or error.get("code") in TRANSIENT_CODES or error.get("is_transient") is True
        )

    def is_auth_failure(self, response: requests.Response) -> bool:
        code = _graph_error(response).get("code")
        return (
            super().is_auth_failure(response)
            or code in AUTH_CODES
            or (isinstance(code, int) and 200 <= code < 300)  # the permission error family
        )

    def error_detail(self, response: requests.Response) -> str:
        error = _graph_error(response)
        if not error:
            return ""
        text = str(error.get("error_user_msg") or error.get("message") or "")
        codes = f"code {error.get('code')}"
        if error.get("error_subcode"):
            codes += f", subcode {error['error_subcode']}"
        return f"{text} ({codes})"


@dataclass(frozen=True)
class MetaConfig:
    """Validated configuration of one Meta destination.

    :param audience_id: the customer file custom audience.
    :param api_version: Graph API version, ``vNN.0``.
    :param connection_id: the Airflow connection holding the token, for messages.
    :param min_match_rate: the lowest share of the people sent that the audience may report matching
        before a count check calls it drift.
    """

    audience_id: str
    api_version: str
    connection_id: str | None
    min_match_rate: float = DEFAULT_MIN_MATCH_RATE


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
        reader = ConfigReader(name, config)
        connection_id = reader.optional_str("connection_id")
        secrets = ConfigReader(name, credentials, source="credentials", connection_id=connection_id or "")
        token = secrets.required_str("access_token")
        app_secret = secrets.optional_str("app_secret")
        api_version = reader.optional_str("api_version") or DEFAULT_API_VERSION
        if not _API_VERSION.match(api_version):
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
        """Accept any mapping: a custom audience holds hashed identities only, no attributes to check."""

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
        """Custom audiences hold no attributes: nothing is sent and every record is acknowledged."""
        return BatchResult(acknowledged=[record.key for record in records])

    def add_members(self, records: Sequence[Record]) -> BatchResult:
        """Add hashed emails to the audience, 10,000 per call."""
        return self._send("POST", records)

    def remove_members(
        self, records: Sequence[Record], destination_ids: Mapping[str, str] | None = None
    ) -> BatchResult:
        """Remove hashed emails from the audience, 10,000 per call (Meta has no ids for them)."""
        return self._send("DELETE", records)

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

    def upload_sessions_summary(self) -> tuple[float | None, bool]:
        """``(match rate, pending)`` of the recent upload sessions: matched over valid entries received in
        the sessions that added people (None without any), and whether any session is not completed yet.

        A failure to read the sessions is logged and read as "no information": the count itself still holds.
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
        pending = any(str(entry.get("stage", "")).lower() not in _DONE_STAGES for entry in sessions)
        received = matched = 0
        for entry in sessions:
            valid = _as_int(entry.get("num_received")) - _as_int(entry.get("num_invalid_entries"))
            received += max(0, valid)
            matched += _as_int(entry.get("num_matched"))
        return (min(1.0, matched / received) if received else None), pending

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

    def _send(self, method: str, records: Sequence[Record]) -> BatchResult:
        result = BatchResult()
        by_hash: dict[str, list[str]] = {}
        for record in records:
            hashed = normalize_and_hash(record.identity or "")
            if hashed is None:
                result.rejected.append(
                    RejectedRecord(record.key, "missing_identity", "empty email: nothing to hash and send to Meta")
                )
            elif method == "POST" and hashed != record.identity.strip().lower() and not _EMAIL_SHAPE.match(
                record.identity.strip()
            ):
                # Meta cannot see through the hash, so it would accept it; removals still send it (harmless).
                result.rejected.append(
                    RejectedRecord(
                        record.key,
                        "invalid_email",
                        "not an email address (expected name@domain.tld): its hash could never match a Meta account",
                    )
                )
            else:
                by_hash.setdefault(hashed, []).append(record.key)
        hashes = list(by_hash)
        verb = "add to" if method == "POST" else "remove from"
        for start in range(0, len(hashes), MAX_ENTRIES_PER_CALL):
            batch = hashes[start : start + MAX_ENTRIES_PER_CALL]
            answer = self.http.request(
                method,
                f"{self._audience_path}/users",
                form={"payload": json.dumps({"schema": SCHEMA, "data": batch}, separators=(",", ":"))},
                operation=f"{verb} audience '{self.config.audience_id}' ({len(batch)} entries)",
                hints={
                    400: "Meta refused the payload: check config.audience_id and that the audience "
                    "is a customer file audience this token may edit"
                },
            ).json_object()
            invalid = self._invalid_entries(answer, batch)
            for hashed in batch:
                for key in by_hash[hashed]:
                    if hashed in invalid:
                        result.rejected.append(RejectedRecord(key, "invalid_entry", invalid[hashed]))
                    else:
                        result.acknowledged.append(key)
        return result

    def _invalid_entries(self, answer: Mapping[str, Any], batch: Sequence[str]) -> dict[str, str]:
        """Map the entries Meta sampled as invalid back to our hashes; warn about the ones it did not sample."""
        count = answer.get("num_invalid_entries") or 0
        samples = answer.get("invalid_entry_samples") or {}
        sent = set(batch)
        if isinstance(samples, dict):
            invalid = {str(k): str(v) for k, v in samples.items() if str(k) in sent}
        else:
            invalid = {str(s): "invalid entry" for s in samples if str(s) in sent}
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

"""Generic webhook connector: signed JSON batches POSTed to one URL.

The contract is ours, so receivers can implement it:

* Every call is ``POST <url>`` with ``Content-Type: application/json`` and a body::

      {"destination": "...", "action": "upsert" | "add" | "remove" | "erase" | "check",
       "batch_id": "<uuid4>", "sent_at": "<ISO 8601 UTC>",
       "records": [{"key": "...", "identity": "...", "attributes": {...},
                    "destination_id": "..." (remove and erase, when known)}]}

* ``X-Segprovider-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by the shared secret>``
  authenticates the body (verify it with :func:`verify_signature` before parsing);
  ``X-Segprovider-Batch-Id`` repeats ``batch_id`` so a receiver can drop the
  duplicate a retry after a timeout may deliver.
* Any 2xx accepts the batch. A receiver may refuse single records by answering
  JSON ``{"rejected": [{"key": "...", "code": "...", "message": "..."}]}``;
  every other record of the batch counts as accepted.
* ``check()`` sends ``action: "check"`` with no records and expects a 2xx.
* ``erase`` is sent by an erasure (``segprovider forget``), once per person and identity they were sent
  under: the receiver must delete everything it holds on the record's ``key`` and ``identity`` for good
  (not only take them out of a list), and answer 2xx once done; a record it cannot erase is refused
  like any other, and the erasure is retried on the next ``forget``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.destination import BatchResult, Record, RejectedRecord, UnsupportedOperationError
from airflow_segprovider.destinations.base import HttpDestination, chunked, connection_phrase
from airflow_segprovider.destinations.config import ConfigReader, ConnectionField, config_readers
from airflow_segprovider.destinations.http import Auth, BearerAuth, DestinationHttpClient, HttpSettings

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from airflow_segprovider.core.destination import Member

logger = logging.getLogger(__name__)

KIND = "webhook"
SIGNATURE_HEADER = "X-Segprovider-Signature"
BATCH_ID_HEADER = "X-Segprovider-Batch-Id"
DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 10_000

CONNECTION_FIELDS = (
    ConnectionField(
        name="url",
        label="Webhook URL",
        conn_attr="host",
        target="config",
        required=True,
        secret=False,
        description="The endpoint every batch is POSTed to.",
    ),
    ConnectionField(
        name="signing_secret",
        label="Signing secret",
        conn_attr="password",
        target="credentials",
        required=True,
        secret=True,
        description="Shared secret keying the X-Segprovider-Signature HMAC-SHA256.",
    ),
    ConnectionField(
        name="auth_token",
        label="Bearer token",
        conn_attr="extra",
        target="credentials",
        required=False,
        secret=True,
        description="Sent as Authorization: Bearer <token> when the receiver also wants one.",
    ),
)


def sign_body(secret: str, body: bytes) -> str:
    """The ``X-Segprovider-Signature`` value of a body: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of exactly ``body`` under ``secret`` (constant-time compare).

    :param secret: the shared signing secret.
    :param body: the raw request body, before any JSON parsing.
    :param header: the received ``X-Segprovider-Signature`` value.
    """
    return header is not None and hmac.compare_digest(sign_body(secret, body), header)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # keeps every digit; float() would not
    return str(value)


@dataclass(frozen=True)
class WebhookConfig:
    """Validated configuration of one webhook destination.

    :param url: the endpoint.
    :param batch_size: records per POST.
    :param connection_id: the Airflow connection holding the secret, for messages.
    """

    url: str
    batch_size: int
    connection_id: str | None


class WebhookClient(HttpDestination):
    """POSTs signed JSON batches to one URL.

    :param name: the destination's name.
    :param config: validated configuration.
    :param http: the HTTP client (base URL = the webhook URL).
    :param signing_secret: the shared HMAC secret.
    """

    kind = KIND
    can_read_members = False

    def __init__(self, name: str, config: WebhookConfig, http: DestinationHttpClient, signing_secret: str) -> None:
        super().__init__(name, http)
        self.config = config
        self.max_batch_size = config.batch_size
        self._signing_secret = signing_secret

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any], credentials: Mapping[str, Any]) -> WebhookClient:
        """Validate ``config`` and ``credentials`` and build the client.

        :param name: the destination's name.
        :param config: ``url``, ``batch_size``, ``connection_id`` and HTTP overrides.
        :param credentials: ``signing_secret`` and optionally ``auth_token``.
        :raises DestinationConfigError: a field is missing or invalid.
        """
        reader, secrets, connection_id = config_readers(name, config, credentials)
        signing_secret = secrets.required_str("signing_secret")
        auth_token = secrets.optional_str("auth_token")
        url = reader.required_str("url")
        webhook_config = WebhookConfig(
            url=url,
            batch_size=reader.optional_int("batch_size", minimum=1, maximum=MAX_BATCH_SIZE) or DEFAULT_BATCH_SIZE,
            connection_id=connection_id,
        )
        # The URL doubles as base URL, so it gets the same http(s) validation as any base_url.
        settings = HttpSettings(base_url=url).overridden_by(ConfigReader(name, {**config, "base_url": url}))
        http = DestinationHttpClient(
            destination=name,
            settings=settings,
            auth=BearerAuth(auth_token) if auth_token else Auth(),
            auth_hint=f"the receiver refused us: check the secrets in {connection_phrase(name, connection_id)}",
        )
        return cls(name, webhook_config, http, signing_secret)

    def __repr__(self) -> str:
        return f"WebhookClient(name={self.name!r}, url={self.config.url!r}, signing_secret='***')"

    def check(self) -> None:
        """Send a signed ``check`` batch without records; any 2xx passes."""
        self._post("check", [])

    def check_fields(self, field_names: Sequence[str]) -> None:
        """Accept any mapping: a webhook's attributes are free-form JSON."""

    def upsert(self, records: Sequence[Record]) -> BatchResult:
        """POST the records as ``upsert`` batches."""
        return self._send("upsert", records)

    def add_members(self, records: Sequence[Record]) -> BatchResult:
        """POST the records as ``add`` batches."""
        return self._send("add", records)

    def remove_members(
        self, records: Sequence[Record], destination_ids: Mapping[str, str] | None = None
    ) -> BatchResult:
        """POST the records as ``remove`` batches, with their destination ids when known."""
        return self._send("remove", records, destination_ids or {})

    def erase(self, records: Sequence[Record], destination_ids: Mapping[str, str] | None = None) -> BatchResult:
        """POST the records as ``erase`` batches, with their destination ids when known: the receiver deletes
        everything it holds on each person."""
        return self._send("erase", records, destination_ids or {})

    def iter_members(self, page_size: int = 500) -> Iterator[Member]:
        """Always fails: a webhook has no way to list what its receiver holds."""
        raise UnsupportedOperationError(
            "a webhook destination cannot be read back",
            destination=self.name,
            hint="skip member-level reconciliation for webhook destinations",
        )

    def member_count(self) -> int:
        """Always fails: a webhook has no way to count what its receiver holds."""
        raise UnsupportedOperationError(
            "a webhook destination cannot report its size",
            destination=self.name,
            hint="remove cross_system_counts gates from syncs to webhook destinations",
        )

    def _send(
        self, action: str, records: Sequence[Record], destination_ids: Mapping[str, str] | None = None
    ) -> BatchResult:
        result = BatchResult()
        for chunk in chunked(records, self.config.batch_size):
            payload_records = []
            for record in chunk:
                item: dict[str, Any] = {
                    "key": record.key,
                    "identity": record.identity,
                    "attributes": dict(record.attributes),
                }
                if destination_ids and record.key in destination_ids:
                    item["destination_id"] = destination_ids[record.key]
                payload_records.append(item)
            answer = self._post(action, payload_records)
            keys = {record.key for record in chunk}
            refused: dict[str, RejectedRecord] = {}
            entries = answer.get("rejected") if isinstance(answer, dict) else None
            for entry in entries or []:
                key = str(entry.get("key", "")) if isinstance(entry, dict) else ""
                if key in keys:
                    refused[key] = RejectedRecord(
                        key, str(entry.get("code") or "rejected"), str(entry.get("message") or "refused by receiver")
                    )
                else:
                    logger.warning("destination '%s': receiver rejected unknown key %r", self.name, key)
            result.rejected.extend(refused.values())
            result.acknowledged.extend(record.key for record in chunk if record.key not in refused)
        return result

    def _post(self, action: str, records: list[dict[str, Any]]) -> Any:
        batch_id = str(uuid.uuid4())
        body = json.dumps(
            {
                "destination": self.name,
                "action": action,
                "batch_id": batch_id,
                "sent_at": datetime.now(timezone.utc).isoformat(),
                "records": records,
            },
            separators=(",", ":"),
            sort_keys=True,
            default=_json_default,
        ).encode("utf-8")
        response = self.http.request(
            "POST",
            "",
            content=body,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign_body(self._signing_secret, body),
                BATCH_ID_HEADER: batch_id,
            },
            operation=f"{action} batch of {len(records)} records",
        )
        # Receivers may answer with an empty or non-JSON body; only a JSON answer can carry refusals.
        if "json" in response.headers.get("Content-Type", "").lower():
            return response.json()
        return None

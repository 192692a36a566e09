"""A generic webhook receiver: ``POST /webhook/{name}`` with a JSON batch.

The sender signs the raw body: ``X-Segprovider-Signature: sha256=<hex>`` where the hex
is the HMAC-SHA256 of the body under the configured secret. A missing or wrong
signature is a 401 and nothing is recorded; a good one records the batch and
answers ``{"status": "ok", "batch_id", "records"}`` (``records``: the array's length,
or that of the object's ``records`` array, else 1).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

from segprovider_sandbox.wire import Routes, SandboxResponse, VendorError

if TYPE_CHECKING:
    from segprovider_sandbox.config import Credentials
    from segprovider_sandbox.store import SandboxState
    from segprovider_sandbox.wire import SandboxRequest

PREFIX = "/webhook"
SIGNATURE_HEADER = "X-Segprovider-Signature"


def sign(body: bytes, secret: str) -> str:
    """The ``X-Segprovider-Signature`` value for a body.

    :param body: the exact bytes sent.
    :param secret: the shared secret.
    """
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _error(status: int, message: str) -> SandboxResponse:
    return SandboxResponse.json(status, {"status": "error", "message": message})


def _record_count(batch: Any) -> int:
    if isinstance(batch, list):
        return len(batch)
    if isinstance(batch, dict) and isinstance(batch.get("records"), list):
        return len(batch["records"])
    return 1


class WebhookApi:
    """Receives signed JSON batches into a :class:`SandboxState`.

    :param state: the store.
    :param credentials: holds the signing secret.
    """

    vendor = "webhook"
    max_concurrent_requests: int | None = None

    def __init__(self, state: SandboxState, credentials: Credentials) -> None:
        self._state = state
        self._secret = credentials.webhook_secret
        routes = Routes()
        routes.add("POST", r"/webhook/(?P<name>[^/]+)", self._receive)
        self._routes = routes

    def owns(self, path: str) -> bool:
        """Whether the path is under ``/webhook``.

        :param path: the request path.
        """
        return path.startswith(PREFIX + "/")

    def authenticate(self, request: SandboxRequest) -> str:
        """Check the HMAC signature of the raw body; a 401 when missing or wrong.

        :param request: the request.
        """
        signature = request.header(SIGNATURE_HEADER) or ""
        if not hmac.compare_digest(signature, sign(request.body, self._secret)):
            raise VendorError(_error(401, f"missing or invalid {SIGNATURE_HEADER} (sha256=<hex HMAC of the body>)"))
        return signature

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Record the batch.

        :param request: a request with a valid signature.
        """
        resolved = self._routes.resolve(request.method, request.path)
        if resolved.handler is None:
            return _error(405 if resolved.allowed else 404, "webhooks take POST /webhook/{name}")
        return resolved.handler(request, resolved.params)

    def rate_limited(self, retry_after: int, *, concurrency: bool) -> SandboxResponse:
        """A 429 with ``Retry-After``.

        :param retry_after: seconds to advertise.
        :param concurrency: unused.
        """
        return _error(429, "too many requests").with_headers({"Retry-After": str(retry_after)})

    def server_error(self, status: int) -> SandboxResponse:
        """A JSON 5xx.

        :param status: the 5xx status.
        """
        return _error(status, "injected server error")

    def finish(self, response: SandboxResponse) -> SandboxResponse:
        """Nothing to add.

        :param response: the response.
        """
        return response

    def _receive(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        try:
            batch = request.json()
        except (ValueError, UnicodeDecodeError):
            return _error(400, "the body must be JSON")
        with self._state.write() as cursor:
            cursor.execute(
                "INSERT INTO webhook_batches (name, received_at, body) VALUES (?, ?, ?)",
                (params["name"], time.time(), json.dumps(batch)),
            )
            batch_id = cursor.lastrowid
        return SandboxResponse.json(200, {"status": "ok", "batch_id": batch_id, "records": _record_count(batch)})

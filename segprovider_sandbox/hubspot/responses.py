"""HubSpot's error bodies, timestamps and batch answers."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from segprovider_sandbox.wire import SandboxResponse, VendorError

if TYPE_CHECKING:
    from segprovider_sandbox.wire import SandboxRequest


def error_body(status: int, message: str, category: str, **extra: Any) -> SandboxResponse:
    """A HubSpot error response.

    :param status: the HTTP status.
    :param message: the human-readable message.
    :param category: e.g. ``VALIDATION_ERROR``, ``OBJECT_NOT_FOUND``.
    :param extra: more members, e.g. ``context``.
    """
    return SandboxResponse.json(
        status,
        {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra},
    )


def validation_error(message: str) -> VendorError:
    """HubSpot's 400 ``VALIDATION_ERROR``, to raise."""
    return VendorError(error_body(400, message, "VALIDATION_ERROR"))


def timestamp(epoch: float) -> str:
    """Epoch seconds as HubSpot's ISO 8601 timestamp (milliseconds, ``Z``)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def json_body(request: SandboxRequest) -> dict[str, Any]:
    """The request body as a JSON object; a 400 ``VALIDATION_ERROR`` when it is not one."""
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise validation_error(f"Invalid input JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise validation_error("Invalid input JSON: expected an object.")
    return body


def batch_answer(started: float, results: list[dict[str, Any]], errors: list[dict[str, Any]]) -> SandboxResponse:
    """A batch answer: 200, or 207 Multi-Status with ``errors`` and ``numErrors`` when some inputs failed."""
    payload: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": timestamp(started),
        "completedAt": timestamp(time.time()),
    }
    if errors:
        payload["errors"] = errors
        payload["numErrors"] = len(errors)
    return SandboxResponse.json(207 if errors else 200, payload)

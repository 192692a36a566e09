"""Mailchimp's error documents and response shaping: problem+json errors, paging, ``fields`` trimming."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from segprovider_sandbox.wire import SandboxResponse, VendorError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from segprovider_sandbox.wire import SandboxRequest


DEFAULT_COUNT = 10
MAX_COUNT = 1000
ERRORS_URL = "https://mailchimp.com/developer/marketing/docs/errors/"


def problem(status: int, title: str, detail: str, **extra: Any) -> SandboxResponse:
    """A Mailchimp error document.

    :param status: the HTTP status.
    :param title: the error type's title, e.g. ``Resource Not Found``.
    :param detail: what happened this time.
    :param extra: more members, e.g. ``errors`` for an Invalid Resource.
    """
    return SandboxResponse.json(
        status,
        {
            "type": ERRORS_URL,
            "title": title,
            "status": status,
            "detail": detail,
            "instance": str(uuid.uuid4()),
            **extra,
        },
        content_type="application/problem+json; charset=utf-8",
    )


def resource_not_found() -> VendorError:
    """Mailchimp's 404 ``Resource Not Found``, to raise."""
    return VendorError(problem(404, "Resource Not Found", "The requested resource could not be found."))


def invalid_resource(detail: str, field: str) -> VendorError:
    """Mailchimp's 400 ``Invalid Resource`` naming ``field`` in ``errors``, to raise."""
    return VendorError(
        problem(
            400,
            "Invalid Resource",
            "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
            errors=[{"field": field, "message": detail}],
        )
    )


@lru_cache(maxsize=4096)
def timestamp(epoch: float) -> str:
    """Epoch seconds as Mailchimp's ISO 8601 timestamp (whole seconds, UTC)."""
    # Cached: a batch stamps hundreds of members with the same instant.
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def paging(request: SandboxRequest) -> tuple[int, int]:
    """``count`` and ``offset``, validated like Mailchimp's collections."""
    try:
        count = int(request.query_value("count") or DEFAULT_COUNT)
        offset = int(request.query_value("offset") or 0)
    except ValueError as exc:
        raise invalid_resource("count and offset must be integers", "count") from exc
    if not 1 <= count <= MAX_COUNT or offset < 0:
        raise invalid_resource(f"count must be between 1 and {MAX_COUNT} and offset not negative", "count")
    return count, offset


def _field_tree(paths: Iterable[str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path.strip().split("."):
            if part:
                node = node.setdefault(part, {})
    return tree


def _keep(value: Any, tree: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_keep(item, tree) for item in value]
    if not isinstance(value, dict) or not tree:
        return value
    return {key: _keep(value[key], sub) for key, sub in tree.items() if key in value}


def _drop(value: Any, tree: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_drop(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for key, item in value.items():
        sub = tree.get(key)
        if sub is None:
            kept[key] = item
        elif sub:
            kept[key] = _drop(item, sub)
        # an empty subtree names the key itself, which is dropped
    return kept


def _trim(request: SandboxRequest, payload: dict[str, Any]) -> dict[str, Any]:
    """Apply the ``fields`` / ``exclude_fields`` query parameters (comma separated, dot notation)."""
    fields = request.query_value("fields")
    if fields:
        payload = _keep(payload, _field_tree(fields.split(",")))
    exclude = request.query_value("exclude_fields")
    if exclude:
        payload = _drop(payload, _field_tree(exclude.split(",")))
    return payload


def ok(request: SandboxRequest, payload: dict[str, Any]) -> SandboxResponse:
    """A 200 JSON answer, trimmed by the ``fields`` / ``exclude_fields`` query parameters."""
    return SandboxResponse.json(200, _trim(request, payload))


def json_body(request: SandboxRequest) -> dict[str, Any]:
    """The request body as a JSON object; a 400 ``JSON Parse Exception`` when it is not one."""
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise VendorError(
            problem(400, "JSON Parse Exception", "We encountered an unspecified JSON parsing error.")
        ) from exc
    if not isinstance(body, dict):
        raise VendorError(problem(400, "JSON Parse Exception", "The request body must be a JSON object."))
    return body

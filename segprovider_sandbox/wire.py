"""Requests and responses as the vendor modules see them, free of sockets.

The HTTP server turns bytes into a :class:`SandboxRequest`; a vendor module answers
with a :class:`SandboxResponse` (or raises :class:`VendorError` carrying one). The value
checks every vendor shares (email addresses, numeric text) live here too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, unquote

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    RouteHandler = Callable[["SandboxRequest", dict[str, str]], "SandboxResponse"]

_EMAIL = re.compile(
    r"[^@\s,;<>()\[\]\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)


def is_valid_email(value: object) -> bool:
    """Whether a value looks like a deliverable email address (one ``@``, a dotted domain).

    :param value: the candidate.
    """
    return isinstance(value, str) and len(value) <= 254 and _EMAIL.fullmatch(value) is not None


#: numeric text as the vendors accept it for number fields: an optional sign, digits, a fraction, an exponent.
NUMBER_TEXT = re.compile(r"^\s*-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


def parse_number(value: Any) -> float | None:
    """A number or numeric text as a float; None for anything else (booleans and None included).

    :param value: the candidate.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return float(value) if isinstance(value, str) and NUMBER_TEXT.match(value) else None


@dataclass(frozen=True)
class SandboxRequest:
    """One HTTP request.

    :param method: upper-case method.
    :param path: the path as sent (percent-encoded; :class:`Routes` decodes the parameters it extracts).
    :param query_string: the raw query string.
    :param headers: header names lower-cased.
    :param body: the raw body.
    """

    method: str
    path: str
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @cached_property
    def query(self) -> dict[str, list[str]]:
        """The query string's parameters, parsed once."""
        return parse_qs(self.query_string, keep_blank_values=True)

    def query_value(self, name: str) -> str | None:
        """The first value of a query parameter, or None.

        :param name: the parameter.
        """
        values = self.query.get(name)
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        """A header's value, or None.

        :param name: the header, any case.
        """
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body parsed as JSON; raises :class:`ValueError` when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))

    @cached_property
    def form(self) -> dict[str, str]:
        """The body as ``application/x-www-form-urlencoded`` fields (first value of each), parsed once."""
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {name: values[0] for name, values in parsed.items()}


@dataclass(frozen=True)
class SandboxResponse:
    """One HTTP response.

    :param status: the status code.
    :param body: the body bytes.
    :param headers: extra headers (``Content-Length`` is added when sent).
    """

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls,
        status: int,
        payload: Any,
        *,
        content_type: str = "application/json; charset=utf-8",
        headers: Mapping[str, str] | None = None,
    ) -> SandboxResponse:
        """A JSON response.

        :param status: the status code.
        :param payload: the JSON value.
        :param content_type: the media type (Mailchimp's errors use ``application/problem+json``).
        :param headers: extra headers.
        """
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return cls(status, body, {"Content-Type": content_type, **(headers or {})})

    def with_headers(self, headers: Mapping[str, str]) -> SandboxResponse:
        """A copy with more headers.

        :param headers: headers to add or replace.
        """
        return SandboxResponse(self.status, self.body, {**self.headers, **headers})


class VendorError(Exception):
    """Raised inside a vendor handler to answer at once with ``response``.

    :param response: the (error) response to send.
    """

    def __init__(self, response: SandboxResponse) -> None:
        super().__init__(f"HTTP {response.status}")
        self.response = response


class VendorApi(Protocol):
    """What the server needs from each vendor module."""

    #: name used in the request log, the fault settings and the credentials.
    vendor: str
    #: simultaneous requests per credential before a 429, or None for no cap.
    max_concurrent_requests: int | None

    def owns(self, path: str) -> bool:
        """Whether this vendor serves the path."""

    def authenticate(self, request: SandboxRequest) -> str:
        """The credential the request carries; raises :class:`VendorError` (a 401) when not accepted."""

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Serve an authenticated request that met no fault."""

    def rate_limited(self, retry_after: int, *, concurrency: bool) -> SandboxResponse:
        """The vendor's 429, for a full rate-limit window or (``concurrency``) too many simultaneous requests."""

    def server_error(self, status: int) -> SandboxResponse:
        """The vendor's answer for an injected 5xx."""

    def finish(self, response: SandboxResponse) -> SandboxResponse:
        """Last touch on every response of this vendor (e.g. rate-limit headers)."""


@dataclass(frozen=True)
class Resolved:
    """The outcome of routing a request.

    :param handler: the handler, or None when no route serves the method and path.
    :param params: the path parameters, percent-decoded.
    :param allowed: the methods the path does serve, when ``handler`` is None because of the method.
    """

    handler: RouteHandler | None
    params: dict[str, str] = field(default_factory=dict)
    allowed: tuple[str, ...] = ()


class Routes:
    """A vendor's route table: method plus a path pattern with named groups."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], RouteHandler]] = []

    def add(self, method: str, pattern: str, handler: RouteHandler) -> None:
        """Register a route.

        :param method: the HTTP method.
        :param pattern: a regular expression matched against the whole path.
        :param handler: called with the request and the named groups.
        """
        self._routes.append((method, re.compile(pattern), handler))

    def resolve(self, method: str, path: str) -> Resolved:
        """Find the route for a request.

        :param method: the HTTP method.
        :param path: the path.
        """
        allowed: list[str] = []
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if route_method == method:
                return Resolved(handler, {name: unquote(value) for name, value in match.groupdict().items()})
            allowed.append(route_method)
        return Resolved(None, allowed=tuple(allowed))

"""Errors raised by destination connectors, split by whether a retry can help.

The sync engine keys its retry logic on this split, as dlt's loader does:

* :class:`TerminalDestinationError` - retrying cannot fix it (bad request, bad
  credentials, a missing list, a malformed response, bad configuration). The
  message names the destination and says what to fix.
* :class:`TransientDestinationError` - retrying later may succeed (5xx after
  the client's own retries, timeouts, dropped connections, rate-limit budget
  exhausted).

Per-record failures inside an accepted batch are not exceptions at all: they
come back as :class:`RejectedRecord` entries in the batch result, so one bad
email never fails the other 499 in its batch.

Every exception carries its facts as attributes (``destination``, ``status``,
``path``, ``body_excerpt``, ``hint``) and pickles with them intact, because
Airflow moves exceptions across processes. None of them may hold a secret:
:class:`~airflow_segprovider.destinations.http.DestinationHttpClient` masks
credentials before it builds one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_segprovider.core.errors import SegproviderError


@dataclass(frozen=True)
class RejectedRecord:
    """One record the destination refused, with the destination's reason.

    :param key: our customer key of the refused record.
    :param code: a short, stable reason code (the vendor's error code where it gives one).
    :param message: the vendor's explanation, or ours when we refused before sending.
    """

    key: str
    code: str
    message: str


class DestinationError(SegproviderError):
    """Base of every destination failure.

    :param message: what failed, in words a data engineer can act on.
    :param destination: the destination's name as declared in the project.
    :param status: the HTTP status of the failing response, if there was one.
    :param path: the endpoint's URL path (never the query string, which may hold a token).
    :param body_excerpt: the start of the response body, secrets masked.
    :param hint: how to fix it.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        destination: str = "",
        status: int | None = None,
        path: str | None = None,
        body_excerpt: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.destination = destination
        self.status = status
        self.path = path
        self.body_excerpt = body_excerpt
        self.hint = hint

    def __str__(self) -> str:
        text = f"destination '{self.destination}': {self.message}" if self.destination else self.message
        where = []
        if self.status is not None:
            where.append(f"HTTP {self.status}")
        if self.path:
            where.append(f"on {self.path}")
        if where:
            text += f" ({' '.join(where)})"
        if self.body_excerpt:
            text += f"\n    response: {self.body_excerpt}"
        if self.hint:
            text += f"\n    fix: {self.hint}"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, destination={self.destination!r}, status={self.status!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickling replays ``cls(*args)``; the keyword-only fields travel in the state dict.
        return (type(self), (self.message,), self.__dict__.copy())


class TerminalDestinationError(DestinationError):
    """Retrying cannot help: the request, the credentials or the configuration must change."""

    retryable = False


class DestinationAuthError(TerminalDestinationError):
    """The destination refused our credentials (401) or their permissions (403)."""


class DestinationConfigError(TerminalDestinationError):
    """The destination's configuration is incomplete or invalid; raised before any request.

    :param field: the configuration or credential field at fault.
    """

    def __init__(self, message: str, *, field: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.field = field


class MalformedResponseError(TerminalDestinationError):
    """The destination answered with a body we cannot read (e.g. not JSON where JSON is documented)."""


class UnsupportedOperationError(TerminalDestinationError):
    """The destination cannot do this at all (e.g. Meta cannot list the members of an audience)."""


class TransientDestinationError(DestinationError):
    """Retrying later may succeed: 5xx, timeouts, dropped connections, rate limits.

    :param attempts: how many attempts the HTTP client made before giving up.
    """

    retryable = True

    def __init__(self, message: str, *, attempts: int = 0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.attempts = attempts


class RateLimitExhaustedError(TransientDestinationError):
    """The destination kept rate limiting us beyond the client's budget of waits.

    :param retry_after: the wait, in seconds, the destination last asked for, if it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

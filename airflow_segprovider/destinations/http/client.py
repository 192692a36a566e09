"""The retry loop itself: one session per destination, paced, rate-limit aware, secrets masked."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from airflow_segprovider import __version__
from airflow_segprovider.core.destination import (
    DestinationAuthError,
    MalformedResponseError,
    QuotaExhaustedError,
    RateLimitExhaustedError,
    TerminalDestinationError,
    TransientDestinationError,
)
from airflow_segprovider.destinations.http.auth import Auth
from airflow_segprovider.destinations.http.pacing import TokenBucket
from airflow_segprovider.destinations.http.policy import ResponsePolicy, parse_retry_after
from airflow_segprovider.destinations.http.redaction import BODY_EXCERPT_CHARS, URLLIB_REDACTION, mask_secrets

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from requests.structures import CaseInsensitiveDict

    from airflow_segprovider.destinations.http.settings import HttpSettings

__all__ = ["DestinationHttpClient", "HttpResponse"]

# The package's name, as before the HTTP layer became a package: log configuration keyed on it keeps working.
logger = logging.getLogger("airflow_segprovider.destinations.http")


@dataclass(frozen=True)
class HttpResponse:
    """An accepted (2xx) response.

    :param status: the HTTP status.
    :param headers: response headers (case-insensitive).
    :param body: the raw body.
    :param destination: the destination's name, for errors.
    :param path: the request path with secrets masked, for errors.
    :param masker: masks secrets in body excerpts.
    """

    status: int
    headers: CaseInsensitiveDict[str]
    body: bytes
    destination: str
    path: str
    masker: Callable[[str], str]

    def excerpt(self) -> str:
        """The start of the body, secrets masked, for error messages."""
        return self.masker(self.body[:BODY_EXCERPT_CHARS].decode("utf-8", errors="replace"))

    def json(self) -> Any:
        """The body parsed as JSON; ``None`` for an empty body (e.g. 204).

        :raises MalformedResponseError: the body is not JSON.
        """
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise MalformedResponseError(
                f"expected a JSON body but could not parse it ({exc.msg} at position {exc.pos})"
                if isinstance(exc, json.JSONDecodeError)
                else "expected a JSON body but could not parse it",
                destination=self.destination,
                status=self.status,
                path=self.path,
                body_excerpt=self.excerpt(),
                hint="check that base_url points at the vendor's API (not a web page or a proxy)",
            ) from None

    def json_object(self) -> dict[str, Any]:
        """The body parsed as a JSON object, as most vendor endpoints document.

        :raises MalformedResponseError: the body is not JSON, or not an object.
        """
        payload = self.json()
        if not isinstance(payload, dict):
            raise MalformedResponseError(
                f"expected a JSON object but got {type(payload).__name__}",
                destination=self.destination,
                status=self.status,
                path=self.path,
                body_excerpt=self.excerpt(),
                hint="check that base_url points at the vendor's API (not a web page or a proxy)",
            )
        return payload


class DestinationHttpClient:
    """One HTTP session per destination instance, safe to share between sender threads.

    :param destination: the destination's name, quoted in every log line and error.
    :param settings: transport settings.
    :param auth: credentials; defaults to none.
    :param policy: vendor-specific reading of responses.
    :param auth_hint: what to tell the user on 401/403, e.g. "check the API key in connection 'x'".
    :param default_headers: headers sent with every request.
    :param sleep: sleep function, injectable for tests.
    """

    def __init__(
        self,
        *,
        destination: str,
        settings: HttpSettings,
        auth: Auth | None = None,
        policy: ResponsePolicy | None = None,
        auth_hint: str = "",
        default_headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.destination = destination
        self.settings = settings
        self.auth = auth or Auth()
        self.policy = policy or ResponsePolicy()
        self.auth_hint = auth_hint
        self._sleep = sleep
        self._secrets = tuple(s for s in self.auth.secrets() if s)
        self._bucket = TokenBucket(settings.requests_per_second, settings.burst, sleep=sleep)
        self._slots = threading.BoundedSemaphore(settings.max_concurrency)
        self._quota_spent: QuotaExhaustedError | None = None
        self._session = requests.Session()
        # One pooled connection per allowed concurrent request; the semaphore already bounds them.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=settings.max_concurrency, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({"User-Agent": f"airflow-segprovider/{__version__}", "Accept": "application/json"})
        if default_headers:
            self._session.headers.update(default_headers)
        self._closed = False
        URLLIB_REDACTION.register(self._secrets)

    def __repr__(self) -> str:
        return (
            f"DestinationHttpClient(destination={self.destination!r}, "
            f"base_url={self.mask(self.settings.base_url)!r}, auth={self.auth!r})"
        )

    def __enter__(self) -> DestinationHttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections; the client cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            self._session.close()
            URLLIB_REDACTION.unregister(self._secrets)

    def mask(self, text: str) -> str:
        """``text`` with this client's secrets replaced by ``***``."""
        return mask_secrets(text, self._secrets)

    def url_for(self, path: str) -> str:
        """The absolute URL of ``path`` under the base URL; the base URL itself for an empty path."""
        if not path:
            return self.settings.base_url
        if not path:  # the base URL itself (a webhook endpoint), without a trailing slash added
            return self.settings.base_url
        return self.settings.base_url.rstrip("/") + "/" + path.lstrip("/")

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """:meth:`request`, then the body parsed as JSON (``None`` when empty).

        :raises MalformedResponseError: the body is not JSON.
        """
        return self.request(method, path, **kwargs).json()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        operation: str = "",
        hints: Mapping[int, str] | None = None,
    ) -> HttpResponse:
        """Send one request with pacing, rate-limit waits and retries; return the 2xx response.

        :param method: HTTP method.
        :param path: path under the base URL (ids already URL-quoted).
        :param params: query parameters.
        :param json_body: a JSON-serialisable body.
        :param form: a form-encoded body.
        :param content: raw body bytes (with ``Content-Type`` in ``headers``); sent byte for byte.
        :param headers: extra headers.
        :param operation: what this request does, in words, for log lines and errors.
        :param hints: per-status advice for terminal errors (e.g. ``{404: "check list_id"}``).
        :raises TerminalDestinationError: a 4xx other than a rate limit; :class:`DestinationAuthError` on 401/403.
        :raises TransientDestinationError: 5xx, timeouts or connection errors after ``max_attempts``;
            :class:`RateLimitExhaustedError` when the rate-limit budget is spent.
        """
        if self._closed:
            raise RuntimeError(f"the HTTP client of destination '{self.destination}' is closed")
        settings = self.settings
        url = self.url_for(path)
        shown_path = self.mask(urlsplit(url).path)
        what = operation or f"{method} {shown_path}"
        send_headers: dict[str, str] = dict(headers or {})
        send_params: dict[str, Any] = dict(params or {})
        self.auth.apply(send_headers, send_params)
        body: bytes | Mapping[str, Any] | None = content
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":"), default=str).encode("utf-8")
            send_headers.setdefault("Content-Type", "application/json")
        elif form is not None:
            body = form

        if self._quota_spent is not None:
            raise self._quota_spent
        attempts = 0
        rate_limit_waits = 0
        rate_limit_waited = 0.0
        while True:
            self._bucket.acquire()
            failure: str
            retry_after: float | None = None
            started = time.monotonic()
            with self._slots:
                try:
                    response = self._session.request(
                        method,
                        url,
                        params=send_params or None,
                        data=body,
                        headers=send_headers,
                        timeout=(settings.connect_timeout, settings.read_timeout),
                    )
                except requests.Timeout as exc:
                    response = None
                    failure = f"timed out ({type(exc).__name__})"
                except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                    response = None
                    failure = f"connection failed ({type(exc).__name__})"
            elapsed = time.monotonic() - started

            if response is not None:
                logger.debug(
                    "destination '%s': %s %s -> %s in %.3fs",
                    self.destination,
                    method,
                    shown_path,
                    response.status_code,
                    elapsed,
                )
                signal = self.policy.rate_limit(response)
                if signal is not None:
                    wait = settings.default_rate_limit_wait if signal.wait is None else signal.wait
                    if signal.give_up:  # a spent quota (a daily limit): no wait in this run helps
                        # later requests of this client fail at once rather than spend more refusals
                        self._quota_spent = QuotaExhaustedError(
                            f"{what}: {self.mask(signal.reason)}",
                            destination=self.destination,
                            status=response.status_code,
                            path=shown_path,
                            body_excerpt=self._excerpt(response),
                            hint=signal.hint or "the quota refills later: rerun then, or raise the account's limit",
                            limit=signal.limit,
                        )
                        raise self._quota_spent
                    if (
                        rate_limit_waits >= settings.max_rate_limit_waits
                        or rate_limit_waited + wait > settings.max_rate_limit_wait_seconds
                    ):
                        raise RateLimitExhaustedError(
                            f"{what}: still rate limited after {rate_limit_waits} waits "
                            f"({rate_limit_waited:.1f}s); {self.mask(signal.reason)}",
                            destination=self.destination,
                            status=response.status_code,
                            path=shown_path,
                            body_excerpt=self._excerpt(response),
                            hint="retry later, lower requests_per_second or max_concurrency, "
                            "or raise max_rate_limit_waits / max_rate_limit_wait_seconds",
                            attempts=attempts + 1,
                            retry_after=signal.wait,
                        )
                    rate_limit_waits += 1
                    rate_limit_waited += wait
                    logger.warning(
                        "destination '%s': %s rate limited (%s); pausing the destination %.2fs (wait %d of at most %d)",
                        self.destination,
                        what,
                        self.mask(signal.reason),
                        wait,
                        rate_limit_waits,
                        settings.max_rate_limit_waits,
                    )
                    self._bucket.pause_for(wait)
                    continue  # a rate-limit wait is not a failed attempt

                pause = self.policy.pace(response)
                if pause > 0:
                    logger.info(
                        "destination '%s': quota nearly spent; pausing %.2fs before the next request",
                        self.destination,
                        pause,
                    )
                    self._bucket.pause_for(pause)

                if 200 <= response.status_code < 300:
                    return HttpResponse(
                        status=response.status_code,
                        headers=response.headers,
                        body=response.content,
                        destination=self.destination,
                        path=shown_path,
                        masker=self.mask,
                    )
                if not self.policy.is_transient(response):
                    raise self._terminal_error(response, what, shown_path, hints or {})
                failure = f"HTTP {response.status_code}"
                detail = self.policy.error_detail(response)
                if detail:
                    failure += f": {self.mask(detail)}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))

            attempts += 1
            if attempts >= settings.max_attempts:
                raise TransientDestinationError(
                    f"{what} failed after {attempts} attempt{'s' if attempts != 1 else ''}: {failure}",
                    destination=self.destination,
                    status=response.status_code if response is not None else None,
                    path=shown_path,
                    body_excerpt=self._excerpt(response) if response is not None else None,
                    hint="the destination or the network is failing; the sync can be retried later",
                    attempts=attempts,
                )
            ceiling = min(settings.backoff_max, settings.backoff_base * 2 ** (attempts - 1))
            delay = random.uniform(0.0, ceiling)  # full jitter: spreads retries of parallel senders
            if retry_after is not None:
                delay = max(delay, min(retry_after, settings.backoff_max))
            logger.warning(
                "destination '%s': %s %s; retrying in %.2fs (attempt %d of %d)",
                self.destination,
                what,
                failure,
                delay,
                attempts,
                settings.max_attempts,
            )
            self._sleep(delay)

    def _excerpt(self, response: requests.Response) -> str:
        return self.mask(response.content[:BODY_EXCERPT_CHARS].decode("utf-8", errors="replace"))

    def _terminal_error(
        self, response: requests.Response, what: str, path: str, hints: Mapping[int, str]
    ) -> TerminalDestinationError:
        status = response.status_code
        detail = self.mask(self.policy.error_detail(response))
        message = f"{what} was refused" + (f": {detail}" if detail else "")
        common = {
            "destination": self.destination,
            "status": status,
            "path": path,
            "body_excerpt": self._excerpt(response),
        }
        if self.policy.is_auth_failure(response):
            # Vendors such as Meta report bad tokens with a 400: a 400 hint about ids would mislead.
            explicit = hints.get(status) if status in (401, 403) else None
            hint = explicit or self.auth_hint or "check the destination's credentials"
            return DestinationAuthError(message, hint=hint, **common)
        hint = hints.get(status)
        if hint is None and status == 404:
            hint = "check the ids in the destination's config and that base_url points at the right account"
        elif hint is None:
            hint = "the request was invalid for this destination; see the response for the field at fault"
        return TerminalDestinationError(message, hint=hint, **common)

"""The one HTTP client layer every destination connector talks through.

A :class:`DestinationHttpClient` wraps one :class:`requests.Session` per
destination instance and owns everything a vendor API makes us care about:

* **auth** (:class:`BasicAuth`, :class:`BearerAuth`, :class:`QueryTokenAuth`),
  with every secret masked in log lines, exception messages and reprs;
* **pacing**: a token bucket (requests per second plus burst) and a semaphore
  capping simultaneous requests, both shared by every thread that sends
  batches for this destination;
* **rate limits**: a 429 (or a vendor's own rate-limit signal) makes the whole
  destination wait for ``Retry-After`` and is *not* counted as a failed attempt;
  such waits have their own budget (count and total seconds). Vendor headers
  that announce an almost empty quota slow the destination down before it hits
  the wall (see :meth:`ResponsePolicy.pace`);
* **transient failures** (5xx, timeouts, dropped connections): exponential
  backoff with full jitter up to ``max_attempts``, then
  :class:`~airflow_segprovider.core.destination.TransientDestinationError`;
* **terminal failures** (other 4xx, unreadable bodies):
  :class:`~airflow_segprovider.core.destination.TerminalDestinationError`
  naming the destination, the endpoint and what to fix.

Vendor differences (how HubSpot or Meta say "slow down", where their error
message lives) are expressed as a :class:`ResponsePolicy` subclass, so the
retry loop itself exists once.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from airflow_segprovider import __version__
from airflow_segprovider.core.destination import (
    DestinationAuthError,
    MalformedResponseError,
    RateLimitExhaustedError,
    TerminalDestinationError,
    TransientDestinationError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from airflow_segprovider.destinations.base import ConfigReader

logger = logging.getLogger(__name__)

MASK = "***"
BODY_EXCERPT_CHARS = 300


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of every secret in ``text`` with ``***``.

    Longer secrets are replaced first so that a secret containing another is masked whole.
    """
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text


class _UrllibRedactionFilter(logging.Filter):
    """Masks registered secrets in urllib3's own debug lines.

    urllib3 logs every request line *with its query string* at DEBUG, so a
    query-parameter token (Meta's ``access_token``) would otherwise reach any
    log handler that listens at DEBUG. Logger filters only see records created
    by that exact logger, hence one instance attached to each urllib3 logger.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: Counter[str] = Counter()
        self._lock = threading.Lock()

    def register(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets.update(s for s in secrets if s)

    def unregister(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets.subtract(s for s in secrets if s)
            self._secrets = +self._secrets  # drop secrets no live client uses any more

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = list(self._secrets)
        if secrets:
            message = record.getMessage()
            masked = mask_secrets(message, secrets)
            if masked != message:
                record.msg, record.args = masked, None
        return True


_URLLIB_REDACTION = _UrllibRedactionFilter()
for _name in ("urllib3", "urllib3.connectionpool", "urllib3.util.retry"):
    logging.getLogger(_name).addFilter(_URLLIB_REDACTION)


# --- auth -----------------------------------------------------------------------------------


class Auth:
    """How a request proves who we are. Subclasses never show their secrets in ``repr``."""

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        """Add credentials to the outgoing headers or query parameters."""

    def secrets(self) -> tuple[str, ...]:
        """Every string that must never appear in a log line or an error message."""
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BasicAuth(Auth):
    """HTTP basic auth (Mailchimp: any user name, the API key as password).

    :param username: the user name; not treated as a secret.
    :param password: the password or API key.
    """

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self._password = password
        self._header = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Authorization"] = self._header

    def secrets(self) -> tuple[str, ...]:
        return (self._password, self._header.removeprefix("Basic "))

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password={MASK!r})"


class BearerAuth(Auth):
    """``Authorization: Bearer <token>`` (HubSpot private app tokens, webhook receivers).

    :param token: the access token.
    """

    def __init__(self, token: str) -> None:
        self._token = token

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Authorization"] = f"Bearer {self._token}"

    def secrets(self) -> tuple[str, ...]:
        return (self._token,)

    def __repr__(self) -> str:
        return f"BearerAuth(token={MASK!r})"


class QueryTokenAuth(Auth):
    """Token passed as query parameters (Meta's ``access_token`` and ``appsecret_proof``).

    :param params: parameter name to secret value; every value is masked.
    """

    def __init__(self, params: Mapping[str, str]) -> None:
        self._params = dict(params)

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        params.update(self._params)

    def secrets(self) -> tuple[str, ...]:
        return tuple(self._params.values())

    def __repr__(self) -> str:
        return f"QueryTokenAuth(params={ {name: MASK for name in self._params}!r})"


# --- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpSettings:
    """Transport settings of one destination; every field can be overridden from its config.

    :param base_url: scheme, host and path prefix every request path is appended to.
    :param connect_timeout: seconds to establish a connection.
    :param read_timeout: seconds to wait for the response after sending.
    :param max_attempts: attempts per request for 5xx, timeouts and connection errors.
    :param backoff_base: first backoff ceiling in seconds; doubles every attempt (full jitter).
    :param backoff_max: cap of one backoff, in seconds.
    :param requests_per_second: token bucket refill rate; ``None`` means unlimited.
    :param burst: token bucket capacity: requests that may start back to back.
    :param max_concurrency: simultaneous requests, across all threads, for this destination.
    :param max_rate_limit_waits: how many rate-limit waits one request may sit through.
    :param max_rate_limit_wait_seconds: total seconds one request may spend waiting on rate limits.
    :param default_rate_limit_wait: seconds to wait on a rate limit that gives no ``Retry-After``.
    """

    base_url: str
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    requests_per_second: float | None = None
    burst: int = 1
    max_concurrency: int = 4
    max_rate_limit_waits: int = 20
    max_rate_limit_wait_seconds: float = 600.0
    default_rate_limit_wait: float = 10.0

    def overridden_by(self, reader: ConfigReader) -> HttpSettings:
        """Return these settings with the overrides found in a destination's config applied.

        :param reader: the destination's config; its field errors name the destination.
        """
        changes: dict[str, Any] = {}
        base_url = reader.optional_str("base_url")
        if base_url is not None:
            parts = urlsplit(base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                reader.fail("base_url", f"base_url must be an http(s) URL, got {base_url!r}")
            changes["base_url"] = base_url
        for name in (
            "connect_timeout",
            "read_timeout",
            "backoff_base",
            "backoff_max",
            "max_rate_limit_wait_seconds",
            "default_rate_limit_wait",
        ):
            value = reader.optional_float(name, minimum=0.0)
            if value is not None:
                changes[name] = value
        rate = reader.optional_float("requests_per_second", minimum=0.001)
        if rate is not None:
            changes["requests_per_second"] = rate
        for name in ("max_attempts", "burst", "max_concurrency"):
            value_int = reader.optional_int(name, minimum=1)
            if value_int is not None:
                changes[name] = value_int
        waits = reader.optional_int("max_rate_limit_waits", minimum=0)
        if waits is not None:
            changes["max_rate_limit_waits"] = waits
        return replace(self, **changes)


# --- pacing ---------------------------------------------------------------------------------


class TokenBucket:
    """Thread-safe token bucket plus a destination-wide pause.

    :param rate: tokens added per second; ``None`` disables rate limiting (pauses still apply).
    :param burst: bucket capacity.
    :param clock: monotonic clock, injectable for tests.
    :param sleep: sleep function, injectable for tests.
    """

    def __init__(
        self,
        rate: float | None,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rate = rate
        self._capacity = float(max(burst, 1))
        self._tokens = self._capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def pause_for(self, seconds: float) -> None:
        """Hold every caller of :meth:`acquire` back for ``seconds`` from now (never shortens a pause)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def acquire(self) -> float:
        """Block until a request may start; return the seconds spent waiting."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                delay = self._paused_until - now
                if delay <= 0:
                    if self._rate is None:
                        return waited
                    self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
                    self._updated = now
                    if self._tokens >= 1.0:
                        self._tokens -= 1.0
                        return waited
                    delay = (1.0 - self._tokens) / self._rate
            self._sleep(delay)
            waited += delay


# --- vendor policy --------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimited:
    """A response that means "too many requests", as a vendor says it.

    :param wait: seconds the vendor asked us to wait, or ``None`` when it did not say.
    :param give_up: waiting inside this run cannot help (e.g. a daily quota is spent).
    :param reason: the vendor's words, for the log line and the error.
    """

    wait: float | None
    give_up: bool = False
    reason: str = "rate limited"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).

    :param value: the header value, or ``None``.
    :param now: the current time, injectable for tests.
    :return: seconds (never negative), or ``None`` when absent or unreadable.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class ResponsePolicy:
    """How a vendor signals rate limits, transient failures and errors; plain HTTP semantics by default."""

    def rate_limit(self, response: requests.Response) -> RateLimited | None:
        """Return a :class:`RateLimited` when the response asks us to slow down, else ``None``."""
        if response.status_code != 429:
            return None
        return RateLimited(wait=parse_retry_after(response.headers.get("Retry-After")))

    def pace(self, response: requests.Response) -> float:
        """Seconds to pause the destination after this (accepted) response, from vendor quota headers."""
        return 0.0

    def is_transient(self, response: requests.Response) -> bool:
        """Whether a non-2xx response may succeed when repeated."""
        return response.status_code >= 500 or response.status_code == 408

    def is_auth_failure(self, response: requests.Response) -> bool:
        """Whether the response refuses our credentials or their permissions."""
        return response.status_code in (401, 403)

    def error_detail(self, response: requests.Response) -> str:
        """The vendor's explanation of a failed request, from its error body."""
        try:
            payload = response.json()
        except ValueError:
            return ""
        if isinstance(payload, dict):
            for key in ("detail", "message", "error_description", "error", "title"):
                value = payload.get(key)
                if isinstance(value, str) and value:
                    return value
                if isinstance(value, dict) and isinstance(value.get("message"), str):
                    return value["message"]
        return ""


# --- the client -----------------------------------------------------------------------------


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
        self._session = requests.Session()
        # One pooled connection per allowed concurrent request; the semaphore already bounds them.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=settings.max_concurrency, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._session.headers.update({"User-Agent": f"airflow-segprovider/{__version__}", "Accept": "application/json"})
        if default_headers:
            self._session.headers.update(default_headers)
        self._closed = False
        _URLLIB_REDACTION.register(self._secrets)

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
            _URLLIB_REDACTION.unregister(self._secrets)

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
                    if (
                        signal.give_up
                        or rate_limit_waits >= settings.max_rate_limit_waits
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

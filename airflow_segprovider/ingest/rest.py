"""REST API sources: pages of JSON records fetched through the one shared HTTP layer.

Retries on 5xx and timeouts, waits on 429 and ``Retry-After``, pacing and secret
masking are :class:`~airflow_segprovider.destinations.http.DestinationHttpClient`'s
job; this module only decides which page to ask for next (cursor, offset or
``Link`` header) and where the records are in each body.

The connection is a plain mapping shaped like an Airflow connection (``host``,
``port``, ``login``, ``password``, ``extra``), as the hook or
:func:`~airflow_segprovider.destinations.connection.connection_from_env` returns it:

* ``host`` is the base URL (``https://api.example.com``, or a bare host with
  ``extra.scheme``); a source whose ``url`` is absolute needs no host;
* auth: ``extra.auth_type`` is ``basic`` (login and password), ``bearer`` (the
  password is the token), ``query`` (the password sent as query parameter
  ``extra.token_param``, default ``api_key``) or ``none``; without it, login and
  password mean basic, a password alone means bearer;
* ``extra.headers``: headers sent with every request;
* HTTP tuning (``max_attempts``, ``backoff_base``, ``read_timeout``,
  ``requests_per_second``, ...) as for destinations (:class:`HttpSettings`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from airflow_segprovider.core.destination import DestinationError
from airflow_segprovider.destinations.config import ConfigReader
from airflow_segprovider.destinations.http import (
    Auth,
    BasicAuth,
    BearerAuth,
    DestinationHttpClient,
    HttpSettings,
    QueryTokenAuth,
)
from airflow_segprovider.ingest.errors import TerminalIngestError

if TYPE_CHECKING:
    import pyarrow as pa

    from airflow_segprovider.core.project.spec import Source

#: Connection extra keys that are not HTTP tuning.
_NON_TUNING_EXTRA = {"auth_type", "token_param", "headers", "scheme", "base_url"}


@dataclass(frozen=True)
class Page:
    """One response's records.

    :param number: 1-based page number in this load.
    :param origin: the request that produced it (method, path, query without credentials): the page's identity.
    :param records: the records as parsed from the body.
    """

    number: int
    origin: str
    records: list[Any]


def _base_url(source: Source, connection: Mapping[str, Any] | None) -> str:
    host = str((connection or {}).get("host") or "").strip()
    if not host:
        raise TerminalIngestError(
            f"url {source.url!r} is relative but connection {source.connection_id!r} has no host", source=source.name,
            hint="set the connection's host to the API's base URL, e.g. https://api.example.com")
    extra = (connection or {}).get("extra") or {}
    if "://" not in host:
        host = f"{extra.get('scheme', 'https')}://{host}"
    port = (connection or {}).get("port")
    if port and not urlsplit(host).port:
        parts = urlsplit(host)
        host = parts._replace(netloc=f"{parts.netloc}:{int(port)}").geturl()
    return host.rstrip("/")


def _auth(source: Source, connection: Mapping[str, Any] | None) -> Auth:
    connection = connection or {}
    extra = connection.get("extra") or {}
    login, password = connection.get("login") or "", connection.get("password") or ""
    kind = extra.get("auth_type") or ("basic" if login and password else "bearer" if password else "none")
    if kind == "none":
        return Auth()
    if not password:
        raise TerminalIngestError(f"auth_type {kind!r} needs a password in connection {source.connection_id!r}",
                                  source=source.name, hint="set the API key or token as the connection's password")
    if kind == "basic":
        return BasicAuth(login, password)
    if kind == "bearer":
        return BearerAuth(password)
    if kind == "query":
        return QueryTokenAuth({str(extra.get("token_param", "api_key")): password})
    raise TerminalIngestError(f"unknown auth_type {kind!r} in connection {source.connection_id!r}",
                              source=source.name, hint="use basic, bearer, query or none")


def open_client(source: Source, connection: Mapping[str, Any] | None) -> tuple[DestinationHttpClient, str]:
    """The HTTP client for ``source`` and the path of its first request.

    The client's base URL is the API's origin (scheme, host, port), so ``Link`` headers that point
    anywhere on the same origin can be followed; the first path carries any prefix of the base URL.
    """
    assert source.url is not None
    url = source.url if source.url.startswith(("http://", "https://")) else (
        _base_url(source, connection) + "/" + source.url.lstrip("/"))
    parts = urlsplit(url)
    extra = dict((connection or {}).get("extra") or {})
    tuning = {name: value for name, value in extra.items() if name not in _NON_TUNING_EXTRA}
    try:
        settings = HttpSettings(base_url=f"{parts.scheme}://{parts.netloc}").overridden_by(
            ConfigReader(source.name, tuning, source="connection extra", connection_id=source.connection_id or ""))
    except DestinationError as exc:
        raise TerminalIngestError(str(exc), source=source.name) from None
    headers = extra.get("headers") if isinstance(extra.get("headers"), dict) else None
    client = DestinationHttpClient(destination=source.name, settings=settings, auth=_auth(source, connection),
                                   auth_hint=f"check the credentials in connection {source.connection_id!r}",
                                   default_headers=headers)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return client, path


def _dig(body: Any, dotted: str) -> Any:
    value = body
    for part in [p for p in dotted.split(".") if p]:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def iter_pages(source: Source, client: DestinationHttpClient, first_path: str,
               watermark: str | None) -> Iterator[Page]:
    """Request page after page until the API says there is no next one.

    :param watermark: sent as the incremental parameter on every request, when the source is incremental.
    :raises TerminalIngestError: a body without its records list, a repeating cursor, a link to another origin.
    :raises DestinationError: from the HTTP layer (transient after its own retries, or terminal).
    """
    pagination = source.pagination
    path, _, query = first_path.partition("?")
    params: dict[str, Any] = dict(parse_qsl(query))
    params.update({name: _param_text(value) for name, value in source.params.items()})
    if source.incremental is not None and source.incremental.param and watermark is not None:
        params[source.incremental.param] = watermark
    if pagination.style != "none" and pagination.page_size:
        params[pagination.page_size_param] = str(pagination.page_size)
    offset = 0
    seen_cursors: set[str] = set()
    number = 0
    while True:
        number += 1
        if pagination.style == "offset":
            params[pagination.offset_param] = str(offset)
        origin = f"GET {path}" + (f"?{urlencode(sorted(params.items()))}" if params else "")
        response = client.request("GET", path, params=params, operation=f"fetching page {number} ({origin})")
        body = response.json()
        records = body if not source.records else _dig(body, source.records)
        if not isinstance(records, list):
            where = f"at {source.records!r}" if source.records else "as the body"
            raise TerminalIngestError(
                f"page {number} ({origin}) has no list of records {where}; got {type(records).__name__}",
                source=source.name, hint="set 'records' to the dotted path of the list in the JSON body")
        yield Page(number, origin, records)
        if pagination.style == "none" or not records:
            return
        if pagination.style == "cursor":
            cursor = _dig(body, pagination.cursor_path)
            if cursor in (None, "", False):
                return
            cursor = _param_text(cursor)
            if cursor in seen_cursors:
                raise TerminalIngestError(f"the API returned cursor {cursor!r} twice (page {number})",
                                          source=source.name, hint=f"check cursor_path {pagination.cursor_path!r}")
            seen_cursors.add(cursor)
            params[pagination.cursor_param] = cursor
        elif pagination.style == "offset":
            assert pagination.page_size is not None
            if len(records) < pagination.page_size:
                return
            offset += len(records)
        else:  # link_header
            next_url = _next_link(response.headers.get("Link"))
            if next_url is None:
                return
            parts = urlsplit(next_url)
            if parts.netloc and f"{parts.scheme}://{parts.netloc}" != client.settings.base_url:
                raise TerminalIngestError(
                    f"the next-page link of page {number} points to another site ({parts.scheme}://{parts.netloc})",
                    source=source.name, hint="credentials are only sent to the source's own origin")
            path, params = parts.path or "/", dict(parse_qsl(parts.query))


def _next_link(header: str | None) -> str | None:
    if not header:
        return None
    from requests.utils import parse_header_links

    for link in parse_header_links(header):
        if "next" in str(link.get("rel", "")).split():
            return link.get("url")
    return None


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def value_text(value: Any) -> str | None:
    """A JSON value as the text the typed cast reads: strings as they are, others as JSON."""
    if value is None:
        return None
    kind = type(value)  # exact types first: this runs once per field of every record
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float and math.isfinite(value):
        return repr(value)  # what json.dumps writes for a finite float
    if isinstance(value, str):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def page_table(records: list[Any], fields: list[str], row_column: str, invalid_column: str) -> pa.Table:
    """The records of a page as an Arrow table of text columns, one per field, plus the 1-based record
    number and, for a record that is not a JSON object, its JSON text in ``invalid_column``."""
    import pyarrow as pa

    objects = [record if isinstance(record, dict) else {} for record in records]
    # a record that is not a JSON object keeps its JSON text for the quarantine's raw value
    invalid = [None if isinstance(record, dict) else (value_text(record) or "null")[:1000] for record in records]
    arrays = {field: pa.array([value_text(record.get(field)) for record in objects], type=pa.string())
              for field in fields}
    arrays[row_column] = pa.array(range(1, len(records) + 1), type=pa.int64())
    arrays[invalid_column] = pa.array(invalid, type=pa.string())
    return pa.table(arrays)

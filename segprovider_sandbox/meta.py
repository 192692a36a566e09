"""Meta Marketing API customer-file Custom Audiences, as Meta documents them.

Contract (https://developers.facebook.com/docs/marketing-api/reference/custom-audience/users,
https://developers.facebook.com/docs/marketing-api/reference/custom-audience,
https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences,
https://developers.facebook.com/docs/graph-api/guides/error-handling):

* Graph API paths ``/v{N}.0/...``; the ``access_token`` comes as a query or form
  parameter (or ``Authorization: Bearer``). Errors are
  ``{"error": {"message", "type", "code", "fbtrace_id", ...}}``; a bad token is an
  ``OAuthException`` with code 190.
* ``POST /{audience_id}/users`` adds and ``DELETE /{audience_id}/users`` removes people:
  ``payload={"schema": "EMAIL_SHA256" or [...], "data": [...]}`` with at most 10,000
  rows a call. The answer is ``audience_id``, ``session_id``, ``num_received``,
  ``num_invalid_entries`` and ``invalid_entry_samples``.
* Members cannot be read back; ``GET /{audience_id}?fields=approximate_count_lower_bound,
  approximate_count_upper_bound`` reports a size range.
* ``POST /act_{ad_account_id}/customaudiences`` (``name``, ``subtype=CUSTOM``,
  ``customer_file_source``) creates an audience and answers ``{"id"}``.

* The size counts the people Meta *matched* to an account, often well under the number
  uploaded, and an upload may take up to 24 hours to change it. ``GET /{audience_id}/sessions``
  (https://developers.facebook.com/docs/marketing-api/reference/custom-audience-session) lists
  upload sessions with ``num_received``, ``num_invalid_entries``, ``num_matched`` and ``stage``.

Sandbox choices: an entry is invalid unless each hashed key is 64 lower-case hex characters (a
SHA-256 digest) or empty, and ``invalid_entry_samples`` maps up to 10 such values to the reason.
``schema`` is one key or a list of Meta's keys (``EMAIL``, ``PHONE``, ``FN``, ``LN``, ``FI``, ``ZIP``,
``CT``, ``ST``, ``COUNTRY``, ``GEN``, ``DOBY``, ``DOBM``, ``DOBD``, ``MADID``, ``EXTERN_ID``; ``MADID`` and
``EXTERN_ID`` are not hashed, https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences#hash).
A row is matched on any of its *identifiers*: ``EMAIL``, ``PHONE``, ``MADID``, ``EXTERN_ID`` each, and the
name-and-place combinations ``FN``+``LN``+``ZIP`` and ``FN``+``LN``+``CT``+``ST`` (the hash of their hashes);
an identifier matches when its hash's first 32 bits, as a fraction, fall below the configured match rate
(default 0.7: deterministic per key value, the same in every audience and run), so more keys match more
people, as Meta documents. A row with no identifier is invalid. The audience keeps one hash per person: the
first identifier that matched, else the email's (or the first identifier's); a removal takes out every
identifier of its rows. Each call is one session,
``stage`` ``processing`` until the configured application delay (default 0 s) has passed and
``completed`` after, and the size leaves out the matched people of sessions still processing;
the size range is the matched count rounded down and up to two significant figures
(deterministic, and exact below 100); a missing token is code 104, a bad one code 190, both HTTP 400 like the Graph
API; the rate-limit answer is HTTP 429 with Meta's ad-account throttling error (code
80003) and ``Retry-After``.

Throttling is reported as Meta reports Business Use Case limits
(https://developers.facebook.com/docs/graph-api/overview/rate-limiting/#business-use-case-rate-limits): every
answer about an audience or an ad account carries ``X-Business-Use-Case-Usage``, a JSON object keyed by the
business (here: the audience's ad account id) of ``[{"type": "custom_audience", "call_count",
"total_cputime", "total_time", "estimated_time_to_regain_access"}]``; the three usages are percentages of the
window (the sandbox has no CPU accounting, so all three follow the share of calls used) and the time to regain
access is in minutes (0 unless throttled).
"""

from __future__ import annotations

import json
import math
import re
import secrets
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from segprovider_sandbox.meta_keys import MATCH_KEYS, row_identifiers
from segprovider_sandbox.store.meta import applied_matched_count, hash_matches
from segprovider_sandbox.wire import Routes, SandboxResponse, VendorError

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable

    from segprovider_sandbox.config import Credentials
    from segprovider_sandbox.faults import WindowUsage
    from segprovider_sandbox.store import SandboxState
    from segprovider_sandbox.wire import SandboxRequest

MAX_ROWS_PER_CALL = 10_000
MAX_INVALID_SAMPLES = 10
FIRST_AUDIENCE_ID = 23_850_000_000_000_001
EMAIL_KEYS = ("EMAIL", "EMAIL_SHA256")
AUDIENCE_FIELDS = (
    "id",
    "account_id",
    "name",
    "description",
    "subtype",
    "customer_file_source",
    "approximate_count_lower_bound",
    "approximate_count_upper_bound",
    "operation_status",
    "delivery_status",
    "time_created",
    "time_updated",
)

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_VERSION = r"/v\d+\.\d+"


def graph_error(
    status: int, message: str, code: int, error_type: str = "OAuthException", **extra: Any
) -> SandboxResponse:
    """A Graph API error response.

    :param status: the HTTP status.
    :param message: ``error.message``.
    :param code: ``error.code``.
    :param error_type: ``error.type``.
    :param extra: more members of ``error``, e.g. ``error_subcode``.
    """
    return SandboxResponse.json(
        status,
        {"error": {"message": message, "type": error_type, "code": code, **extra, "fbtrace_id": uuid.uuid4().hex[:11]}},
    )


def _invalid_parameter(message: str) -> VendorError:
    return VendorError(graph_error(400, f"(#100) {message}", 100))


def approximate_bounds(count: int) -> tuple[int, int]:
    """The size range reported for ``count`` people: rounded down and up to two significant figures.

    :param count: the true number of people.
    """
    if count < 100:
        return count, count
    step = 10 ** (len(str(count)) - 2)
    return count // step * step, math.ceil(count / step) * step


class MetaApi:
    """Meta Custom Audiences over a :class:`SandboxState`.

    :param state: the store.
    :param credentials: the accepted access tokens.
    :param window_usage: the rate-limit window now, for ``X-Business-Use-Case-Usage``.
    :param match_rate: share of valid hashes matched to an account.
    :param apply_delay_seconds: seconds before an upload changes the reported size.
    """

    vendor = "meta"
    max_concurrent_requests: int | None = None

    def __init__(self, state: SandboxState, credentials: Credentials,
                 window_usage: Callable[[], WindowUsage | None] = lambda: None, *, match_rate: float = 1.0,
                 apply_delay_seconds: float = 0.0) -> None:
        self._state = state
        self._match_rate = match_rate
        self._apply_delay = apply_delay_seconds
        self._tokens = frozenset(credentials.meta_access_tokens)
        self._window_usage = window_usage
        # finish() sees only the response: the path it answers is kept per server thread from authenticate().
        self._current = threading.local()
        routes = Routes()
        # The official SDK asks for nodes with a trailing slash (``/v21.0/{id}/``); Graph serves both spellings.
        users = _VERSION + r"/(?P<audience_id>\d+)/users/?"
        routes.add("POST", users, self._add_users)
        routes.add("DELETE", users, self._remove_users)
        routes.add("GET", _VERSION + r"/(?P<audience_id>\d+)/sessions/?", self._get_sessions)
        routes.add("GET", _VERSION + r"/(?P<audience_id>\d+)/?", self._get_audience)
        routes.add("POST", _VERSION + r"/act_(?P<ad_account_id>\d+)/customaudiences/?", self._create_audience)
        self._routes = routes

    def owns(self, path: str) -> bool:
        """Whether the path is a versioned Graph API path.

        :param path: the request path.
        """
        return re.match(_VERSION + "/", path) is not None

    def authenticate(self, request: SandboxRequest) -> str:
        """The ``access_token``; a Graph ``OAuthException`` when missing or unknown.

        :param request: the request.
        """
        self._current.path = request.path
        token = _params(request).get("access_token")
        scheme, _, header_token = (request.header("authorization") or "").partition(" ")
        if not token and scheme.lower() in ("bearer", "oauth"):
            token = header_token
        if not token:
            raise VendorError(graph_error(400, "An access token is required to request this resource.", 104))
        if token not in self._tokens:
            raise VendorError(graph_error(400, "Invalid OAuth access token - Cannot parse access token", 190))
        return str(token)

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Route and serve the request.

        :param request: an authenticated request.
        """
        resolved = self._routes.resolve(request.method, request.path)
        if resolved.handler is None:
            return graph_error(
                400,
                f"Unknown path components: {request.path}",
                2500,
            )
        return resolved.handler(request, resolved.params)

    def rate_limited(self, retry_after: int, *, concurrency: bool) -> SandboxResponse:
        """Meta's ad-account throttling error (code 80003), sent with HTTP 429.

        :param retry_after: seconds to advertise in ``Retry-After``.
        :param concurrency: unused: Meta throttles by call volume.
        """
        return graph_error(
            429,
            "There have been too many calls to this ad-account. Wait a bit and try again.",
            80003,
            error_subcode=2446079,
            is_transient=True,
        ).with_headers({"Retry-After": str(retry_after)})

    def server_error(self, status: int) -> SandboxResponse:
        """Graph's transient service error (code 2).

        :param status: the 5xx status.
        """
        return graph_error(
            status, "An unexpected error has occurred. Please retry your request later.", 2, is_transient=True
        )

    def finish(self, response: SandboxResponse) -> SandboxResponse:
        """Add ``X-Business-Use-Case-Usage`` to answers about an audience or an ad account.

        :param response: the response.
        """
        business = self._business_of(getattr(self._current, "path", ""))
        if business is None:
            return response
        usage = self._window_usage()
        share = 0 if usage is None else round(100 * (usage.max_requests - usage.remaining) / usage.max_requests)
        retry_after = response.headers.get("Retry-After") if response.status == 429 else None
        regain = math.ceil(int(retry_after) / 60) if retry_after else 0
        header = {business: [{"type": "custom_audience", "call_count": share, "total_cputime": share,
                              "total_time": share, "estimated_time_to_regain_access": regain}]}
        return response.with_headers({"X-Business-Use-Case-Usage": json.dumps(header, separators=(",", ":"))})

    def _business_of(self, path: str) -> str | None:
        """The business a path's usage is counted against: the ad account (of the audience), or None."""
        match = re.match(_VERSION + r"/(act_)?(\d+)", path)
        if match is None or len(match.group(2)) > 18:  # longer is no Graph id (and no SQLite integer)
            return None
        if match.group(1):
            return match.group(2)
        with self._state.read() as cursor:
            row = cursor.execute("SELECT ad_account_id FROM meta_audiences WHERE audience_id = ?",
                                 (int(match.group(2)),)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _require_audience(cursor: sqlite3.Cursor, audience_id: str, method: str) -> tuple[Any, ...]:
        row: tuple[Any, ...] | None = cursor.execute(
            "SELECT audience_id, ad_account_id, name, description, subtype, customer_file_source, created_at,"
            " updated_at FROM meta_audiences WHERE audience_id = ?",
            (int(audience_id),),
        ).fetchone()
        if row is None:
            raise VendorError(
                graph_error(
                    400,
                    f"Unsupported {method.lower()} request. Object with ID '{audience_id}' does not exist, cannot be "
                    "loaded due to missing permissions, or does not support this operation. Please read the Graph "
                    "API documentation at https://developers.facebook.com/docs/graph-api",
                    100,
                    "GraphMethodException",
                    error_subcode=33,
                )
            )
        return row

    @staticmethod
    def _rows(request: SandboxRequest) -> tuple[list[str], list[Any], dict[str, Any]]:
        """The schema's keys, the rows of ``payload.data`` and the ``session`` object."""
        params = _params(request)
        payload = _json_param(params, "payload")
        if not isinstance(payload, dict):
            raise _invalid_parameter("The parameter payload is required and must be a JSON object.")
        schema, data = payload.get("schema"), payload.get("data")
        if not isinstance(data, list) or not data:
            raise _invalid_parameter("payload.data must be a non-empty array.")
        if len(data) > MAX_ROWS_PER_CALL:
            raise _invalid_parameter(f"payload.data has {len(data)} rows; at most {MAX_ROWS_PER_CALL} per call.")
        if isinstance(schema, str):
            key = schema.removesuffix("_SHA256")
            if key not in MATCH_KEYS or (schema != key and key not in ("EMAIL", "PHONE")):
                raise _invalid_parameter(f"Invalid schema {schema!r}: use one of {list(MATCH_KEYS)}, EMAIL_SHA256 "
                                         "or PHONE_SHA256, or a list of keys.")
            keys = [key]
            rows = [row if isinstance(row, list) else [row] for row in data]
        elif isinstance(schema, list) and schema and all(isinstance(key, str) for key in schema):
            unknown = [key for key in schema if key not in MATCH_KEYS]
            if unknown or len(set(schema)) != len(schema):
                raise _invalid_parameter(f"Invalid schema keys {unknown or schema}: each of {list(MATCH_KEYS)}, "
                                         "at most once.")
            keys = list(schema)
            rows = list(data)
        else:
            raise _invalid_parameter("payload.schema must be a key or a non-empty list of keys.")
        session = _json_param(params, "session") or {}
        if not isinstance(session, dict):
            raise _invalid_parameter("session must be a JSON object.")
        return keys, rows, session

    def _people(self, keys: list[str], rows: list[Any]) -> tuple[list[tuple[str, bool, list[str]]], list[Any]]:
        """Each valid row as ``(the hash the audience keeps, matched, every identifier's hash)``, and the invalid
        rows."""
        if keys == ["EMAIL"]:  # the common case, kept fast
            people, invalid = [], []
            for row in rows:
                value = row[0] if isinstance(row, list) and len(row) == 1 else row
                if isinstance(value, str) and _SHA256_HEX.fullmatch(value):
                    people.append((value, hash_matches(value, self._match_rate), [value]))
                else:
                    invalid.append(value)
            return people, invalid
        people, invalid = [], []
        for row in rows:
            identifiers = row_identifiers(keys, row)
            if identifiers is None:
                invalid.append(row)
                continue
            matched = [value for value in identifiers if hash_matches(value, self._match_rate)]
            people.append((matched[0] if matched else identifiers[0], bool(matched), identifiers))
        return people, invalid

    def _change_users(self, request: SandboxRequest, audience_id: str, *, add: bool) -> SandboxResponse:
        keys, values, session = self._rows(request)
        people, invalid = self._people(keys, values)
        matched_set = {kept for kept, matched, _ in people if matched}
        session_id = str(session.get("session_id") or secrets.randbits(63))
        now = time.time()
        audience = int(audience_id)
        with self._state.write() as cursor:
            self._require_audience(cursor, audience_id, request.method)
            before = cursor.connection.total_changes
            if add:
                insert = "INSERT OR IGNORE INTO meta_audience_members (audience_id, hash) VALUES (?, ?)"
                cursor.executemany(insert, [(audience, kept) for kept, matched, _ in people if matched])
                matched_change = cursor.connection.total_changes - before
                cursor.executemany(insert, [(audience, kept) for kept, matched, _ in people if not matched])
            else:  # every identifier of the row: the person may be kept under any of them
                delete = "DELETE FROM meta_audience_members WHERE audience_id = ? AND hash = ?"
                matched_change = 0
                for _, _, identifiers in people:
                    for value in identifiers:
                        if cursor.execute(delete, (audience, value)).rowcount and hash_matches(value, self._match_rate):
                            matched_change -= 1
            cursor.execute("UPDATE meta_audiences SET updated_at = ? WHERE audience_id = ?", (now, int(audience_id)))
            cursor.execute(
                "INSERT INTO meta_audience_sessions (audience_id, session_id, started_at, applied_at, num_received,"
                " num_invalid, num_matched, matched_change) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (audience, session_id, now, now + self._apply_delay, len(values), len(invalid),
                 len(matched_set), matched_change),
            )
        samples = {
            json.dumps(value) if not isinstance(value, str) else value:
                "not a lower-case hex SHA-256 hash" if len(keys) == 1 else
                f"not a row of {len(keys)} keys with a hash (or '') per hashed key and an identifier"
            for value in invalid[:MAX_INVALID_SAMPLES]
        }
        return SandboxResponse.json(
            200,
            {
                "audience_id": audience_id,
                "session_id": session_id,
                "num_received": len(values),
                "num_invalid_entries": len(invalid),
                "invalid_entry_samples": samples,
            },
        )

    def _add_users(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        return self._change_users(request, params["audience_id"], add=True)

    def _remove_users(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        return self._change_users(request, params["audience_id"], add=False)

    def _get_audience(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        requested = [name.strip() for name in str(_params(request).get("fields") or "id").split(",") if name.strip()]
        unknown = [name for name in requested if name not in AUDIENCE_FIELDS]
        if unknown:
            raise _invalid_parameter(f"Tried accessing nonexisting field ({unknown[0]}) on node type (CustomAudience)")
        with self._state.read() as cursor:
            row = self._require_audience(cursor, params["audience_id"], request.method)
            count = applied_matched_count(cursor, row[0], self._match_rate, time.time())
        audience_id, ad_account_id, name, description, subtype, source, created_at, updated_at = row
        lower, upper = approximate_bounds(count)
        values = {
            "id": str(audience_id),
            "account_id": ad_account_id,
            "name": name,
            "description": description,
            "subtype": subtype,
            "customer_file_source": source,
            "approximate_count_lower_bound": lower,
            "approximate_count_upper_bound": upper,
            "operation_status": {"code": 200, "description": "Normal"},
            "delivery_status": {"code": 200, "description": "This audience is ready for use."},
            "time_created": int(created_at),
            "time_updated": int(updated_at),
        }
        return SandboxResponse.json(200, {"id": str(audience_id)} | {name: values[name] for name in requested})

    def _get_sessions(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        """Upload sessions, newest first; ``limit`` (default 25) of them, no further pages."""
        try:
            limit = max(1, min(500, int(_params(request).get("limit") or 25)))
        except ValueError as exc:
            raise _invalid_parameter("limit must be an integer.") from exc
        now = time.time()
        with self._state.read() as cursor:
            self._require_audience(cursor, params["audience_id"], request.method)
            rows = cursor.execute(
                "SELECT session_id, started_at, applied_at, num_received, num_invalid, num_matched"
                " FROM meta_audience_sessions WHERE audience_id = ? ORDER BY started_at DESC, rowid DESC LIMIT ?",
                (int(params["audience_id"]), limit),
            ).fetchall()
        data = [
            {
                "session_id": session_id,
                "start_time": str(int(started_at)),
                "end_time": str(int(applied_at)) if applied_at <= now else "0",
                "num_received": str(received),
                "num_invalid_entries": str(invalid),
                "num_matched": str(matched),
                "stage": "completed" if applied_at <= now else "processing",
                "progress": "100" if applied_at <= now else "0",
            }
            for session_id, started_at, applied_at, received, invalid, matched in rows
        ]
        return SandboxResponse.json(200, {"data": data})

    def _create_audience(self, request: SandboxRequest, params: dict[str, str]) -> SandboxResponse:
        values = _params(request)
        name = values.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _invalid_parameter("The parameter name is required")
        subtype = values.get("subtype", "CUSTOM")
        if subtype != "CUSTOM":
            raise _invalid_parameter("The sandbox creates customer-file audiences only: subtype must be CUSTOM.")
        now = time.time()
        with self._state.write() as cursor:
            (highest,) = cursor.execute("SELECT max(audience_id) FROM meta_audiences").fetchone()
            audience_id = max(FIRST_AUDIENCE_ID, (highest or 0) + 1)
            cursor.execute(
                "INSERT INTO meta_audiences (audience_id, ad_account_id, name, description, subtype,"
                " customer_file_source, created_at, updated_at) VALUES (?, ?, ?, ?, 'CUSTOM', ?, ?, ?)",
                (
                    audience_id,
                    params["ad_account_id"],
                    name,
                    str(values.get("description") or ""),
                    str(values.get("customer_file_source") or "USER_PROVIDED_ONLY"),
                    now,
                    now,
                ),
            )
        return SandboxResponse.json(200, {"id": str(audience_id)})


def _params(request: SandboxRequest) -> dict[str, Any]:
    """Graph parameters: the query string, then the form or JSON body (which wins)."""
    params: dict[str, Any] = {name: values[0] for name, values in request.query.items()}
    if not request.body:
        return params
    content_type = (request.header("content-type") or "").lower()
    try:
        if content_type.startswith("application/json"):
            body = request.json()
            if isinstance(body, dict):
                params.update(body)
        else:
            params.update(request.form)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid_parameter(f"The request body could not be parsed: {exc}") from exc
    return params


def _json_param(params: dict[str, Any], name: str) -> Any:
    """A parameter that is JSON text in a form and an object in a JSON body."""
    value = params.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise _invalid_parameter(f"The parameter {name} is not valid JSON.") from exc
    return value

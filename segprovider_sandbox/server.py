"""The sandbox HTTP server: one loopback server for every vendor, plus admin endpoints.

Each request goes through the same steps, so a fault never leaves half a change:

1. the vendor is found by path (``/3.0`` Mailchimp, ``/crm/v3`` HubSpot, ``/v{N}.0``
   Meta, ``/webhook`` the receiver) and authenticates it (its own 401 on failure);
2. Mailchimp's simultaneous-connection cap is taken (429 past it);
3. the fault injector decides: 429 for a full rate-limit window, a dropped connection,
   an injected 5xx, or a delay; all of these before any state changes;
4. the vendor serves it in one SQLite transaction;
5. the request is written to the log, then the answer is sent.

Admin: ``GET /__sandbox/health``; ``GET /__sandbox/config``; ``POST /__sandbox/config``
with ``{"seed": n, "faults": {"<vendor>": {<fault settings>}}}`` (each key optional;
a vendor's keys override its current settings); ``GET /__sandbox/requests[?vendor=V]``: the
request log, oldest first (``{"requests": [{"id", "at", "vendor", "method", "path", "query",
"status", "fault", "body"}]}``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import signal
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from segprovider_sandbox.config import VENDORS, SandboxConfig
from segprovider_sandbox.faults import FaultInjector, FaultKind, VendorFaults
from segprovider_sandbox.hubspot import HubSpotApi
from segprovider_sandbox.mailchimp import MailchimpApi
from segprovider_sandbox.meta import MetaApi
from segprovider_sandbox.store import EXAMPLE_META_AUDIENCE_ID, SandboxState
from segprovider_sandbox.webhook import WebhookApi
from segprovider_sandbox.wire import SandboxRequest, SandboxResponse, VendorError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from segprovider_sandbox.wire import VendorApi

logger = logging.getLogger(__name__)

ADMIN_PREFIX = "/__sandbox"
DEFAULT_PORT = 8765
DEFAULT_DB = "segprovider-sandbox.db"


class SandboxApp:
    """Serves :class:`SandboxRequest` objects; knows nothing of sockets.

    :param state: the store.
    :param config: credentials, faults and seed.
    :param sleep: how a slow response waits (replaceable in tests).
    """

    def __init__(self, state: SandboxState, config: SandboxConfig, sleep: Callable[[float], None] = time.sleep) -> None:
        self.state = state
        self.faults = FaultInjector(config.faults, config.seed)
        self._sleep = sleep
        self._in_flight: Counter[tuple[str, str]] = Counter()
        self._in_flight_lock = threading.Lock()
        credentials = config.credentials
        self.apis: tuple[VendorApi, ...] = (
            MailchimpApi(state, credentials, config.mailchimp_max_connections),
            HubSpotApi(state, credentials, lambda: self.faults.window_usage("hubspot")),
            MetaApi(state, credentials, lambda: self.faults.window_usage("meta"),
                    match_rate=config.meta_match_rate, apply_delay_seconds=config.meta_apply_delay_seconds),
            WebhookApi(state, credentials),
        )

    def process(self, request: SandboxRequest) -> SandboxResponse | None:
        """Serve one request and log it; None means: drop the connection without answering.

        :param request: the request.
        """
        api = next((candidate for candidate in self.apis if candidate.owns(request.path)), None)
        fault: str | None = None
        response: SandboxResponse | None
        try:
            if request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + "/"):
                vendor, response = "sandbox", self._admin(request)
            elif api is None:
                vendor = "unknown"
                response = SandboxResponse.json(404, {"error": f"no sandbox vendor serves {request.path}"})
            else:
                vendor = api.vendor
                response, fault = self._serve(api, request)
        except Exception:  # a sandbox bug must not kill the connection thread silently
            logger.exception("sandbox failed on %s %s", request.method, request.path)
            vendor = api.vendor if api else "unknown"
            response = SandboxResponse.json(500, {"error": "the sandbox failed; see its log"})
        self.state.log_request(
            vendor=vendor,
            method=request.method,
            path=request.path,
            query=request.query_string,
            status=None if response is None else response.status,
            fault=fault,
            body=request.body,
        )
        return response

    def _serve(self, api: VendorApi, request: SandboxRequest) -> tuple[SandboxResponse | None, str | None]:
        try:
            credential = api.authenticate(request)
        except VendorError as rejected:
            return api.finish(rejected.response), None
        if not self._acquire(api, credential):
            return api.finish(api.rate_limited(1, concurrency=True)), "concurrency_limited"
        try:
            decision = self.faults.decide(api.vendor)
            if decision.kind is FaultKind.RATE_LIMITED:
                return api.finish(api.rate_limited(decision.retry_after or 1, concurrency=False)), "rate_limited"
            if decision.kind is FaultKind.DROP:
                return None, "drop"
            if decision.kind is FaultKind.ERROR:
                return api.finish(api.server_error(decision.status or 500)), "error"
            if decision.kind is FaultKind.SLOW:
                self._sleep(decision.delay)
            try:
                response = api.handle(request)
            except VendorError as refused:
                response = refused.response
            return api.finish(response), ("slow" if decision.kind is FaultKind.SLOW else None)
        finally:
            self._release(api, credential)

    def _acquire(self, api: VendorApi, credential: str) -> bool:
        if api.max_concurrent_requests is None:
            return True
        with self._in_flight_lock:
            key = (api.vendor, credential)
            if self._in_flight[key] >= api.max_concurrent_requests:
                return False
            self._in_flight[key] += 1
            return True

    def _release(self, api: VendorApi, credential: str) -> None:
        if api.max_concurrent_requests is None:
            return
        with self._in_flight_lock:
            self._in_flight[(api.vendor, credential)] -= 1

    def _admin(self, request: SandboxRequest) -> SandboxResponse:
        route = (request.method, request.path.removeprefix(ADMIN_PREFIX))
        if route == ("GET", "/health"):
            return SandboxResponse.json(
                200, {"status": "ok", "vendors": list(VENDORS), "db_path": str(self.state.db_path)}
            )
        if route == ("GET", "/config"):
            return SandboxResponse.json(200, self._runtime_config())
        if route == ("GET", "/requests"):  # the request log, oldest first: what every vendor was sent
            logged = self.state.requests(request.query_value("vendor"))
            return SandboxResponse.json(200, {"requests": [dataclasses.asdict(entry) for entry in logged]})
        if route == ("POST", "/config"):
            try:
                self._reconfigure(request.json())
            except (ValueError, TypeError, UnicodeDecodeError) as exc:
                return SandboxResponse.json(400, {"error": str(exc)})
            return SandboxResponse.json(200, self._runtime_config())
        return SandboxResponse.json(404, {"error": "admin endpoints: GET /health, GET /config, POST /config, "
                                                   "GET /requests[?vendor=V]"})

    def _runtime_config(self) -> dict[str, Any]:
        return {
            "seed": self.faults.seed,
            "faults": {vendor: settings.to_dict() for vendor, settings in self.faults.faults().items()},
        }

    def _reconfigure(self, body: Any) -> None:
        if not isinstance(body, dict) or set(body) - {"seed", "faults"}:
            raise ValueError('the body must be a JSON object with "seed" and/or "faults"')
        current = self.faults.faults()
        updates: dict[str, VendorFaults] = {}
        for vendor, settings in (body.get("faults") or {}).items():
            if vendor not in current:
                raise ValueError(f"unknown vendor '{vendor}'; vendors are {list(VENDORS)}")
            if not isinstance(settings, dict):
                raise ValueError(f"faults.{vendor} must be an object")  # noqa: TRY004 (answered as a 400)
            updates[vendor] = VendorFaults.from_dict(settings, base=current[vendor])
        seed = body.get("seed")
        self.faults.reconfigure(updates, None if seed is None else int(seed))


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY the body waits for a delayed ACK.
    disable_nagle_algorithm = True
    server: _SandboxHTTPServer

    def _dispatch(self) -> None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self._send(SandboxResponse.json(411, {"error": "send a Content-Length; chunked bodies are not served"}))
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = SandboxRequest(
            method=self.command,
            path=parts.path,
            query_string=parts.query,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        response = self.server.app.process(request)
        if response is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(response)

    def _send(self, response: SandboxResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)


class _SandboxHTTPServer(ThreadingHTTPServer):
    # Non-daemon threads joined on close, after their connections are shut down by stop().
    daemon_threads = False
    block_on_close = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: SandboxApp) -> None:
        super().__init__(address, _RequestHandler)
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open connection so idle keep-alive threads end."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


@dataclass
class RunningSandbox:
    """A sandbox serving in a background thread.

    :param url: base URL, e.g. ``http://127.0.0.1:54321`` (Mailchimp is under ``/3.0``).
    :param state: the server's store (tests may also open their own :class:`SandboxState`).
    :param app: the request processor.
    """

    url: str
    state: SandboxState
    app: SandboxApp
    _server: _SandboxHTTPServer
    _thread: threading.Thread

    def stop(self) -> None:
        """Stop serving, end open connections, close the database."""
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join()
        self.state.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    db_path: str | Path,
    config: SandboxConfig | None = None,
) -> RunningSandbox:
    """Start the sandbox in a background thread.

    :param host: interface to bind; keep it on loopback.
    :param port: port to bind; 0 picks a free one (read it from ``.url``).
    :param db_path: the SQLite file holding the state; reused across restarts.
    :param config: credentials, faults and seed; defaults when None.
    :returns: the running sandbox; call ``.stop()`` (or use it as a context manager).
    """
    state = SandboxState(db_path)
    app = SandboxApp(state, config or SandboxConfig())
    server = _SandboxHTTPServer((host, port), app)
    bound_port = server.server_port
    # A short poll interval keeps stop() quick: shutdown() waits for the loop's next poll.
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name=f"segprovider-sandbox-{bound_port}",
        daemon=True,
    )
    thread.start()
    return RunningSandbox(f"http://{host}:{bound_port}", state, app, server, thread)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox in the foreground until interrupted (``python -m segprovider_sandbox``).

    :param argv: the command-line arguments (without the program name).
    :returns: the exit status.
    """
    parser = argparse.ArgumentParser(
        prog="segprovider sandbox",
        description="Local Mailchimp, HubSpot, Meta Custom Audiences and webhook APIs over loopback HTTP.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port, 0 for any (default: %(default)s)")
    parser.add_argument("--db", default=DEFAULT_DB, help="SQLite state file (default: %(default)s)")
    parser.add_argument("--config", help="JSON config file: credentials, faults, seed")
    parser.add_argument(
        "--seed",
        action="store_true",
        help="create the demo audience, segments, lists and the Meta audiences the example project syncs to",
    )
    args = parser.parse_args(argv)
    try:
        config = SandboxConfig.from_json_file(args.config) if args.config else SandboxConfig()
    except (OSError, ValueError) as exc:
        print(f"segprovider sandbox: {exc}", file=sys.stderr)
        return 2
    running = serve(args.host, args.port, db_path=args.db, config=config)
    print(f"segprovider sandbox on {running.url} (state in {Path(args.db).resolve()})")
    print(f"  Mailchimp  {running.url}/3.0   basic auth, API key {config.credentials.mailchimp_api_keys[0]}")
    print(f"  HubSpot    {running.url}/crm/v3   bearer {config.credentials.hubspot_tokens[0]}")
    print(f"  Meta       {running.url}/v21.0   access_token {config.credentials.meta_access_tokens[0]}")
    print(f"  Webhooks   {running.url}/webhook/<name>   secret {config.credentials.webhook_secret}")
    if args.seed:
        fixtures = running.state.seed_example_project()
        print(
            f"  seeded: Mailchimp list {fixtures.mailchimp_list_id} and its static segments, "
            f"HubSpot list {fixtures.hubspot_list_id}, Meta audiences {fixtures.meta_audience_id} and "
            f"{EXAMPLE_META_AUDIENCE_ID} (ad account act_{fixtures.meta_ad_account_id})"
        )
    sys.stdout.flush()  # the URL matters to whoever started us through a pipe
    stopped = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
    return 0

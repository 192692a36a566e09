"""A scripted loopback HTTP server for destination tests.

Tests either queue canned replies (429 with Retry-After, 503, slow replies,
dropped connections, malformed JSON) that the server plays back in order, or
register routes that emulate a vendor endpoint. The server records every
request and counts how many it is serving at once.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@dataclass
class Reply:
    """One scripted reply.

    :param status: HTTP status.
    :param body: bytes, or anything JSON-serialisable.
    :param headers: extra headers.
    :param delay: seconds to wait before answering (to provoke client timeouts).
    :param drop: close the connection without answering.
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


class ScriptedServer:
    """Loopback server playing queued replies first, then routes; 404 otherwise.

    ``server.Reply`` is :class:`Reply`, so test modules need not import this conftest.
    """

    Reply = Reply

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._queue: deque[Reply] = deque()
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Reply]]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers=dict(self.headers.items()),
                    body=body,
                    at=time.monotonic(),
                )
                with server._lock:
                    server.requests.append(seen)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    reply = server._next_reply(seen)
                    if reply.delay:
                        time.sleep(reply.delay)
                    if reply.drop:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    payload = reply.body
                    if payload is None:
                        data = b""
                    elif isinstance(payload, bytes):
                        data = payload
                    else:
                        data = json.dumps(payload).encode()
                    self.send_response(reply.status)
                    headers = {"Content-Type": "application/json", **reply.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    self.close_connection = True  # the client gave up (timeout): nothing to answer
                finally:
                    with server._lock:
                        server.in_flight -= 1

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ScriptedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def queue(self, *replies: Reply) -> None:
        """Play these replies, in order, to the next requests."""
        with self._lock:
            self._queue.extend(replies)

    def route(self, method: str, pattern: str, handler: Callable[..., Reply]) -> None:
        """Answer ``method`` requests whose path fully matches ``pattern`` with ``handler(seen, match)``."""
        self._routes.append((method, re.compile(pattern), handler))

    def seen(self, method: str | None = None, pattern: str | None = None) -> list[Seen]:
        """Requests received, optionally filtered by method and a full-match path pattern."""
        return [
            s
            for s in self.requests
            if (method is None or s.method == method) and (pattern is None or re.fullmatch(pattern, s.path))
        ]

    def _next_reply(self, seen: Seen) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(seen.path)
            if method == seen.method and match:
                return handler(seen, match)
        return Reply(404, {"message": f"no route for {seen.method} {seen.path}"})


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer().start()
    try:
        yield scripted
    finally:
        scripted.stop()


@pytest.fixture
def sandbox(tmp_path: Any) -> Iterator[Any]:
    """The destination sandbox on loopback with the demo fixtures (``sandbox.fixtures``: their ids)."""
    from segprovider_sandbox import serve

    with serve(db_path=tmp_path / "sandbox.db") as running:
        running.fixtures = running.state.seed_demo_fixtures()
        yield running

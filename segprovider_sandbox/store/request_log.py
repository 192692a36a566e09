"""The request log: every request the sandbox answered (or dropped), in order."""

from __future__ import annotations

import time
from dataclasses import dataclass

from segprovider_sandbox.store.connection import SqliteStore


@dataclass(frozen=True)
class LoggedRequest:
    """One entry of the request log.

    :param id: position in the log (increasing).
    :param at: Unix time the request was answered.
    :param vendor: ``mailchimp``, ``hubspot``, ``meta``, ``webhook``, ``sandbox`` or ``unknown``.
    :param method: the HTTP method.
    :param path: the path.
    :param query: the raw query string.
    :param status: the status answered; None when the connection was dropped.
    :param fault: the injected fault (``rate_limited``, ``concurrency_limited``, ``error``, ``slow``, ``drop``),
        or None.
    :param body: the request body as text.
    """

    id: int
    at: float
    vendor: str
    method: str
    path: str
    query: str
    status: int | None
    fault: str | None
    body: str


class RequestLog(SqliteStore):
    """Appends to and reads the request log."""

    def log_request(
        self,
        *,
        vendor: str,
        method: str,
        path: str,
        query: str,
        status: int | None,
        fault: str | None,
        body: bytes,
    ) -> None:
        """Append a request to the log.

        :param vendor: the vendor it was for.
        :param method: the HTTP method.
        :param path: the path.
        :param query: the raw query string.
        :param status: the status answered, None when dropped.
        :param fault: the fault injected, or None.
        :param body: the request body.
        """
        with self.write() as cursor:
            cursor.execute(
                "INSERT INTO requests (at, vendor, method, path, query, status, fault, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), vendor, method, path, query, status, fault, body.decode("utf-8", "replace")),
            )

    def requests(self, vendor: str | None = None) -> list[LoggedRequest]:
        """The request log, oldest first.

        :param vendor: only this vendor's requests; all when None.
        """
        sql = "SELECT id, at, vendor, method, path, query, status, fault, body FROM requests"
        params: tuple[str, ...] = ()
        if vendor is not None:
            sql += " WHERE vendor = ?"
            params = (vendor,)
        with self.read() as cursor:
            rows = cursor.execute(sql + " ORDER BY id", params).fetchall()
        return [LoggedRequest(*row) for row in rows]

"""The webhook receiver's data in the store: the JSON batches each webhook received."""

from __future__ import annotations

import json
from typing import Any

from segprovider_sandbox.store.connection import SqliteStore


class WebhookState(SqliteStore):
    """Reads the webhook batches."""

    def webhook_batches(self, name: str) -> list[Any]:
        """The JSON batches a webhook received, oldest first.

        :param name: the webhook (the ``{name}`` of ``/webhook/{name}``).
        """
        with self.read() as cursor:
            rows = cursor.execute("SELECT body FROM webhook_batches WHERE name = ? ORDER BY id", (name,)).fetchall()
        return [json.loads(row[0]) for row in rows]

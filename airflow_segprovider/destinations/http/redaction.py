"""Secrets never reach a log line: masking helpers and a filter on urllib3's own loggers.

Every :class:`~airflow_segprovider.destinations.http.client.DestinationHttpClient` registers the
secrets of its auth here for as long as it lives, because urllib3 logs request lines (query string
included) at DEBUG where our own masking cannot reach them.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["BODY_EXCERPT_CHARS", "MASK", "URLLIB_REDACTION", "mask_secrets"]

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


URLLIB_REDACTION = _UrllibRedactionFilter()
for _name in ("urllib3", "urllib3.connectionpool", "urllib3.util.retry"):
    logging.getLogger(_name).addFilter(URLLIB_REDACTION)

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

from airflow_segprovider.destinations.http.auth import Auth, BasicAuth, BearerAuth, QueryTokenAuth
from airflow_segprovider.destinations.http.client import DestinationHttpClient, HttpResponse
from airflow_segprovider.destinations.http.pacing import TokenBucket
from airflow_segprovider.destinations.http.policy import RateLimited, ResponsePolicy, parse_retry_after
from airflow_segprovider.destinations.http.redaction import BODY_EXCERPT_CHARS, MASK, mask_secrets
from airflow_segprovider.destinations.http.settings import HttpSettings

__all__ = [
    "BODY_EXCERPT_CHARS",
    "MASK",
    "Auth",
    "BasicAuth",
    "BearerAuth",
    "DestinationHttpClient",
    "HttpResponse",
    "HttpSettings",
    "QueryTokenAuth",
    "RateLimited",
    "ResponsePolicy",
    "TokenBucket",
    "mask_secrets",
    "parse_retry_after",
]

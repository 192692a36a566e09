"""A local destination sandbox: Mailchimp, HubSpot, Meta Custom Audiences and a webhook receiver.

One loopback HTTP server speaks each vendor's documented contract (see the module
docstrings of :mod:`.mailchimp`, :mod:`.hubspot`, :mod:`.meta` and :mod:`.webhook`),
keeps its state in SQLite (so it survives restarts), logs every request, and injects
seeded, reproducible faults (429 with ``Retry-After``, 5xx, slow answers, dropped
connections) before any state changes. It imports nothing beyond the standard library.

Default credentials (override with ``SandboxConfig`` / a JSON config file):

* Mailchimp API key ``sandbox-mailchimp-key-us1`` (HTTP Basic password, any user name);
* HubSpot token ``pat-na1-sandbox-hubspot-token`` (``Authorization: Bearer``);
* Meta access token ``sandbox-meta-access-token`` (``access_token`` parameter);
* webhook secret ``sandbox-webhook-secret`` (HMAC-SHA256 of the body).

Default faults: none, except HubSpot's documented window of 190 requests per 10 s.

Start it with ``python -m segprovider_sandbox --seed`` (which creates every audience, segment and list
the example project syncs to: :meth:`SandboxState.seed_example_project`). Seed and hand-edit its state file,
also while it serves, with ``python -m segprovider_sandbox.admin`` (``segprovider sandbox OPERATION``:
:mod:`.admin`). In tests::

    with serve(db_path=tmp_path / "sandbox.db") as sandbox:
        requests.get(f"{sandbox.url}/3.0/ping", auth=("any", DEFAULT_MAILCHIMP_API_KEY))
"""

from __future__ import annotations

from segprovider_sandbox.config import (
    DEFAULT_HUBSPOT_TOKEN,
    DEFAULT_MAILCHIMP_API_KEY,
    DEFAULT_META_ACCESS_TOKEN,
    DEFAULT_WEBHOOK_SECRET,
    Credentials,
    SandboxConfig,
)
from segprovider_sandbox.faults import RateLimit, VendorFaults
from segprovider_sandbox.server import RunningSandbox, main, serve
from segprovider_sandbox.store import (
    EXAMPLE_META_AUDIENCE_ID,
    EXAMPLE_META_AUDIENCE_NAME,
    DemoFixtures,
    LoggedRequest,
    SandboxState,
    subscriber_hash,
)
from segprovider_sandbox.webhook import sign

__all__ = [
    "DEFAULT_HUBSPOT_TOKEN",
    "DEFAULT_MAILCHIMP_API_KEY",
    "DEFAULT_META_ACCESS_TOKEN",
    "DEFAULT_WEBHOOK_SECRET",
    "EXAMPLE_META_AUDIENCE_ID",
    "EXAMPLE_META_AUDIENCE_NAME",
    "Credentials",
    "DemoFixtures",
    "LoggedRequest",
    "RateLimit",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxState",
    "VendorFaults",
    "main",
    "serve",
    "sign",
    "subscriber_hash",
]

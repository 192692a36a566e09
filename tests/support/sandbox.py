"""The credentials an in-process sandbox (``segprovider_sandbox.serve()`` with its default config) accepts."""

from __future__ import annotations

from airflow_segprovider.cli.demo import SandboxCredentials
from segprovider_sandbox import (
    DEFAULT_HUBSPOT_TOKEN,
    DEFAULT_MAILCHIMP_API_KEY,
    DEFAULT_META_ACCESS_TOKEN,
    DEFAULT_WEBHOOK_SECRET,
)

SANDBOX_CREDENTIALS = SandboxCredentials(mailchimp_api_key=DEFAULT_MAILCHIMP_API_KEY, hubspot_token=DEFAULT_HUBSPOT_TOKEN,
                                         meta_access_token=DEFAULT_META_ACCESS_TOKEN,
                                         webhook_secret=DEFAULT_WEBHOOK_SECRET)

"""Destination connectors: one HTTP layer, one interface, four vendors.

Pure library code (no Airflow import): hooks read Airflow connections and call
:func:`create_client` with plain config and credential mappings.
"""

from __future__ import annotations

from airflow_segprovider.destinations.base import (
    BatchResult,
    ConnectionField,
    DestinationClient,
    Member,
    Record,
)
from airflow_segprovider.destinations.errors import (
    DestinationAuthError,
    DestinationConfigError,
    DestinationError,
    MalformedResponseError,
    RateLimitExhaustedError,
    RejectedRecord,
    TerminalDestinationError,
    TransientDestinationError,
    UnsupportedOperationError,
)
from airflow_segprovider.destinations.registry import DESTINATION_KINDS, connection_fields, create_client

__all__ = [
    "DESTINATION_KINDS",
    "BatchResult",
    "ConnectionField",
    "DestinationAuthError",
    "DestinationClient",
    "DestinationConfigError",
    "DestinationError",
    "MalformedResponseError",
    "Member",
    "RateLimitExhaustedError",
    "Record",
    "RejectedRecord",
    "TerminalDestinationError",
    "TransientDestinationError",
    "UnsupportedOperationError",
    "connection_fields",
    "create_client",
]

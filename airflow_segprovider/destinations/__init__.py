"""Destination connectors: one HTTP layer, four vendors, one contract.

Pure library code (no Airflow import). Each connector implements
:class:`~airflow_segprovider.core.destination.DestinationClient`, the contract the core's sync
engine drives; hooks read Airflow connections and call :func:`create_client` with plain config and
credential mappings.
"""

from __future__ import annotations

from airflow_segprovider.destinations.config import ConnectionField
from airflow_segprovider.destinations.registry import DESTINATION_KINDS, connection_fields, create_client

__all__ = [
    "DESTINATION_KINDS",
    "ConnectionField",
    "connection_fields",
    "create_client",
]

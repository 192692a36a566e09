"""Repair from the destination's truth: read what the destination holds, so the plan can restore what it lost.

The sync state says what each destination acknowledged; a person editing the list in the tool
(a member removed or added by hand) makes it wrong without anyone telling us. A repair run reads the
destination's members through the connector's own listing (the one the distributed model's pull and a
first run's baseline use: :meth:`~airflow_segprovider.core.destination.DestinationClient.iter_members`),
stages their identities in ``segprovider_sync_readback``, and the plan
(:func:`~airflow_segprovider.core.sync.plan.plan_queries`, ``read_back``) then lists:

* **restore**: members the state holds that the destination no longer lists, still desired and sendable:
  re-added, as any add (consent, suppression and exhausted refusals apply);
* **added by hand**: listed contacts no row of the state holds: counted and sampled, never removed
  (a sync removes only what it added).

A destination whose API cannot list an audience's members (Meta) cannot be repaired: the run syncs as
usual, its record says why the repair was not possible, and the count check stands.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pyarrow as pa

from airflow_segprovider.core.sql.dialects import render, text_literal
from airflow_segprovider.core.state.sync import READBACK, repeated, utc_now

if TYPE_CHECKING:
    from airflow_segprovider.core.destination import DestinationClient
    from airflow_segprovider.core.warehouses.base import Warehouse

log = logging.getLogger(__name__)

#: destination kinds whose connector lists the target's members (``can_read_members``): the ones a repair can
#: read, known without building a client (the count gate decides with it at run time, before any connection)
LISTABLE_KINDS = frozenset({"mailchimp", "hubspot"})


def read_back_sql(sync_id: str) -> str:
    """The identities (trimmed, lower-cased) the last repair of ``sync_id`` read, in DuckDB's dialect."""
    return f"SELECT identity FROM {READBACK} WHERE sync_id = {text_literal(sync_id)}"


def not_repairable(destination: str, kind: str) -> str:
    """The run record's ``repair`` of a destination that cannot list its members."""
    return (f"not possible: {destination} ({kind}) cannot list its members through its API; nothing was "
            "restored, and the count check stands")


def read_back(warehouse: Warehouse, sync_id: str, client: DestinationClient, run_id: str) -> int:
    """Read the destination's members and stage their identities for ``sync_id``; how many were read.

    The earlier reading of the sync is replaced in the same transaction, so the plan never compares the
    state with half a list. Members without an identity (a HubSpot contact without an e-mail) are left out.
    """
    identities: dict[str, str | None] = {}
    for member in client.iter_members():
        identity = (member.identity or "").strip().lower()
        if identity:
            identities[identity] = member.destination_id
    rows = pa.table({
        "sync_id": repeated(sync_id, pa.string(), len(identities)),
        "identity": pa.array(list(identities), pa.string()),
        "destination_id": pa.array(list(identities.values()), pa.string()),
        "run_id": repeated(run_id, pa.string(), len(identities)),
        "read_at": repeated(utc_now(), pa.timestamp("us"), len(identities)),
    })
    with warehouse.transaction():
        warehouse.execute(render(f"DELETE FROM {READBACK} WHERE sync_id = {text_literal(sync_id)}", warehouse.dialect))
        if identities:
            warehouse.load(READBACK, rows)
    log.info("sync %s: read %d members back from %s for a repair", sync_id, len(identities), client.name)
    return len(identities)

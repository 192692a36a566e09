"""The guards that keep a sync from doing harm, checked before anything is sent.

Safe deletes: only keys this project added are removed, and the first run against
an existing list records its members as a baseline instead of deleting them. A sync
of a segment never evaluated at ``as_of`` stops. In every mode that removes, an empty
segment never wipes a destination, and removing more than ``max_remove_fraction`` of a
destination needs an explicit override (``allow_mass_removal``).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.errors import TerminalError
from airflow_segprovider.core.evaluate.customers import customer_relation_sql
from airflow_segprovider.core.sql.dialects import in_list, render, text_literal, ts_literal
from airflow_segprovider.core.state.membership import SNAPSHOTS
from airflow_segprovider.core.state.sync import STATE, state_rows

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_segprovider.core.destination import DestinationClient
    from airflow_segprovider.core.project.spec import Project, Sync
    from airflow_segprovider.core.sync.plan import SyncOptions, SyncPlan
    from airflow_segprovider.core.warehouses.base import Warehouse

log = logging.getLogger(__name__)


class SyncBlockedError(TerminalError):
    """A safety rule stopped the sync before anything was sent; retrying does not help."""


def require_snapshot(warehouse: Warehouse, sync: Sync, at: dt.datetime) -> None:
    """:raises SyncBlockedError: the segment has no snapshot at ``at``."""
    rows = warehouse.query(render(
        f"SELECT COUNT(*) FROM {SNAPSHOTS} WHERE segment = {text_literal(sync.segment)} "
        f"AND as_of = {ts_literal(at)}", warehouse.dialect))
    if not rows or not rows[0][0]:
        raise SyncBlockedError(f"sync {sync.id}: no snapshot of segment {sync.segment!r} at {at.isoformat()}; "
                               "evaluate that as_of first (segprovider evaluate)")


def baseline_members(project: Project, warehouse: Warehouse, sync: Sync, client: DestinationClient,
                     run_id: str) -> int:
    """First run against an existing list: record its members (matched to customers) as not ours."""
    destination = project.destinations[sync.destination]
    customer = project.model.customer
    identity_col = customer.attributes[destination.identity].column
    identities: dict[str, Any] = {}
    for member in client.iter_members():
        identities[member.identity.strip().lower()] = member.destination_id
    if not identities:
        return 0
    names = list(identities)
    keys: list[str] = []
    found: list[str] = []
    # matched in chunks: the read-back list has the destination's size, not the customer table's
    for start in range(0, len(names), 5000):
        values = ", ".join(text_literal(i) for i in names[start:start + 5000])
        for key, identity in warehouse.query(render(
                f"SELECT CAST(\"{customer.key}\" AS VARCHAR), CAST(\"{identity_col}\" AS VARCHAR) "
                # the list's members (never sent by us) are matched to customers by the identity they hold now
                f"FROM {customer_relation_sql(project, warehouse.schema, None)} "
                f"WHERE LOWER(TRIM(CAST(\"{identity_col}\" AS VARCHAR))) IN ({values})", warehouse.dialect)):
            keys.append(key)
            found.append(identity)
    if keys:
        with warehouse.transaction():
            warehouse.upsert(STATE, ["sync_id", "customer_key"], state_rows(
                sync.id, keys, found, [None] * len(keys),
                [identities.get(i.strip().lower()) for i in found], True, "baseline", run_id))
    log.info("sync %s: baselined %d existing members of %s (%d matched customers)", sync.id, len(identities),
             sync.destination, len(keys))
    return len(keys)


def check_safety(sync: Sync, plan: SyncPlan, options: SyncOptions) -> None:
    """Hold back a plan that would empty the destination, or remove too much of it.

    The guards key on what the plan removes, not on the sync's mode: every mode that removes
    (:data:`~airflow_segprovider.core.sync.plan.REMOVING_MODES`, mirror and upsert) is guarded alike,
    and an ``add_only`` plan never removes, so it never trips them. (Until issue #16 only mirror was
    checked: an upsert sync of an emptied segment removed 260 of 260 HubSpot members.)

    :raises SyncBlockedError: the plan would empty the destination, or remove too much of it.
    """
    if not plan.remove:
        return
    desired = plan.add + plan.change + (plan.destination_size or 0) - plan.remove
    if desired <= 0 and not options.allow_mass_removal:
        raise SyncBlockedError(
            f"sync {sync.id}: the segment is empty, and the sync would remove all {plan.remove} members from "
            f"{sync.destination}; an empty segment never wipes a destination. Check the evaluation and the "
            "segment-size gate; to empty the list on purpose, run with allow_mass_removal")
    size = plan.destination_size or 0
    if size and plan.remove > sync.max_remove_fraction * size and not options.allow_mass_removal:
        raise SyncBlockedError(
            f"sync {sync.id}: would remove {plan.remove} of {size} members ({plan.remove / size:.0%}) from "
            f"{sync.destination}, more than max_remove_fraction {sync.max_remove_fraction:.0%}; check the "
            "segment, then rerun with allow_mass_removal (CLI --allow-mass-removal) if it is intended")


def newer_snapshot(warehouse: Warehouse, segments: Sequence[str], as_of: dt.datetime) -> dt.datetime | None:
    """The newest snapshot ``as_of`` of ``segments`` when it is later than ``as_of``, else None.

    Only the latest snapshot is ever synced: history is recomputed, never pushed. The DAG's sync tasks
    (``historical_reason`` in :mod:`airflow_segprovider.operators.base`) and ``segprovider sync`` both ask this.
    """
    if not segments or warehouse.columns(SNAPSHOTS) is None:
        return None
    newest = warehouse.query(f"SELECT MAX(as_of) FROM {SNAPSHOTS} WHERE segment IN {in_list(list(segments))}")[0][0]
    return newest if newest is not None and newest > as_of else None

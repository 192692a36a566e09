"""The push: changed hub attributes sent to a spoke by the sync engine, in upsert mode.

:class:`AttributePushEngine` is the sync engine in upsert mode over the hub instead of a
segment snapshot: a row hash per profile and destination (``segprovider_sync_state`` under
sync id ``hub__<destination>``, committed per acknowledged batch) means only changed profiles
are sent, and nothing is ever removed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.hybrid.errors import HubError, WireTypeError
from airflow_segprovider.core.hybrid.hub import quoted_name, require_hub, utc_now
from airflow_segprovider.core.hybrid.types import find_field, to_wire
from airflow_segprovider.core.project.hybrid import push_sync_id
from airflow_segprovider.core.project.spec import Sync
from airflow_segprovider.core.sql.dialects import quote_identifier as q
from airflow_segprovider.core.sql.dialects import quoted_table
from airflow_segprovider.core.state.hybrid import KEY
from airflow_segprovider.core.sync.consent import latest_consent_sql
from airflow_segprovider.core.sync.engine import SyncEngine
from airflow_segprovider.core.sync.plan import SyncOptions

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

    from airflow_segprovider.core.destination import DestinationClient, FieldType
    from airflow_segprovider.core.project.hybrid import AttributePush
    from airflow_segprovider.core.project.spec import Destination, Project
    from airflow_segprovider.core.sync.record import SyncRunRecord
    from airflow_segprovider.core.warehouses.base import Warehouse


def push_sync(push: AttributePush) -> Sync:
    """The push as the sync engine runs it: upsert mode, keyed by ``hub__<destination>``."""
    return _PushSync(segment="__hub__", destination=push.destination, mode="upsert")


@dataclass(frozen=True)
class _PushSync(Sync):
    @property
    def id(self) -> str:
        return push_sync_id(self.destination)


class AttributePushEngine(SyncEngine):
    """Push changed hub attributes to one destination: the sync engine over the hub, upsert only.

    The desired state is every hub profile with an identity and consent for the destination's
    channel; a profile is sent when its row hash (identity and pushed values) differs from the
    hash the destination last acknowledged. Values are converted to the destination's field
    types (:func:`to_wire`) as batches are read; nothing is ever removed from a spoke.

    :param field_types: the destination's fields by name, as its API describes them.
    """

    def __init__(self, project: Project, warehouse: Warehouse, destination: str,
                 field_types: Mapping[str, FieldType]) -> None:
        hub = require_hub(project)
        if destination not in hub.push:
            raise HubError(f"the hub pushes nothing to {destination!r}; pushes: {', '.join(hub.push) or 'none'}")
        self.hub = hub
        self.push = hub.push[destination]
        # the push's fields stand in for the destination's field_mapping (names are hub attributes)
        pushed = replace(project.destinations[destination], field_mapping=dict(self.push.fields))
        super().__init__(replace(project, destinations={**project.destinations, destination: pushed}), warehouse)
        self.kind = pushed.kind
        self.field_types = {name: find_field(field_types, self.kind, name) for name in self.push.fields}
        missing = [name for name, spoke in self.field_types.items() if spoke is None]
        if missing:
            raise HubError(f"{destination} has no field {', '.join(missing)}: run the hub_types gate")

    @property
    def sync(self) -> Sync:
        return push_sync(self.push)

    def run_push(self, client: DestinationClient, as_of: str | dt.datetime, *, options: SyncOptions | None = None,
                 run_id: str | None = None) -> SyncRunRecord:
        return self.run(self.sync, client, as_of, options=options, run_id=run_id)

    def _require_snapshot(self, sync: Sync, at: dt.datetime) -> None:
        if self.warehouse.columns(quoted_name(self.hub.table, self.warehouse.schema)) is None:
            raise HubError(f"the hub table {self.hub.table} does not exist: build the hub before pushing")

    def _desired_sql(self, sync: Sync, destination: Destination, as_of: dt.datetime) -> str:
        model = self.project.model
        identity = q(destination.identity)
        if destination.identity not in self.hub.attributes:
            raise HubError(f"the hub has no attribute {destination.identity!r}, the identity of {destination.name}")
        fields = sorted(self.push.fields.items())
        projections = [f"h.{q(attr)} AS {q('f__' + name)}" for name, attr in fields]
        hash_input = " || '|' || ".join(
            [f"COALESCE(CAST(h.{identity} AS VARCHAR), '')"]
            + [f"COALESCE(CAST(h.{q(attr)} AS VARCHAR), '\u2205')" for _, attr in fields])
        consent_ok = "TRUE"
        channel = destination.channel
        if model.consent is not None and channel in model.consent.channels:
            require = model.consent.channels[channel].require_opt_in
            consent_attr = next((a.name for a in self.hub.attributes.values() if a.consent_channel == channel), None)
            if consent_attr is not None:
                consent_ok = f"COALESCE(h.{q(consent_attr)}, {'FALSE' if require else 'TRUE'})"
            else:
                latest = latest_consent_sql(model.consent, channel, self.warehouse.schema)
                consent_ok = (f"COALESCE((SELECT x.opted_in FROM ({latest}) AS x WHERE x.k = h.{KEY}), "
                              f"{'FALSE' if require else 'TRUE'})")
        return (f"SELECT h.{KEY} AS customer_key, CAST(h.{identity} AS VARCHAR) AS identity, "
                + "".join(p + ", " for p in projections)
                + f"MD5({hash_input}) AS row_hash, {consent_ok} AS consent_ok "
                f"FROM {quoted_table(self.hub.table, self.warehouse.schema)} AS h")

    def _plan_sql(self, sync: Sync, destination: Destination, as_of: dt.datetime, max_attempts: int) -> dict[str, str]:
        queries = super()._plan_sql(sync, destination, as_of, max_attempts)
        # attribute pushes update contacts; they never take anyone out of a spoke. A contact no longer allowed
        # (withdrawn consent, suppressed) is never sent again (the plan's add and change leave them out); taking
        # them out of the spoke's lists is the membership syncs' consent removal, which a push cannot send
        queries["remove"] = queries["remove"] + " AND FALSE"
        queries["consent_remove"] = f"SELECT * FROM ({queries['consent_remove']}) AS q WHERE FALSE"
        return queries

    def _plan(self, sync: Sync, client: DestinationClient, queries: dict[str, str], options: SyncOptions,
              run_id: str, *, baseline: bool):  # type: ignore[override]
        # no baseline: a push owns no membership, so the spoke's existing members are not read
        plan = super()._plan(sync, client, queries, options, run_id, baseline=False)
        plan.remove = 0
        return plan

    def _field_value(self, destination: Destination, key: str, name: str, value: Any) -> Any:
        """The warehouse's value in the wire format of the destination field's type, checked."""
        try:
            return to_wire(self.kind, self.field_types[name], value)  # type: ignore[arg-type]
        except WireTypeError as exc:
            raise WireTypeError(f"push to {destination.name}, customer {key}: {exc}") from None

    def changed_count(self) -> dict[str, int]:
        """How many profiles the next push would send (new and changed), without sending anything."""
        destination = self.project.destinations[self.push.destination]
        queries = SyncEngine._plan_sql(self, self.sync, destination, utc_now(), SyncOptions().max_attempts)
        return {op: self._count(queries[op]) for op in ("add", "change")}

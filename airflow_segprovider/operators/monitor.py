"""Read what each destination reports it holds, and stage it in the warehouse for the count gates."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_segprovider.operators.base import SegmentsBaseOperator, historical_reason

if TYPE_CHECKING:
    from airflow.sdk import Context


class DestinationCountsOperator(SegmentsBaseOperator):
    """Stage the member count every destination reports for each sync (``segprovider_destination_counts``).

    Backfills and runs older than the newest snapshot are skipped, like the syncs: a destination holds
    today's members, so asking it about history would compare nothing and still call it.

    :param phase: ``before`` (compared with the sync state: edits behind our back, half-failed syncs)
        or ``after`` the sync (compared with the central count).
    :param destinations: only these destinations; default all.
    """

    template_fields: Sequence[str] = (*SegmentsBaseOperator.template_fields, "phase")
    ui_color = "#f3e8f6"

    def __init__(self, *, phase: str = "before", destinations: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.phase = phase
        self.destinations = destinations

    def execute_step(self, context: Context) -> list[dict[str, Any]]:
        return stage_counts(self, context, self.phase, self.destinations)


def stage_counts(operator: SegmentsBaseOperator, context: Context, phase: str,
                 destinations: Sequence[str] | None) -> list[dict[str, Any]]:
    """Ask each destination for the member count of each centralized sync, and stage it for the count gates.

    :param destinations: only the syncs these select (destinations, sync ids or segments); default all.

    Skipped (``AirflowSkipException``) in backfills and runs older than the newest snapshot.
    The warehouse is opened twice, briefly, and never while a destination is asked.
    """
    from airflow.sdk.exceptions import AirflowSkipException

    from airflow_segprovider.core.sync import centralized_syncs
    from airflow_segprovider.gates import stage_destination_counts
    from airflow_segprovider.hooks.destination import hook_for_destination

    project = operator.project
    # hand-edited (reconciled) lists are expected to differ from the warehouse: not the centralized model's
    # the selectors a gate's ``syncs`` takes: sync ids, segments or destinations
    syncs = [s for s in centralized_syncs(project)
             if not destinations or {s.id, s.segment, s.destination} & set(destinations)]
    with operator.warehouse() as warehouse:  # closed again before the destinations are asked
        reason = historical_reason(context, warehouse, [s.segment for s in syncs], operator.as_of_value())
    if reason:
        raise AirflowSkipException(f"not asking destinations for counts ({phase} the sync): {reason}")
    counts: list[dict[str, Any]] = []
    for sync in syncs:
        client = hook_for_destination(project.destinations[sync.destination]).get_client(project, sync)
        try:
            # the destination's own notion of its size: a range of matched people for Meta, with its match rate
            reported = client.reported_count()
        finally:
            client.close()
        counts.append({"sync_id": sync.id, "destination": sync.destination, "reported_count": reported})
        rate = "" if reported.match_rate is None else f", match rate {reported.match_rate:.0%}"
        operator.log.info("%s reports %s members for %s (%s sync%s%s)", sync.destination, reported, sync.id, phase,
                          rate, ", still applying uploads" if reported.pending else "")
    with operator.warehouse() as warehouse:
        stage_destination_counts(warehouse, counts, phase=phase, as_of=operator.as_of_value())
    # XCom takes JSON: the count as the vendor shows it, and the rest of the report beside it
    return [{**count, "reported_count": count["reported_count"].value,
             **{f"reported_{name}": value for name, value in dataclasses.asdict(count["reported_count"]).items()
                if name != "value"}} for count in counts]

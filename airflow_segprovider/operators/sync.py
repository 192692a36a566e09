"""Sync membership changes of the latest snapshot to one destination."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow_segprovider.operators.base import SegmentsBaseOperator, as_flag, historical_reason

if TYPE_CHECKING:
    from airflow.sdk import Context


class SegmentsSyncOperator(SegmentsBaseOperator):
    """Run every centralized sync of the project to ``destination`` for the snapshot at ``as_of``.

    Syncs of a segment with a ``reconcile:`` policy are not run: the distributed model owns them
    (:func:`~airflow_segprovider.core.sync.centralized_syncs`).

    Backfills and runs older than the newest snapshot are skipped: history is recomputed but
    never pushed. Terminal destination errors (bad credentials, missing list, a safety rule)
    fail without retry; transient ones (5xx, timeouts, exhausted rate limits) are retried by
    Airflow, and the rerun resumes from the acknowledged state.

    :param destination: destination name (mapped over by the DAG: one task per destination).
    :param dry_run: plan only (templated, e.g. ``{{ params.dry_run }}``).
    :param allow_mass_removal: override the remove-fraction and empty-segment guards (templated).
    :param held_from: task ids of segment gates whose holds apply (XCom key ``held``): a held sync sends
        no membership change but still removes members who withdrew consent.
    :param repair: read the destination's members first and restore members removed by hand (templated, e.g.
        ``{{ params.repair }}``); contacts added by hand are reported in the run record, never removed. A
        destination that cannot list its members (Meta) syncs as usual and its run record says so.
    :param repair_from: task ids of count gates whose drift asks for a repair (XCom key ``repair``, the
        project's ``on_count_drift: repair``): the syncs they list are repaired.
    """

    template_fields: Sequence[str] = (*SegmentsBaseOperator.template_fields, "destination", "dry_run",
                                      "allow_mass_removal", "repair")
    ui_color = "#dbe9f6"

    def __init__(self, *, destination: str, dry_run: bool | str = False, allow_mass_removal: bool | str = False,
                 held_from: Sequence[str] = (), repair: bool | str = False, repair_from: Sequence[str] = (),
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.held_from = list(held_from)
        self.repair = repair
        self.repair_from = list(repair_from)
        self.destination = destination
        self.dry_run = dry_run
        self.allow_mass_removal = allow_mass_removal

    def execute_step(self, context: Context) -> list[dict[str, Any]]:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from airflow_segprovider.core.sync import SyncEngine, SyncOptions, centralized_syncs
        from airflow_segprovider.hooks.destination import hook_for_destination

        project = self.project
        if self.destination not in project.destinations:
            raise AirflowFailException(f"unknown destination {self.destination!r}; destinations: "
                                       f"{', '.join(project.destinations)}")
        # segments with a reconcile: policy belong to segments_distributed; pushing them here would undo it
        syncs = [s for s in centralized_syncs(project) if s.destination == self.destination]
        as_of = self.as_of_value()
        options = SyncOptions(dry_run=as_flag(self.dry_run), allow_mass_removal=as_flag(self.allow_mass_removal))
        held = held_syncs(context, self.held_from)
        repairing = repair_syncs(context, self.repair_from)
        records: list[dict[str, Any]] = []
        with self.warehouse() as warehouse:
            reason = historical_reason(context, warehouse, [s.segment for s in syncs], as_of)
            if reason:
                raise AirflowSkipException(f"not syncing {self.destination}: {reason}")
            engine = SyncEngine(project, warehouse)
            hook = hook_for_destination(project.destinations[self.destination])
            for sync in syncs:
                client = hook.get_client(project, sync)
                try:
                    run_options = replace(options, held_by=held[sync.id]) if sync.id in held else options
                    if as_flag(self.repair) or sync.id in repairing:
                        run_options = replace(run_options, repair=True)
                    record = engine.run(sync, client, as_of, options=run_options,
                                        run_id=f"{context['run_id']}__{context['ti'].try_number}")
                finally:
                    client.close()
                self.log.info("sync %s: %s, added %d, changed %d, removed %d, rejected %d", sync.id, record.status,
                              record.succeeded["add"], record.succeeded["change"], record.succeeded["remove"],
                              sum(record.failed.values()))
                if record.repair is not None:
                    assert record.plan is not None
                    self.log.info("sync %s: repair %s; restored %d removed by hand, %s added by hand (reported, "
                                  "never removed)", sync.id, record.repair, record.succeeded["restore"],
                                  record.plan.added_by_hand)
                records.append(record.to_dict())
        return records


def repair_syncs(context: Context, gate_task_ids: Sequence[str]) -> set[str]:
    """Sync ids whose count gates (``gate_task_ids``) found drift this run and asked for a repair."""
    if not gate_task_ids:
        return set()
    from airflow_segprovider.operators.gate import REPAIR_XCOM_KEY

    found: set[str] = set()
    for task_id in gate_task_ids:
        found.update((context["ti"].xcom_pull(task_ids=task_id, key=REPAIR_XCOM_KEY) or {}).get("syncs", []))
    return found


def held_syncs(context: Context, gate_task_ids: Sequence[str]) -> dict[str, str]:
    """Sync id -> why it is held, from the holds the segment gates ``gate_task_ids`` pushed this run."""
    if not gate_task_ids:
        return {}
    from airflow_segprovider.operators.gate import HELD_XCOM_KEY

    held: dict[str, str] = {}
    for task_id in gate_task_ids:
        hold = context["ti"].xcom_pull(task_ids=task_id, key=HELD_XCOM_KEY)
        for sync_id in (hold or {}).get("syncs", []):
            held[sync_id] = f"the failed {hold['gate']} gate ({task_id}) of segment(s) {', '.join(hold['segments'])}"
    return held

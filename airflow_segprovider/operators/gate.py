"""Run a Great Expectations gate on the warehouse; a failed gate stops every downstream sync."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_segprovider.operators.base import SegmentsBaseOperator

if TYPE_CHECKING:
    from pathlib import Path

    from airflow.sdk import Context

    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.gates.results import GateResult

#: The XCom key of what a segment gate holds: ``{"gate", "segments", "syncs", "result"}``.
HELD_XCOM_KEY = "held"
#: The XCom key of the syncs a count gate's drift asks to repair: ``{"gate", "syncs", "result"}``.
REPAIR_XCOM_KEY = "repair"
#: The gates whose failures can be pinned on segments (one batch per sync), and so hold just those.
SEGMENT_HOLDING_GATES = frozenset({"segment_size"})


class SegmentsGateOperator(SegmentsBaseOperator):
    """Validate one gate's suite (``expectations/<gate>.json``) against the warehouse.

    The JSON summary goes to XCom; validation results and Data Docs are written under
    ``docs_dir`` (templated; default ``$SEGPROVIDER_DOCS_DIR`` or ``$AIRFLOW_HOME/segprovider_docs``,
    then ``<dag>/<run>/<task>``). A failure raises a non-retryable error listing each failed
    expectation with its observed value.

    :param gate: ``freshness``, ``types``, ``segment_size``, ``consent`` or ``cross_system_counts``.
    :param parameters: runtime parameters of the suite (thresholds), merged over the defaults.
    :param docs_dir: where results and Data Docs are kept.
    :param phase: for ``cross_system_counts``: ``before`` or ``after`` the sync.
    :param syncs: per-sync gates only: check just these syncs (ids, segments or destinations); default every
        sync that declares the gate.
    :param stage_counts: ``cross_system_counts`` only: first ask the destinations of ``syncs`` for their
        counts and stage them (what :class:`~.monitor.DestinationCountsOperator` does), in this task: one
        process, one import of Great Expectations. Skipped, like the syncs, in backfills.
    :param hold_failed_segments: ``segment_size`` only: when every failed expectation belongs to a
        known sync, do not fail; push the held segments and syncs to XCom (key ``held``) so the syncs hold
        just those segments' membership changes, and a ``report_held`` task fails the run at its end
        (the project's ``on_gate_failure: hold_segment``).
    :param repair_on_drift: ``cross_system_counts`` before a sync only (the project's ``on_count_drift:
        repair``): when the checked syncs' destinations can all list their members (Mailchimp, HubSpot), drift
        does not fail; the syncs are pushed to XCom (key ``repair``) and the sync task repairs them from the
        destination's members. A destination that cannot be read (Meta) fails as without it.
    """

    template_fields: Sequence[str] = (*SegmentsBaseOperator.template_fields, "parameters", "docs_dir")
    ui_color = "#fff3cd"

    def __init__(self, *, gate: str, parameters: Mapping[str, Any] | None = None, docs_dir: str | None = None,
                 phase: str = "before", hold_failed_segments: bool = False, syncs: Sequence[str] | None = None,
                 stage_counts: bool = False, repair_on_drift: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repair_on_drift = repair_on_drift
        self.stage_counts = stage_counts
        self.syncs = list(syncs) if syncs else None
        self.hold_failed_segments = hold_failed_segments
        self.gate = gate
        self.parameters = dict(parameters or {})
        self.docs_dir = docs_dir
        self.phase = phase

    def execute_step(self, context: Context) -> dict[str, Any]:
        from pathlib import Path

        from airflow_segprovider.gates.evaluation import evaluate_gate
        from airflow_segprovider.gates.gx import import_gx
        from airflow_segprovider.gates.results import GateFailed

        if self.stage_counts:  # destinations first: a backfill skips here, before paying for GX
            from airflow_segprovider.operators.monitor import stage_counts

            stage_counts(self, context, self.phase, self.syncs)
        import_gx()  # seconds: before taking the warehouse's write lock, and without GX's INFO chatter

        docs_dir = Path(self.docs_dir) if self.docs_dir else default_docs_dir(context, self.task_id)
        with self.warehouse() as warehouse:
            result = evaluate_gate(self.gate, self.project, warehouse, self.as_of_value(), docs_dir=docs_dir,
                                   phase=self.phase, syncs=self.syncs, **self.parameters)
        summary = result.to_dict()
        context["ti"].xcom_push(key="gate_result", value=summary)
        if not result.success:
            self.log.error("%s", result.summary())
            repair = repair_by_gate(self.project, result, self.syncs) if self.repair_on_drift else None
            if repair is not None:
                context["ti"].xcom_push(key=REPAIR_XCOM_KEY, value=repair)
                self.log.error("count drift: syncs %s repair from the destination's members (on_count_drift: repair)",
                               ", ".join(repair["syncs"]))
                return summary
            held = held_by_gate(self.project, result) if self.hold_failed_segments else None
            if held is None:
                raise GateFailed(result)
            # only some segments failed: hold their syncs (reported and alerted at the end of the run)
            context["ti"].xcom_push(key=HELD_XCOM_KEY, value=held)
            self.log.error("holding the membership changes of segment(s) %s (syncs %s); every other sync goes on",
                           ", ".join(held["segments"]), ", ".join(held["syncs"]))
            return summary
        self.log.info("%s", result.summary())  # "gate <gate> at <as_of> passed: ..."
        return summary


def docs_root() -> Path:
    """Where gate tasks keep results and Data Docs: ``$SEGPROVIDER_DOCS_DIR``, else ``$AIRFLOW_HOME/segprovider_docs``.

    The insights plugin reads the same folder (shared with the workers, as the Docker setup's volume does).
    """
    import os
    from pathlib import Path

    root = os.environ.get("SEGPROVIDER_DOCS_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "segprovider_docs"


def run_folder(run_id: str) -> str:
    """The folder name of a DAG run under ``docs_root()/<dag_id>``: the run id with anything unsafe as ``_``."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)


def default_docs_dir(context: Context, task_id: str) -> Path:
    """Where a gate task keeps its validation results and Data Docs when no ``docs_dir`` is given:
    ``docs_root()/<dag_id>/<run folder>/<task_id>``."""
    dag_id = getattr(context.get("dag"), "dag_id", "dag")
    return docs_root() / dag_id / run_folder(str(context.get("run_id", "run"))) / task_id


def repair_by_gate(project: Project, result: GateResult, chosen: Sequence[str] | None) -> dict[str, Any] | None:
    """The syncs a failed count gate (before the sync) asks to repair; None when it cannot: the gate then fails.

    Every checked sync must go to a destination whose members can be listed: a count that drifted on an audience
    nobody can read (Meta) cannot be repaired, so the count check stands.
    """
    from airflow_segprovider.core.project.spec import centralized_syncs
    from airflow_segprovider.core.sync.repair import LISTABLE_KINDS

    if result.gate != "cross_system_counts" or not result.failed:
        return None
    syncs = [s for s in centralized_syncs(project) if "cross_system_counts" in s.gates and (
        not chosen or s.id in chosen or s.segment in chosen or s.destination in chosen)]
    if not syncs or any(project.destinations[s.destination].kind not in LISTABLE_KINDS for s in syncs):
        return None
    return {"gate": result.gate, "syncs": sorted(s.id for s in syncs), "result": result.to_dict()}


def held_by_gate(project: Project, result: GateResult) -> dict[str, Any] | None:
    """What a failed segment gate holds: the failed syncs' segments and every sync of those segments.

    None when the gate cannot hold per segment (a failure not pinned on a known sync, or a gate that
    is not a segment gate): then the whole run stops.
    """
    if result.gate not in SEGMENT_HOLDING_GATES or not result.failed:
        return None
    syncs = {sync.id: sync for sync in project.syncs}
    if any(failure.batch not in syncs for failure in result.failed):
        return None
    segments = sorted({syncs[failure.batch].segment for failure in result.failed})
    held_syncs = sorted(sync.id for sync in project.syncs if sync.segment in segments)
    return {"gate": result.gate, "segments": segments, "syncs": held_syncs, "result": result.to_dict()}

"""End a run whose segment gates held some segments: the other syncs went on, this task makes it visible."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class SegmentsHeldReportOperator(BaseOperator):
    """Fail, and so alert, when a segment gate held segments in this run; succeed when none did.

    With ``on_gate_failure: hold_segment`` a failed segment gate does not stop the run: the syncs of
    the failed segments send no membership change (opt-outs still go out) and every other sync runs.
    This last task then fails with what was held and why; the alert it sends carries the gate's failed
    expectations with their observed values. It reads only XCom and task states, never the warehouse.

    It runs whatever happened before it (``all_done``); being the run's last task, it also fails when any
    other task failed, so that the run's state stays failed (Airflow sets a run's state from its last tasks).

    :param gate_task_ids: the segment gates whose holds to report.
    """

    ui_color = "#f8d7da"

    def __init__(self, *, gate_task_ids: Sequence[str], **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")  # report holds even when a sync failed too
        super().__init__(**kwargs)
        self.gate_task_ids = list(gate_task_ids)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_segprovider.operators.gate import HELD_XCOM_KEY

        ti = context["ti"]
        holds = {task_id: ti.xcom_pull(task_ids=task_id, key=HELD_XCOM_KEY) for task_id in self.gate_task_ids}
        holds = {task_id: hold for task_id, hold in holds.items() if hold}
        # This task is the run's last (all_done), and Airflow decides a run's state by its last tasks: a failure
        # anywhere before must fail it too, or the run would read as a success.
        failed = self._failed_upstream(context)
        if not holds and failed:
            raise AirflowFailException(f"{len(failed)} task(s) of this run failed: {', '.join(failed)}")
        if not holds:
            self.log.info("no segment was held in this run")
            return {"held": []}
        # the alert reads the gate result from this task's XCom: the held gate's, with its observed values
        first = next(iter(holds.values()))
        context["ti"].xcom_push(key="gate_result", value=first["result"])
        lines = [f"{task_id}: held segment(s) {', '.join(hold['segments'])}; their syncs "
                 f"{', '.join(hold['syncs'])} sent no membership change (opt-out removals were still sent); "
                 "every other sync ran" for task_id, hold in holds.items()]
        if failed:
            lines.append(f"and {len(failed)} task(s) of this run failed: {', '.join(failed)}")
        raise AirflowFailException("segments held by a failed gate:\n" + "\n".join(lines))

    def _failed_upstream(self, context: Context) -> list[str]:
        """Tasks of this run that failed (or could not run because one did), this one aside."""
        ti = context["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
        return sorted(task for task, state in states.items()
                      if state in ("failed", "upstream_failed") and task != self.task_id)

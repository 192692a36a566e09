"""Run a Great Expectations gate on the warehouse; a failed gate stops every downstream sync."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_segprovider.operators.base import SegmentsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


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
    """

    template_fields: Sequence[str] = (*SegmentsBaseOperator.template_fields, "parameters", "docs_dir")
    ui_color = "#fff3cd"

    def __init__(self, *, gate: str, parameters: Mapping[str, Any] | None = None, docs_dir: str | None = None,
                 phase: str = "before", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate
        self.parameters = dict(parameters or {})
        self.docs_dir = docs_dir
        self.phase = phase

    def execute_step(self, context: Context) -> dict[str, Any]:
        from pathlib import Path

        import great_expectations  # noqa: F401 - slow import, done before taking the warehouse's write lock

        from airflow_segprovider.gates import GateFailed, evaluate_gate

        docs_dir = Path(self.docs_dir) if self.docs_dir else default_docs_dir(context, self.task_id)
        with self.warehouse() as warehouse:
            result = evaluate_gate(self.gate, self.project, warehouse, self.as_of_value(), docs_dir=docs_dir,
                                   phase=self.phase, **self.parameters)
        summary = result.to_dict()
        context["ti"].xcom_push(key="gate_result", value=summary)
        if not result.success:
            self.log.error("%s", result.summary())
            raise GateFailed(result)
        self.log.info("gate %s passed: %s", self.gate, result.summary())
        return summary


def default_docs_dir(context: Context, task_id: str):
    """Where a gate task keeps its validation results and Data Docs when no ``docs_dir`` is given."""
    import os
    import re
    from pathlib import Path

    root = os.environ.get("SEGPROVIDER_DOCS_DIR") or str(
        Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "segprovider_docs")
    dag_id = getattr(context.get("dag"), "dag_id", "dag")
    run_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(context.get("run_id", "run")))
    return Path(root) / dag_id / run_id / task_id

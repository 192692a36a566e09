"""Evaluate every segment of a project in the warehouse and write the membership snapshot."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_segprovider.operators.base import SegmentsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class SegmentsEvaluateOperator(SegmentsBaseOperator):
    """Evaluate all segments at ``as_of`` (one query), write the snapshot and its diff.

    Idempotent per data interval: re-running an ``as_of`` replaces its snapshot.

    :param segments: only these segments (and what they depend on); default all.
    """

    template_fields: Sequence[str] = (*SegmentsBaseOperator.template_fields, "segments")

    def __init__(self, *, segments: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.segments = segments

    def execute_step(self, context: Context) -> dict[str, Any]:
        from airflow_segprovider.core.evaluate.engine import evaluate

        with self.warehouse() as warehouse:
            result = evaluate(self.project, warehouse, self.as_of_value(), run_id=context["run_id"],
                              segments=list(self.segments) if self.segments else None)
        self.log.info("%s evaluation at %s: %s", result.mode, result.as_of, result.reason)
        for diff in result.diffs:
            self.log.info("segment %s at %s: %d members (+%d / -%d)", diff.segment, result.as_of, diff.members,
                          diff.added, diff.removed)
        return result.to_dict()

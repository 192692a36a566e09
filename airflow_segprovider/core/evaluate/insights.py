"""What each evaluation writes for the insights views (tables: :mod:`airflow_segprovider.core.state.insights`).

:func:`refresh_insights` runs inside the evaluation's transaction, right after the snapshot and its
diffs, for the segments that evaluation wrote:

* **each customer's changes**, copied from the store's diff into a table indexed by customer key (what
  the customer lookup's history reads);
* **arm sizes** of split segments, counted from the one ``as_of`` of the snapshot just written;
* **what a priority group removed** from each segment below another of its group: the customers its
  rule and consent admit who are members of a higher-priority segment instead. The snapshot keeps
  final memberships only (a customer's place in the group), so this is a count the evaluation makes:
  one query over the group's segments and what they depend on, with each lower segment's admission
  before the group as an extra column (``SegmentCompiler.compile(admitted=True)``), summed per
  (segment, higher-priority segment) in the same pass. A project without a priority group pays nothing.
  When the evaluation kept the incremental state, the pass reads the state's one row per customer instead
  of the sources.
  Its cost, measured on ``benchmarks/evaluation.py``'s data, is in the README's insights section.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Sequence

from sqlglot import exp

from airflow_segprovider.core.evaluate.columns import admitted_column, member_column
from airflow_segprovider.core.evaluate.compiler import SegmentCompiler
from airflow_segprovider.core.sql.dialects import to_sql
from airflow_segprovider.core.sql.expressions import and_all, col, ident, table_ref
from airflow_segprovider.core.state.insights import (
    copy_customer_changes,
    next_snapshots,
    write_arm_sizes,
    write_priority_removals,
)
from airflow_segprovider.core.state.insights import ensure_tables as ensure_insights_tables

if TYPE_CHECKING:
    from airflow_segprovider.core.evaluate.compiler import CompiledEvaluation
    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.warehouses.base import Warehouse

__all__ = ["ensure_insights_tables", "refresh_insights", "removal_counts_sql", "removal_pairs"]

_FLAGS = "flags"


def removal_pairs(project: Project, segments: Sequence[str]) -> list[tuple[str, str, str]]:
    """``(priority_group, segment, taken_by)`` for each of ``segments`` below others in its group, and each
    segment above it there, in the group's order."""
    return [(project.segments[name].priority_group or "", name, higher)
            for name in segments for higher in project.segments[name].higher_priority]


def removal_counts_sql(project: Project, dialect: str, schema: str | None, as_of: dt.datetime,
                       segments: Sequence[str], state_plan: CompiledEvaluation | None = None,
                       ) -> tuple[str, list[tuple[str, str, str]]]:
    """One query counting, per pair of :func:`removal_pairs`, the customers ``segment`` admits and
    ``taken_by`` holds; the pairs in the order of its columns.

    :param state_plan: the evaluation's plan when the incremental state's ``base`` table holds every
        customer's row at ``as_of`` (the evaluation kept or updated it): the flags are then computed from
        that table instead of the sources, which costs a pass over one row per customer instead of the
        aggregation of every event (an incremental run's cost then still follows the day's change).
    """
    pairs = removal_pairs(project, segments)
    ranked = sorted({segment for _, segment, _ in pairs})
    compiler = SegmentCompiler(project, dialect, schema)
    compiled = None
    if state_plan is not None:
        from airflow_segprovider.core.evaluate.incremental.plan import cte_body, flags_from_state

        whole = compiler.compile(as_of, admitted=True)
        # the state's rows have the plan's base columns: read them only where this plan's are the same
        if cte_body(whole.flags_query, "base").named_selects == cte_body(state_plan.flags_query, "base").named_selects:
            compiled = flags_from_state(whole, touched_only=False)
    if compiled is None:
        compiled = compiler.compile(as_of, segments=ranked, admitted=True)
    flags = compiled.flags_query.copy()
    ctes = flags.args.pop("with_", None)
    counts = [exp.alias_(exp.Sum(this=exp.Case(
        ifs=[exp.If(this=and_all([col(admitted_column(segment)), col(member_column(higher))]),
                    true=exp.Literal.number(1))], default=exp.Literal.number(0))), f"n{i}", quoted=True)
        for i, (_, segment, higher) in enumerate(pairs)]
    query = exp.select(*counts).from_(table_ref(_FLAGS))
    for cte in (ctes.expressions if ctes else []):
        query = query.with_(ident(cte.alias), as_=cte.this)
    return to_sql(query.with_(ident(_FLAGS), as_=flags), dialect), pairs


def refresh_insights(project: Project, warehouse: Warehouse, as_of: dt.datetime, run_id: str,
                     segments: Sequence[str], state_plan: CompiledEvaluation | None = None) -> None:
    """Write the ``as_of`` summaries of ``segments`` (call in the evaluation's transaction, after its diffs,
    those of the next snapshots a backfill rewrites included).

    :param state_plan: see :func:`removal_counts_sql`.
    """
    copy_customer_changes(warehouse, [(name, as_of) for name in segments]
                          + next_snapshots(warehouse, segments, as_of))
    write_arm_sizes(warehouse, [name for name in segments if project.segments[name].split], as_of, run_id)
    ranked = [name for name in segments if project.segments[name].higher_priority]
    if not ranked:
        return
    sql, pairs = removal_counts_sql(project, warehouse.dialect, warehouse.schema, as_of, ranked, state_plan)
    row = warehouse.query(sql)[0]
    write_priority_removals(warehouse, ranked, as_of, run_id,
                            [(group, segment, higher, int(count or 0))
                             for (group, segment, higher), count in zip(pairs, row)])

"""Drift: what the hub (or the central engine) expects compared with what a destination reports.

:func:`hub_drift_findings` checks spoke segments (the hub's count against the spoke's), stale
attributes and type mismatches; :func:`record_drift` keeps a monitor run's findings in
``segprovider_drift_reports``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_segprovider.core.destination import ReportedCount
from airflow_segprovider.core.hybrid.freshness import freshness_rows
from airflow_segprovider.core.hybrid.hub import quoted_name, require_hub, utc_now
from airflow_segprovider.core.hybrid.spokes import spoke_count_sql
from airflow_segprovider.core.hybrid.types import type_checks
from airflow_segprovider.core.sql.dialects import render
from airflow_segprovider.core.state.hybrid import DRIFT_REPORTS, ensure_tables
from airflow_segprovider.core.sync.engine import SyncEngine

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping, Sequence

    from airflow_segprovider.core.destination import FieldType
    from airflow_segprovider.core.project.spec import Project, Sync
    from airflow_segprovider.core.warehouses.base import Warehouse


@dataclass
class DriftFinding:
    """One comparison of what the hub (or the central engine) expects with what a destination reports.

    :param kind: ``spoke_segment`` (hub vs the spoke's own count), ``synced_segment`` (a central segment's
        snapshot vs the destination's member count), ``stale_attribute`` or ``type_mismatch``.
    :param status: ``ok``, ``drift`` (past tolerance), ``pending`` (off, but the destination is still applying
        changes), ``stale``, ``mismatch`` or ``unknown``.
    """

    kind: str
    name: str
    destination: str
    expected: int | None = None
    reported: int | None = None
    drift: float | None = None
    tolerance: float | None = None
    status: str = "ok"
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_counts(kind: str, name: str, destination: str, expected: int, reported: int | ReportedCount | None,
                   tolerance: float, detail: str = "") -> DriftFinding:
    """A finding from the count a destination reports and the one expected.

    :param reported: an exact count, or the destination's :class:`ReportedCount` (a range where the
        vendor reports one, of matched people for an ad platform: a count the expected one allows is no
        drift); None when it could not be read.
    :returns: status ``ok``, ``drift``, ``unknown``, or ``pending`` when the count is off but the
        destination says changes are still being applied. For an ad platform the detail states the
        observed match rate, whatever the status.
    """
    if reported is None:
        return DriftFinding(kind, name, destination, expected, None, None, tolerance, "unknown",
                            detail or "the destination reported no count")
    count = reported if isinstance(reported, ReportedCount) else ReportedCount.exact(reported)
    drift = count.drift_from(expected)
    status = "drift" if drift > tolerance else "ok"
    if status == "drift" and count.pending:
        status = "pending"
        detail = (f"{destination} reports {count} where {expected} were sent, but it is still applying uploads "
                  "(Meta takes up to 24 hours): not yet applied; the next check decides")
    elif status == "drift" and not detail:
        detail = (f"{destination} reports {count} where the hub expects {expected} "
                  f"({drift:.1%} > tolerance {tolerance:.1%}): values were changed in the tool behind the hub's "
                  "back, contacts were added there, or a push is pending")
    if count.matched:
        detail = _with_match_rate(detail, count, expected)
    return DriftFinding(kind, name, destination, expected, count.value, round(drift, 6), tolerance, status, detail)


def _with_match_rate(detail: str, count: ReportedCount, expected: int) -> str:
    """``detail`` with the observed match rate of an ad platform's count, and the range it is held to."""
    rate = count.observed_match_rate(expected)
    low, high = count.expected_range(expected)
    observed = "unknown" if rate is None else f"{rate:.0%}"
    note = (f"observed match rate {observed} of {expected} sent (matched counts from {low} to {high} are "
            f"consistent: min_match_rate {count.min_match_rate:.0%})")
    if rate == 0 and expected:
        note += ": the upload matched nobody; check the identity column and its normalization"
    return f"{detail}; {note}" if detail else note


def record_drift(warehouse: Warehouse, run_id: str, findings: Sequence[DriftFinding]) -> None:
    """Write one monitor run's findings to ``segprovider_drift_reports``."""
    if not findings:
        return
    ensure_tables(warehouse)
    now = utc_now()
    rows = pa.table({
        "run_id": [run_id] * len(findings), "checked_at": pa.array([now] * len(findings), pa.timestamp("us")),
        "kind": [f.kind for f in findings], "name": [f.name for f in findings],
        "destination": [f.destination for f in findings],
        "expected": pa.array([f.expected for f in findings], pa.int64()),
        "reported": pa.array([f.reported for f in findings], pa.int64()),
        "drift": pa.array([f.drift for f in findings], pa.float64()),
        "tolerance": pa.array([f.tolerance for f in findings], pa.float64()),
        "status": [f.status for f in findings], "detail": [f.detail[:2000] for f in findings],
    })
    with warehouse.transaction():
        warehouse.upsert(DRIFT_REPORTS, ["run_id", "kind", "name", "destination"], rows)


def hub_drift_findings(project: Project, warehouse: Warehouse, as_of: dt.datetime,
                       spoke_counts: Mapping[str, int | None],
                       field_types: Mapping[str, Mapping[str, FieldType]] | None = None) -> list[DriftFinding]:
    """Spoke segments (hub count vs the spoke's), stale attributes and type mismatches.

    :param spoke_counts: per spoke segment name, the count its destination reports (None: unreadable).
    :param field_types: per destination, its fields; None skips the type comparison.
    """
    hub = require_hub(project)
    findings: list[DriftFinding] = []
    has_hub = warehouse.columns(quoted_name(hub.table, warehouse.schema)) is not None
    if has_hub and project.spoke_segments:
        SyncEngine(project, warehouse).ensure_tables()
    for name, spoke in project.spoke_segments.items():
        if not has_hub:
            findings.append(DriftFinding("spoke_segment", name, spoke.destination, status="unknown",
                                         detail="the hub has not been built"))
            continue
        expected = int(warehouse.query(render(spoke_count_sql(project, spoke, warehouse.schema),
                                              warehouse.dialect))[0][0])
        findings.append(compare_counts("spoke_segment", name, spoke.destination, expected, spoke_counts.get(name),
                                       spoke.drift_tolerance))
    for row in freshness_rows(project, warehouse, as_of):
        if row["stale_hub"]:
            findings.append(DriftFinding(
                "stale_attribute", row["attribute"], "(hub)", status="stale",
                detail=f"source {row['source']} changed at {row['source_changed_at']} but the hub was built at "
                       f"{row['hub_built_at']}: the hub is older than its source; rebuild it (segments_hybrid)"))
    if field_types is not None:
        for row in type_checks(project, warehouse, field_types):
            if not row["compatible"]:
                findings.append(DriftFinding("type_mismatch", f"{row['attribute']}->{row['field']}",
                                             row["destination"], status="mismatch", detail=row["problem"]))
    return findings


def sync_count_finding(project: Project, sync: Sync, expected: int, reported: int | ReportedCount | None,
                       tolerance: float) -> DriftFinding:
    """The count check of one sync, labelled and held to the tolerance of the model that owns it."""
    policy = project.reconcile.get(sync.segment)
    if policy is None:
        kind, model = "synced_segment", "centralized"
    else:
        kind, model, tolerance = "reconciled_segment", "distributed", policy.max_change_fraction
    detail = ""
    count = ReportedCount.exact(reported) if isinstance(reported, int) else reported
    if count is not None and count.drift_from(expected) > tolerance and not count.pending:
        if policy is None:
            detail = (f"{sync.destination} reports {count} members of {sync.segment} where the last "
                      f"{model} sync left {expected}: the list was edited in the tool, or a sync is pending")
        else:
            detail = (f"{sync.destination} reports {count} members of {sync.segment} where the last reconcile "
                      f"left {expected}: more hand edits than the {policy.policy} policy's change-set gate "
                      f"({tolerance:.0%}) lets the next reconcile apply")
    return compare_counts(kind, sync.id, sync.destination, expected, count, tolerance, detail)


def hub_built(warehouse: Warehouse) -> bool:
    """Whether the hybrid model's hub was ever built in ``warehouse`` (a deployment may run only other models)."""
    from airflow_segprovider.core.state.hybrid import HUB_BUILDS

    if warehouse.columns(HUB_BUILDS) is None:
        return False
    return bool(warehouse.query(f"SELECT COUNT(*) FROM {HUB_BUILDS}")[0][0])


def hub_not_built_finding() -> DriftFinding:
    """What the drift monitor records before the hub's first build: nothing to compare yet, which is not drift."""
    return DriftFinding("hub", "(hub)", "(hub)", status="unknown",
                        detail="the hub has not been built yet (run segments_hybrid): its spokes are not checked")

"""Operators of the hybrid model: build the hub, gate it, push changed attributes, check drift.

Backfill rule, as for every segments DAG: a backfill (or any run older than the newest hub
build) recomputes nothing it would push and pushes nothing: history never reaches a tool.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_segprovider.operators.base import SegmentsBaseOperator, as_flag, historical_reason

if TYPE_CHECKING:
    import datetime as dt

    from airflow.sdk import Context

    from airflow_segprovider.core.destination import FieldType, ReportedCount
    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.warehouses.base import Warehouse


def hybrid_historical_reason(context: Context, warehouse: Warehouse, as_of: dt.datetime) -> str | None:
    """Why this run must neither rebuild nor push the hub, or None when it is the latest run."""
    from airflow_segprovider.core.hybrid.build import latest_build

    reason = historical_reason(context, warehouse, [], as_of)
    if reason:
        return reason
    build = latest_build(warehouse)
    if build is not None and build["as_of"] > as_of:
        return (f"the hub was built for a later as_of ({build['as_of'].isoformat()} > {as_of.isoformat()}): "
                "historical attributes are never pushed")
    return None


def _spoke_client(project: Project, destination: str):
    """A Mailchimp/HubSpot connector for the hub's push to ``destination`` (no membership target)."""
    from airflow_segprovider.core.hybrid.hub import require_hub
    from airflow_segprovider.core.hybrid.push import push_sync
    from airflow_segprovider.destinations.spokes import PUSH_CONFIG
    from airflow_segprovider.hooks.destination import hook_for_destination

    hub = require_hub(project)
    kind = project.destinations[destination].kind
    return hook_for_destination(project.destinations[destination]).get_client(
        project, push_sync(hub.push[destination]), PUSH_CONFIG.get(kind, {}))


def read_field_types(project: Project, destinations: Sequence[str] | None = None) -> dict[str, dict[str, FieldType]]:
    """Each pushed destination's fields, as its API describes them."""
    from airflow_segprovider.core.hybrid.hub import require_hub
    from airflow_segprovider.destinations.spokes import field_types

    hub = require_hub(project)
    out: dict[str, dict[str, FieldType]] = {}
    for destination in destinations or sorted(hub.push):
        client = _spoke_client(project, destination)
        try:
            out[destination] = field_types(client)
        finally:
            client.close()
    return out


class HubBuildOperator(SegmentsBaseOperator):
    """Build the hub's profile table from the ingested tables at ``as_of`` (skipped in backfills)."""

    ui_color = "#e3d7f4"

    def execute_step(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from airflow_segprovider.core.hybrid.build import HubBuilder

        as_of = self.as_of_value()
        with self.warehouse() as warehouse:
            reason = hybrid_historical_reason(context, warehouse, as_of)
            if reason:
                raise AirflowSkipException(f"not rebuilding the hub: {reason}")
            result = HubBuilder(self.project, warehouse).build(as_of)
        self.log.info("hub built: %s", result.to_dict())
        return result.to_dict()


class HubGateOperator(SegmentsBaseOperator):
    """Validate a hub gate (``hub_freshness`` or ``hub_types``); a failure stops the push and alerts.

    ``hub_types`` reads each spoke's field types (Mailchimp merge fields, HubSpot properties)
    through its Airflow connection when the task runs.

    :param gate: ``hub_freshness`` or ``hub_types``.
    :param parameters: suite parameters (e.g. ``{"max_age_hours": 24}``).
    """

    template_fields: Sequence[str] = (*SegmentsBaseOperator.template_fields, "parameters")
    ui_color = "#fff3cd"

    def __init__(self, *, gate: str, parameters: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate
        self.parameters = dict(parameters or {})

    def execute_step(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from airflow_segprovider.gates import GateFailed
        from airflow_segprovider.gates.gx import import_gx
        from airflow_segprovider.gates.hub import evaluate_hub_gate

        import_gx()  # slow, and quieted: done before taking the warehouse's write lock
        from airflow_segprovider.operators.gate import default_docs_dir

        as_of = self.as_of_value()
        field_types = read_field_types(self.project) if self.gate == "hub_types" else None
        with self.warehouse() as warehouse:
            reason = hybrid_historical_reason(context, warehouse, as_of)
            if reason:
                raise AirflowSkipException(f"not gating the hub: {reason}")
            result = evaluate_hub_gate(self.gate, self.project, warehouse, as_of, field_types=field_types,
                                       docs_dir=default_docs_dir(context, self.task_id), **self.parameters)
        summary = result.to_dict()
        context["ti"].xcom_push(key="gate_result", value=summary)
        if not result.success:
            self.log.error("%s", result.summary())
            raise GateFailed(result)
        self.log.info("%s", result.summary())
        return summary


class AttributePushOperator(SegmentsBaseOperator):
    """Push the hub's changed attributes to one spoke, then create or update its spoke segments.

    Only profiles whose row hash differs from what the spoke last acknowledged are sent, with
    values converted to each field's type; the hash is committed per accepted batch. Skipped in
    backfills and for runs older than the newest hub build.

    :param destination: the spoke (mapped over by the DAG: one task per pushed destination).
    :param dry_run: plan only (templated).
    """

    template_fields: Sequence[str] = (*SegmentsBaseOperator.template_fields, "destination", "dry_run")
    ui_color = "#dbe9f6"

    def __init__(self, *, destination: str, dry_run: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.destination = destination
        self.dry_run = dry_run

    def execute_step(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from airflow_segprovider.core.hybrid.hub import require_hub
        from airflow_segprovider.core.hybrid.push import AttributePushEngine
        from airflow_segprovider.core.sync import SyncOptions
        from airflow_segprovider.destinations.spoke_segments import deploy_spoke_segment
        from airflow_segprovider.destinations.spokes import PushClient, field_types

        project = self.project
        hub = require_hub(project)
        if self.destination not in hub.push:
            raise AirflowFailException(f"the hub pushes nothing to {self.destination!r}; pushes: "
                                       f"{', '.join(hub.push)}")
        as_of = self.as_of_value()
        dry_run = as_flag(self.dry_run)
        client = PushClient(_spoke_client(project, self.destination))
        try:
            types = field_types(client.client)
            with self.warehouse() as warehouse:
                reason = hybrid_historical_reason(context, warehouse, as_of)
                if reason:
                    raise AirflowSkipException(f"not pushing to {self.destination}: {reason}")
                engine = AttributePushEngine(project, warehouse, self.destination, types)
                record = engine.run_push(client, as_of, options=SyncOptions(dry_run=dry_run),
                                         run_id=f"{context['run_id']}__{context['ti'].try_number}")
            spokes = {}
            if not dry_run:
                for name, spoke in project.spoke_segments.items():
                    if spoke.destination == self.destination:
                        spokes[name] = deploy_spoke_segment(client.client, hub, spoke)
        finally:
            client.close()
        self.log.info("push to %s: %s, sent %d new and %d changed profiles, rejected %d; spoke segments %s",
                      self.destination, record.status, record.succeeded["add"], record.succeeded["change"],
                      sum(record.failed.values()), spokes)
        return {**record.to_dict(), "spoke_segments": spokes}


class DriftCheckOperator(SegmentsBaseOperator):
    """Compare what the hub and the central engine expect with what each destination reports.

    * ``hybrid`` scope: each spoke segment's count (the spoke evaluates it) against the hub's
      own evaluation of the same rule, stale attributes (hub older than source), type mismatches
      between hub attributes and spoke fields;
    * ``all`` scope adds every sync of the other two models: the members the sync state says the
      destination holds against the destination's reported count. A centralized sync is held to
      ``sync_tolerance``; a reconciled one (distributed model) to its policy's ``max_change_fraction``,
      since hand edits between reconciles are expected and only a drift the next reconcile's
      change-set gate would refuse needs a person.

    Findings go to ``segprovider_drift_reports`` and XCom; any drift past tolerance, stale
    attribute or type mismatch fails the task (the DAG's notifier sends the alert).

    :param scope: ``hybrid`` or ``all``.
    :param sync_tolerance: tolerance of centralized syncs' counts (relative).
    :param fail_on_drift: fail (and alert) when something drifted (templated).
    """

    template_fields: Sequence[str] = (*SegmentsBaseOperator.template_fields, "fail_on_drift")
    ui_color = "#f8d7da"

    def __init__(self, *, scope: str = "hybrid", sync_tolerance: float = 0.01, fail_on_drift: bool | str = True,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scope = scope
        self.sync_tolerance = sync_tolerance
        self.fail_on_drift = fail_on_drift

    def execute_step(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_segprovider.core.hybrid.drift import (
            hub_built,
            hub_drift_findings,
            hub_not_built_finding,
            record_drift,
            sync_count_finding,
        )
        from airflow_segprovider.core.sync.engine import SyncEngine
        from airflow_segprovider.destinations.spoke_segments import spoke_segment_count
        from airflow_segprovider.hooks.destination import hook_for_destination

        project = self.project
        as_of = self.as_of_value()
        findings = []
        hub_checked = project.hub is not None
        if hub_checked and self.scope == "all":
            with self.warehouse() as warehouse:
                hub_checked = hub_built(warehouse)
            if not hub_checked:  # a deployment that runs only the centralized model: nothing to compare yet
                findings.append(hub_not_built_finding())
        if hub_checked:
            counts: dict[str, int | None] = {}
            for name, spoke in project.spoke_segments.items():
                client = _spoke_client(project, spoke.destination)
                try:
                    counts[name] = spoke_segment_count(client, spoke)
                finally:
                    client.close()
            types = read_field_types(project)
            with self.warehouse() as warehouse:
                findings += hub_drift_findings(project, warehouse, as_of, counts, types)
        if self.scope == "all":
            reported: dict[str, ReportedCount | None] = {}
            for sync in project.syncs:
                client = hook_for_destination(project.destinations[sync.destination]).get_client(project, sync)
                try:
                    reported[sync.id] = client.reported_count()
                except Exception as exc:  # noqa: BLE001 - an unreadable count is reported, not fatal
                    self.log.warning("sync %s: cannot read the destination's count: %s", sync.id, exc)
                    reported[sync.id] = None
                finally:
                    client.close()
            with self.warehouse() as warehouse:
                engine = SyncEngine(project, warehouse)
                engine.ensure_tables()
                for sync in project.syncs:
                    expected = engine.destination_count(sync)
                    findings.append(sync_count_finding(project, sync, expected, reported[sync.id],
                                                        self.sync_tolerance))
        with self.warehouse() as warehouse:
            record_drift(warehouse, str(context["run_id"]), findings)
        report = {"findings": [f.to_dict() for f in findings],
                  "problems": [f.to_dict() for f in findings if f.status in ("drift", "stale", "mismatch")]}
        for finding in findings:
            self.log.info("%s %s -> %s: %s %s", finding.kind, finding.name, finding.destination, finding.status,
                          finding.detail)
        if report["problems"] and as_flag(self.fail_on_drift):
            lines = [f"- {p['kind']} {p['name']} ({p['destination']}): {p['status']}: {p['detail']}"
                     for p in report["problems"]]
            raise AirflowFailException(f"drift found in {len(lines)} place(s):\n" + "\n".join(lines))
        return report

"""The distributed model's tables: what a reconcile run pulled, decided, planned, applied and measured.

``segprovider_reconcile_runs``
    one row per (run, segment): the run's ``as_of``, policy, status (``pulled``, ``planned``,
    ``blocked``, ``applying``, ``applied``, ``partial``, ``failed``) and its counts.
``segprovider_reconcile_pulls``
    each readable system's list as pulled, matched to customer keys, with the time the system
    reports for each membership.
``segprovider_reconcile_counts``
    per system of each segment: its reported size (also for systems that cannot be read back),
    the members pulled, matched and unmatched.
``segprovider_reconcile_decisions``
    the resolved value of every customer, with both sides of each conflict and the rule that won.
``segprovider_reconcile_plan``
    the exact change set the sync engine will send to each system.
``segprovider_reconcile_audit``
    every change a destination acknowledged (run, system, customer key, segment, before, after,
    rule, reason), written in the same transaction as the sync state rows.
``segprovider_reconcile_state``
    the last agreed value of each customer per segment.
``segprovider_reconcile_drift``
    the drift report of each run: counts per system before, planned, applied and after.

The statements are written in DuckDB's dialect and rendered for the warehouse's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import render

if TYPE_CHECKING:
    from airflow_segprovider.core.warehouses.base import Warehouse

PULLS = "segprovider_reconcile_pulls"
COUNTS = "segprovider_reconcile_counts"
DECISIONS = "segprovider_reconcile_decisions"
PLAN = "segprovider_reconcile_plan"
AUDIT = "segprovider_reconcile_audit"
AGREED = "segprovider_reconcile_state"
RUNS = "segprovider_reconcile_runs"
DRIFT = "segprovider_reconcile_drift"

TABLES: tuple[str, ...] = (RUNS, PULLS, COUNTS, DECISIONS, PLAN, AUDIT, AGREED, DRIFT)

DDL = (
    f"""CREATE TABLE IF NOT EXISTS {PULLS} (
        run_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, system VARCHAR NOT NULL, customer_key VARCHAR NOT NULL,
        identity VARCHAR, destination_id VARCHAR, changed_at TIMESTAMP, pulled_at TIMESTAMP NOT NULL,
        PRIMARY KEY (run_id, segment, system, customer_key))""",
    f"""CREATE TABLE IF NOT EXISTS {COUNTS} (
        run_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, system VARCHAR NOT NULL, kind VARCHAR NOT NULL,
        readable BOOLEAN NOT NULL, reported_count BIGINT, pulled_members BIGINT, matched BIGINT, unmatched BIGINT,
        pulled_at TIMESTAMP NOT NULL, PRIMARY KEY (run_id, segment, system))""",
    f"""CREATE TABLE IF NOT EXISTS {DECISIONS} (
        run_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, customer_key VARCHAR NOT NULL, as_of TIMESTAMP NOT NULL,
        member BOOLEAN NOT NULL, changed_at TIMESTAMP, rule VARCHAR NOT NULL, reason VARCHAR, source VARCHAR,
        conflict BOOLEAN NOT NULL, present_in VARCHAR, absent_from VARCHAR,
        PRIMARY KEY (run_id, segment, customer_key))""",
    f"""CREATE TABLE IF NOT EXISTS {PLAN} (
        run_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, system VARCHAR NOT NULL, customer_key VARCHAR NOT NULL,
        member_before BOOLEAN NOT NULL, member_after BOOLEAN NOT NULL, rule VARCHAR NOT NULL, reason VARCHAR,
        PRIMARY KEY (run_id, segment, system, customer_key))""",
    f"""CREATE TABLE IF NOT EXISTS {AUDIT} (
        run_id VARCHAR NOT NULL, system VARCHAR NOT NULL, customer_key VARCHAR NOT NULL, segment VARCHAR NOT NULL,
        member_before BOOLEAN NOT NULL, member_after BOOLEAN NOT NULL, rule VARCHAR NOT NULL, reason VARCHAR,
        sync_run_id VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL,
        PRIMARY KEY (run_id, system, segment, customer_key))""",
    f"""CREATE TABLE IF NOT EXISTS {AGREED} (
        segment VARCHAR NOT NULL, customer_key VARCHAR NOT NULL, member BOOLEAN NOT NULL, changed_at TIMESTAMP,
        rule VARCHAR NOT NULL, run_id VARCHAR NOT NULL, PRIMARY KEY (segment, customer_key))""",
    f"""CREATE TABLE IF NOT EXISTS {RUNS} (
        run_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, as_of TIMESTAMP NOT NULL, policy VARCHAR NOT NULL,
        status VARCHAR NOT NULL, customers BIGINT, conflicts BIGINT, stale_edits BIGINT, planned_changes BIGINT,
        applied_changes BIGINT, rejected BIGINT, absorbed BOOLEAN NOT NULL, error VARCHAR,
        started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP, PRIMARY KEY (run_id, segment))""",
    f"""CREATE TABLE IF NOT EXISTS {DRIFT} (
        run_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, system VARCHAR NOT NULL, readable BOOLEAN NOT NULL,
        reported_before BIGINT, planned_add BIGINT, planned_remove BIGINT, applied_add BIGINT, applied_remove BIGINT,
        resolved_members BIGINT, reported_after BIGINT, drift BIGINT, measured_at TIMESTAMP NOT NULL,
        PRIMARY KEY (run_id, segment, system))""",
)


def ensure_tables(warehouse: Warehouse) -> None:
    """Create the distributed model's tables where missing (in :data:`DDL`'s order).

    :param warehouse: the warehouse whose dialect the statements are rendered in.
    """
    for statement in DDL:
        warehouse.execute(render(statement, warehouse.dialect))

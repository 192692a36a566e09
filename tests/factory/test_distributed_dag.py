"""``segments_distributed`` on the example project with ``dag.test()``: DuckDB, the sandbox over loopback,
alerts to a loopback receiver, the connections as ``AIRFLOW_CONN_*`` variables.

Day 1 learns two agreeing lists; day 2 resolves edits made in both tools; day 3 someone empties
half the CRM list and the change-set gate stops the run and alerts; an older run never pushes.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from airflow_segprovider.example import EXAMPLE_PROJECT
from support.airflow_world import AlertReceiver, airflow_db  # noqa: F401  (pytest fixture)
from support.distributed_world import consenting_customers, last_request_id, membership_writes, seed_sandbox

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY_1 = dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc)


def _states(dagrun: Any) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dagrun.dag_id,
                                                 TaskInstance.run_id == dagrun.run_id).all()
        return {ti.task_id: str(ti.state) for ti in tis}


@pytest.fixture(scope="module")
def world(tmp_path_factory, airflow_db):  # noqa: F811 - the session fixture, migrated once
    from airflow_segprovider.cli.demo import connection_variables, sandbox_connections
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.example.generate import generate
    from segprovider_sandbox import serve
    from support.sandbox import SANDBOX_CREDENTIALS

    tmp = tmp_path_factory.mktemp("distributed_dag")
    project = tmp / "segments_project"
    shutil.copytree(EXAMPLE_PROJECT, project, ignore=shutil.ignore_patterns("landing"))
    warehouse_path = tmp / "warehouse.duckdb"
    warehouse = DuckDBWarehouse(warehouse_path)
    generate(warehouse, 300, seed=13)
    emails = list(consenting_customers(warehouse, 12).values())
    warehouse.close()

    receiver = AlertReceiver()
    alerts = receiver.alerts
    sandbox = serve(db_path=tmp / "sandbox.db")
    systems = seed_sandbox(sandbox)
    connections = sandbox_connections(warehouse_path, sandbox.url, receiver.url, SANDBOX_CREDENTIALS,
                                      retry={"backoff_base": 0.05, "backoff_max": 0.2, "max_attempts": 4})
    patch = pytest.MonkeyPatch()
    for name, value in connection_variables(connections).items():
        patch.setenv(name, value)
    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "segments_distributed.py").write_text(
        "from airflow_segprovider.factory.distributed import build_distributed_dag\n"
        f"dag = build_distributed_dag({str(project)!r}, dag_id='segments_distributed')\n")
    from airflow_segprovider.factory.distributed import build_distributed_dag

    dag = build_distributed_dag(project, dag_id="segments_distributed")
    yield {"dag": dag, "systems": systems, "sandbox": sandbox, "alerts": alerts, "emails": emails,
           "warehouse": warehouse_path}
    patch.undo()
    sandbox.stop()
    receiver.close()


def _query(world: dict, sql: str) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(world["warehouse"]), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_segments_distributed_reconciles_gates_and_never_pushes_history(world) -> None:
    dag, systems, sandbox, emails = world["dag"], world["systems"], world["sandbox"], world["emails"]
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    for system in ("hubspot_crm", "mailchimp_newsletter"):
        for email in emails[:10]:
            systems.edit(system, email, True, now - dt.timedelta(hours=2))

    # day 1: the lists agree; the run learns them and changes nothing
    before = last_request_id(sandbox)
    states = _states(dag.test(logical_date=DAY_1))
    assert set(states.values()) == {"success"}, states
    assert not any(membership_writes(sandbox, before).values())

    # day 2: an account manager adds an account in the CRM, someone removes another in Mailchimp
    systems.edit("hubspot_crm", emails[10], True)
    systems.edit("mailchimp_newsletter", emails[0], False)
    before = last_request_id(sandbox)
    run = dag.test(logical_date=DAY_1 + dt.timedelta(days=1))
    assert set(_states(run).values()) == {"success"}
    held = systems.held()
    assert held["hubspot_crm"] == held["mailchimp_newsletter"] == set(emails[1:11])
    writes = membership_writes(sandbox, before)
    audit = _query(world, "SELECT system, customer_key, member_before, member_after, rule FROM "
                          f"segprovider_reconcile_audit WHERE run_id = '{run.run_id}__pull1' ORDER BY system")
    assert [(s, after, rule) for s, _, _, after, rule in audit] == [
        ("hubspot_crm", False, "most_recent"), ("mailchimp_newsletter", True, "most_recent")]
    assert len(writes["hubspot_crm"]) == len(writes["mailchimp_newsletter"]) == 1
    drift = _query(world, "SELECT system, reported_after, resolved_members, drift FROM segprovider_reconcile_drift "
                          f"WHERE run_id = '{run.run_id}__pull1' ORDER BY system")
    assert drift == [("hubspot_crm", 10, 10, 0), ("mailchimp_newsletter", 10, 10, 0)]

    # day 3: half the CRM list is emptied: the gate stops the run before anything is sent, and alerts
    for email in emails[1:6]:
        systems.edit("hubspot_crm", email, False)
    before = last_request_id(sandbox)
    states = _states(dag.test(logical_date=DAY_1 + dt.timedelta(days=2)))
    assert states["gate_change_set"] == "failed" and states["apply"] == "upstream_failed", states
    assert not any(membership_writes(sandbox, before).values())
    alert = world["alerts"][-1]
    assert alert["task_id"] == "gate_change_set" and alert["gate"] == "reconcile_change_set"
    assert alert["failed_expectations"][0]["column"] == "sales_priority/mailchimp_newsletter"

    # an older interval never pulls nor pushes: a newer reconcile already ran
    before = last_request_id(sandbox)
    states = _states(dag.test(logical_date=DAY_1 - dt.timedelta(days=1)))
    assert states["pull"] == "skipped" and states["apply"] == "skipped", states
    assert last_request_id(sandbox) == before

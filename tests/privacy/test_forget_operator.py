"""``SegmentsForgetOperator``: the erasure from Airflow, with connections from ``AIRFLOW_CONN_*`` and no keys in XCom.

Airflow reads ``AIRFLOW_CONN_<CONN_ID>`` environment variables as connections
(https://airflow.apache.org/docs/apache-airflow/stable/howto/connection.html#storing-connections-in-environment-variables).
"""

from __future__ import annotations

import json

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_segprovider.cli.demo import connection_variables, sandbox_connections
from airflow_segprovider.core.errors import TransientError
from airflow_segprovider.core.state.privacy import SALT_ENV
from airflow_segprovider.operators.privacy import SegmentsForgetOperator, customer_keys_value
from support.sandbox import SANDBOX_CREDENTIALS
from support.sync_constants import DAY_2
from support.sync_runs import run, sync_of

pytestmark = pytest.mark.integration


def test_keys_arrive_as_a_list_or_as_rendered_text():
    assert customer_keys_value(["1", " 2 ", ""]) == ["1", "2"]
    assert customer_keys_value("['1', '2']") == ["1", "2"]
    assert customer_keys_value('["1","2"]') == ["1", "2"]
    assert customer_keys_value("1, 2\n3") == ["1", "2", "3"]


def _connections(world, monkeypatch, **override):
    db = world.root.parent / "warehouse.duckdb"
    connections = sandbox_connections(db, world.sandbox.url, "http://127.0.0.1:9", SANDBOX_CREDENTIALS,
                                      retry={"backoff_base": 0.01, "backoff_max": 0.05, "max_attempts": 4})
    for conn_id, fields in override.items():
        connections[conn_id] = {**connections[conn_id], **fields}
    for name, value in connection_variables(connections).items():
        monkeypatch.setenv(name, value)


def test_the_operator_forgets_and_returns_no_key(world, monkeypatch):
    sync = sync_of(world.project, "vip", "mailchimp_newsletter")
    run(world.project, world.warehouse, world.connections, sync, DAY_2)
    key = world.warehouse.query(
        f"SELECT MIN(customer_key) FROM segprovider_sync_state WHERE sync_id = '{sync.id}'")[0][0]
    world.warehouse.close()  # the task opens the DuckDB file itself
    _connections(world, monkeypatch)
    task = SegmentsForgetOperator(task_id="forget", project_path=str(world.root), customer_keys=f"[{key!r}]")

    results = task.execute({"run_id": "manual__privacy"})

    assert [r["status"] for r in results] == ["erased"]
    assert key not in json.dumps(results)  # XCom holds the salted hash, never the key
    assert {o["destination"] for o in results[0]["destinations"]} >= {"mailchimp_newsletter"}


def test_a_pending_erasure_fails_the_attempt_for_a_retry_and_no_salt_fails_the_task(world, monkeypatch):
    sync = sync_of(world.project, "vip", "hubspot_crm")
    run(world.project, world.warehouse, world.connections, sync, DAY_2)
    key = world.warehouse.query(
        f"SELECT MIN(customer_key) FROM segprovider_sync_state WHERE sync_id = '{sync.id}'")[0][0]
    world.warehouse.close()
    _connections(world, monkeypatch, segprovider_hubspot={"password": "revoked"})
    task = SegmentsForgetOperator(task_id="forget", project_path=str(world.root), customer_keys=[key])

    with pytest.raises(TransientError, match="pending.*hubspot_crm"):
        task.execute({"run_id": "manual__privacy"})

    monkeypatch.delenv(SALT_ENV)
    with pytest.raises(AirflowFailException, match=SALT_ENV):
        task.execute({"run_id": "manual__privacy"})

"""``segments_centralized`` end to end with ``dag.test()`` on the real PostgreSQL server.

The same world as ``test_centralized_dag.py`` (landing files, the destination sandbox, alerts on
loopback), except that the ``segprovider_warehouse`` connection is a ``postgres`` connection and the
project's warehouse schema is a fresh ``t_<uuid>`` schema: ingest, evaluation, gates (GX's PostgreSQL
datasource) and the sync state all run in PostgreSQL. The schema is dropped at the end.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import pytest

from airflow_segprovider.hooks.warehouse import SUPPORTED_CONN_TYPES
from support.dag_world import DAY_1, World
from support.postgres import postgres_schema

pytestmark = [
    pytest.mark.integration, pytest.mark.slow,
    pytest.mark.skipif("postgres" not in SUPPORTED_CONN_TYPES,
                       reason="the warehouse hook has no opener for conn_type 'postgres' yet"),
]

PG = {"host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "test"}


class PostgresWorld(World):
    """A world whose warehouse is a schema of the PostgreSQL server."""

    pg_schema: str = ""

    def query(self, sql: str) -> list[tuple]:
        import psycopg2

        connection = psycopg2.connect(host=PG["host"], port=PG["port"], user=PG["login"], dbname=PG["schema"],
                                      options=f"-c search_path={self.pg_schema} -c TimeZone=UTC")
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()
        finally:
            connection.close()


@pytest.fixture
def pg_world(world: World, monkeypatch: pytest.MonkeyPatch) -> PostgresWorld:
    with postgres_schema() as schema:
        settings = world.project / "segprovider_project.yml"
        settings.write_text(re.sub(r"schema: main", f"schema: {schema}", settings.read_text()))
        monkeypatch.setenv("AIRFLOW_CONN_SEGPROVIDER_WAREHOUSE", json.dumps({"conn_type": "postgres", **PG}))
        pg_world = PostgresWorld(world.project, Path(os.devnull), world.sandbox, world.alerts, world.docs)
        pg_world.pg_schema = schema
        yield pg_world


def test_a_day_on_postgres_ingests_evaluates_gates_and_syncs_then_a_stale_day_is_blocked(
        pg_world: PostgresWorld) -> None:
    states = pg_world.run(DAY_1)

    assert all(state == "success" for state in states.values()), states
    loads = dict(pg_world.query("SELECT source, rows_loaded FROM segprovider_source_loads WHERE status = 'succeeded'"))
    assert set(loads) == {"crm_customers", "web_events", "shop_orders", "consent_log"} and all(loads.values())
    assert pg_world.query("SELECT COUNT(*) FROM customers")[0][0] == loads["crm_customers"]
    members = dict(pg_world.query("SELECT segment, members FROM segprovider_snapshots"))
    assert members["vip"] > 0
    synced = dict(pg_world.query("SELECT sync_id, COUNT(*) FROM segprovider_sync_state WHERE in_destination "
                                 "GROUP BY sync_id"))
    assert synced["vip__hubspot_crm"] > 0
    # the gates ran through Great Expectations' PostgreSQL datasource (types: pandas on fetched rows)
    results = list(pg_world.docs.rglob("validation_result.json"))
    used = {path.parent.name: {v["result"]["meta"]["active_batch_definition"]["datasource_name"]
                               for v in json.loads(path.read_text())["validations"]} for path in results}
    assert used and all(sources == ({"segprovider"} if "types" in gate else {"segprovider_sql"})
                        for gate, sources in used.items()), used
    writes = len(pg_world.destination_writes())

    # a year later every source is stale: the freshness gate fails and blocks every sync
    states = pg_world.run(dt.datetime(2027, 11, 24, tzinfo=dt.timezone.utc))

    assert states["gate_freshness"] == "failed"
    assert all(state in ("upstream_failed", "None") for task, state in states.items() if task.endswith(".sync"))
    assert len(pg_world.destination_writes()) == writes
    alert = next(a for a in pg_world.alerts if a["task_id"] == "gate_freshness")
    assert alert["gate"] == "freshness" and alert["failed_expectations"]

"""Every DAG in dags/ imports cleanly, looks nothing up while parsing, and is fully described."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def lookups_during_parse():
    """Parse dags/ while recording every connection and variable look-up Airflow is asked for."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import BaseHook, Variable

    seen: list[str] = []
    patch = pytest.MonkeyPatch()

    def record_connection(cls, conn_id, *args, **kwargs):
        seen.append(f"connection {conn_id}")
        raise AssertionError(f"connection {conn_id!r} looked up while parsing")

    def record_variable(cls, key, *args, **kwargs):
        seen.append(f"variable {key}")
        raise AssertionError(f"variable {key!r} looked up while parsing")

    patch.setattr(BaseHook, "get_connection", classmethod(record_connection))
    patch.setattr(Variable, "get", classmethod(record_variable))
    try:
        bag = DagBag(dag_folder=str(DAGS))
    finally:
        patch.undo()
    return bag, seen


def test_parsing_the_dags_loads_no_data_libraries() -> None:
    """The scheduler parses dags/ every few seconds: Arrow, pandas, GX, sqlglot and the sync engine load in tasks only."""
    heavy = ("pyarrow", "pandas", "great_expectations", "duckdb", "sqlglot", "airflow_segprovider.core.sync.engine")
    script = ("import runpy, sys\n"
              f"for path in {sorted(str(p) for p in DAGS.glob('*.py'))!r}:\n"
              "    runpy.run_path(path)\n"
              f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert loaded.stdout.strip() == "", f"parsing dags/ imported {loaded.stdout.strip()}"


def test_every_dag_imports_without_errors(lookups_during_parse) -> None:
    bag, _ = lookups_during_parse
    assert not bag.import_errors, bag.import_errors
    assert "segments_centralized" in bag.dags


def test_no_connection_or_variable_is_looked_up_at_parse_time(lookups_during_parse) -> None:
    _, seen = lookups_during_parse
    assert seen == []


def test_every_dag_has_schedule_tags_owner_retries_and_docs(lookups_during_parse) -> None:
    bag, _ = lookups_during_parse
    for dag_id, dag in bag.dags.items():
        assert dag.schedule is not None and type(dag.timetable).__name__ != "NullTimetable", dag_id
        assert "segprovider" in dag.tags, dag_id
        assert dag.doc_md and len(dag.doc_md) > 100, dag_id
        assert dag.max_active_runs == 1, dag_id  # the embedded warehouse has one writer
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", (dag_id, task.task_id)
            assert task.retries >= 1, (dag_id, task.task_id)
            assert task.on_failure_callback, (dag_id, task.task_id)  # failed gates and syncs alert


def test_the_membership_and_staging_tables_are_assets(lookups_during_parse) -> None:
    bag, _ = lookups_during_parse
    dag = bag.dags["segments_centralized"]
    outlets = {getattr(o, "uri", "") for task in dag.tasks for o in (task.outlets or [])}
    assert "segprovider://retail_demo/memberships" in outlets
    assert {"segprovider://retail_demo/staging/customers", "segprovider://retail_demo/staging/events"} <= outlets


def test_the_centralized_dag_leaves_reconciled_segments_to_the_distributed_dag(lookups_during_parse) -> None:
    """One owner per segment: ``sales_priority`` has a reconcile policy, so segments_centralized never pushes it."""
    bag, _ = lookups_during_parse
    dag = bag.dags["segments_centralized"]
    doc = dag.doc_md
    rows = {line.split("|")[1].strip(" `"): line.split("|")[2].strip() for line in doc.splitlines()
            if line.startswith("| `")}
    assert rows["sales_priority"] == "-"
    assert rows["vip"] == "mailchimp_newsletter (mirror), hubspot_crm (mirror)"  # vip stays centralized
    left = doc[doc.index("**Left to `segments_distributed`**"):]
    for sync_id in ("sales_priority__mailchimp_newsletter", "sales_priority__hubspot_crm"):
        assert f"- `{sync_id}`: segment `sales_priority`" in left
    assert "reconcile.yml:" in left and "`most_recent`" in left
    # one branch per destination with a centralized sync (vip, active_30d, ...), each with its own sync task
    syncs = sorted(task.destination for task in dag.tasks if task.task_id.endswith(".sync"))
    assert syncs == ["hubspot_crm", "mailchimp_newsletter", "meta_ads"]
    assert {dag.get_task(f"{d}.sync").destination for d in syncs} == set(syncs)
    assert "segments_distributed" in bag.dags  # and the distributed DAG does own it

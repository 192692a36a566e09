"""What needs no api-server: the plugin stays cheap to import, opens the warehouse the connection names (read-only,
never waiting long for a task), answers a busy warehouse from the cache, and reads the gate tasks' docs folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from airflow_segprovider.plugins.insights.access import ResultCache, WarehouseBusyError


def test_importing_the_plugin_imports_neither_fastapi_app_nor_the_queries() -> None:
    code = ("import sys, airflow_segprovider.plugins as p; "
            "print(any(m.startswith(('airflow_segprovider.plugins.insights.app', 'airflow_segprovider.core.evaluate', "
            "'plotly')) for m in sys.modules)); print(p.SegproviderPlugin.fastapi_apps[0]['url_prefix'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)

    assert out.stdout.split() == ["False", "/segprovider"]


def test_a_busy_warehouse_is_answered_with_the_last_result_marked_stale() -> None:
    cache = ResultCache(size=2)
    fresh = cache.read(("dag", "segments"), lambda: {"n": 1})

    def busy() -> None:
        raise WarehouseBusyError("a task holds the file")

    stale = cache.read(("dag", "segments"), busy)

    assert fresh["stale"] is False and stale == {"data": {"n": 1}, "read_at": fresh["read_at"], "stale": True}
    with pytest.raises(WarehouseBusyError):
        cache.read(("dag", "overlap"), busy)  # nothing earlier to show: the endpoint answers 503


def test_data_docs_never_serve_a_file_outside_the_docs_root(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``dag_id`` of ``..`` (let through by an auth manager that grants every DAG) must not reach airflow.cfg."""
    from airflow_segprovider.plugins.insights.gates import docs_file

    docs = tmp_path / "segprovider_docs"
    (docs / "segments_centralized" / "run" / "gate_freshness").mkdir(parents=True)
    (docs / "segments_centralized" / "run" / "gate_freshness" / "index.html").write_text("<html></html>")
    (tmp_path / "airflow.cfg").write_text("[core]\nfernet_key = secret\n")
    monkeypatch.setenv("SEGPROVIDER_DOCS_DIR", str(docs))

    assert docs_file("segments_centralized", "run/gate_freshness/index.html") is not None
    assert docs_file("..", "airflow.cfg") is None
    assert docs_file("segments_centralized", "../../airflow.cfg") is None
    assert docs_file(".", "segments_centralized/run/gate_freshness/index.html") is None


def _target(conn_id: str = "segprovider_warehouse") -> Any:
    from airflow_segprovider.plugins.insights.access import DagTarget

    return DagTarget("segments_centralized", "centralized", None, None, conn_id, ("segprovider",))


def test_the_warehouse_is_the_database_the_connection_names_opened_read_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The DuckDB provider's ``database`` extra wins over the host, as it does for the DAG's tasks
    (https://airflow.apache.org/docs/apache-airflow-providers-duckdb/stable/connections/duckdb.html)."""
    from airflow_segprovider.plugins.insights.access import open_warehouse

    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("CREATE TABLE marker AS SELECT 42 AS answer")
    monkeypatch.setenv("AIRFLOW_CONN_SEGPROVIDER_WAREHOUSE", json.dumps(
        {"conn_type": "duckdb", "host": str(tmp_path / "not_this_one.duckdb"), "extra": {"database": str(database)}}))

    with open_warehouse(_target(), "main") as warehouse:
        assert warehouse.query("SELECT answer FROM marker") == [(42,)]
        with pytest.raises(duckdb.Error, match="read-only"):
            warehouse.execute("INSERT INTO marker VALUES (1)")


def test_a_database_a_task_holds_is_retried_briefly_then_reported_busy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_segprovider.plugins.insights import access

    database = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(database)).close()
    monkeypatch.setenv("AIRFLOW_CONN_SEGPROVIDER_WAREHOUSE", json.dumps({"conn_type": "duckdb", "host": str(database)}))
    monkeypatch.setattr(access, "LOCK_WAIT_S", 0.3)
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(60)", str(database)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseBusyError, match="being written by a task"):
            with access.open_warehouse(_target(), "main"):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_a_database_no_run_has_written_is_said_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_segprovider.plugins.insights.access import open_warehouse

    monkeypatch.setenv("AIRFLOW_CONN_SEGPROVIDER_WAREHOUSE", json.dumps(
        {"conn_type": "duckdb", "extra": {"database": str(tmp_path / "missing.duckdb")}}))

    with pytest.raises(FileNotFoundError, match="missing.duckdb does not exist yet"):
        with open_warehouse(_target(), "main"):
            pass
    assert not (tmp_path / "missing.duckdb").exists()


def test_gate_tasks_and_the_plugin_read_one_docs_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a gate task writes (the operator's default) is where the plugin looks, for an unsafe run id too."""
    from types import SimpleNamespace

    from airflow_segprovider.operators.gate import default_docs_dir
    from airflow_segprovider.plugins.insights.gates import gate_results

    monkeypatch.setenv("SEGPROVIDER_DOCS_DIR", str(tmp_path / "docs"))
    run_id = "manual__2026-11-20T06:00:00+00:00"
    written = default_docs_dir({"dag": SimpleNamespace(dag_id="segments_centralized"), "run_id": run_id},
                               "gate_freshness")
    written.mkdir(parents=True)
    (written / "gate_result.json").write_text(json.dumps({"gate": "freshness", "success": True}))

    found = gate_results("segments_centralized", run_id)

    assert [(r["gate"], r["task_id"], r["run"]) for r in found] == [
        ("freshness", "gate_freshness", written.parent.name)]

"""What needs no api-server: the plugin stays cheap to import, and a busy warehouse is answered from the cache."""

from __future__ import annotations

import subprocess
import sys

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

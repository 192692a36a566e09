"""Gate results and Data Docs, as the gate tasks keep them on disk.

Each gate task writes ``gate_result.json`` (its :class:`~airflow_segprovider.gates.results.GateResult`) and
Great Expectations' Data Docs (``index.html`` and its pages) to ``<docs root>/<dag_id>/<run folder>/<task_id>/``;
the API server reads the same folder (shared with the workers, as the Docker setup's volume does), named by
the gate operator's own :func:`~airflow_segprovider.operators.gate.docs_root` and
:func:`~airflow_segprovider.operators.gate.run_folder` (``$SEGPROVIDER_DOCS_DIR``, else
``$AIRFLOW_HOME/segprovider_docs``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow_segprovider.operators.gate import docs_root, run_folder

#: What each gate task writes (:mod:`airflow_segprovider.gates.runner`'s ``GATE_RESULT_FILE``; not imported,
#: so the API server never imports Great Expectations).
GATE_RESULT_FILE = "gate_result.json"
#: Most gate results one answer returns (newest first).
GATE_LIMIT = 500


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def gate_results(dag_id: str, run_id: str | None = None) -> list[dict[str, Any]]:
    """The DAG's gate results, newest first: each with its run, task, verdict, statistics and failures.

    :param run_id: only this run's (the run id as the gate task wrote its folder name).
    """
    folder = docs_root() / dag_id
    if not folder.is_dir() or not _inside(folder, docs_root()):
        return []
    pattern = f"{run_folder(run_id)}/*/{GATE_RESULT_FILE}" if run_id else f"*/*/{GATE_RESULT_FILE}"
    paths = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)[:GATE_LIMIT]
    results = []
    for path in paths:
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        task_dir = path.parent
        has_docs = (task_dir / "index.html").is_file()
        results.append({
            "run": task_dir.parent.name, "task_id": task_dir.name, "gate": result.get("gate"),
            "as_of": result.get("as_of"), "success": bool(result.get("success")), "rows": result.get("rows"),
            "statistics": result.get("statistics") or {},
            "failed": [{"expectation": f.get("expectation_type"), "column": f.get("column"),
                        "observed_value": f.get("observed_value"), "unexpected_count": f.get("unexpected_count"),
                        "thresholds": f.get("kwargs"), "batch": f.get("batch"), "notes": f.get("notes")}
                       for f in result.get("failed") or []],
            "written_at": path.stat().st_mtime,
            "docs": f"{task_dir.parent.name}/{task_dir.name}/index.html" if has_docs else None,
        })
    return results


def docs_file(dag_id: str, relative: str) -> Path | None:
    """A file of the DAG's Data Docs, or None when it is missing or outside the DAG's docs folder.

    Both the DAG's folder and the file must lie inside the docs root: a ``dag_id`` of ``..`` (which an auth
    manager granting every DAG would let through) must not reach ``$AIRFLOW_HOME/airflow.cfg``.
    """
    if dag_id in ("", ".", "..") or "/" in dag_id:
        return None
    root = docs_root()
    folder = root / dag_id
    path = folder / relative
    if not _inside(folder, root) or not _inside(path, folder) or not path.is_file():
        return None
    return path

"""A gate task's log: the gate's own lines (what it checked, what it found, pass or fail), none of GX's chatter.

GX talks while it is imported (214 "Skipping registering function ..." lines, metric re-declarations,
alembic's plugin set-up) and while it builds a context ("Loading 'datasources' ..."). Import-time lines
come once per interpreter, so each case runs in a fresh one, as a gate task does on a real scheduler.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from airflow_segprovider.example import EXAMPLE_PROJECT

#: What a gate task logs at INFO: every logger, as Airflow's task log handler sees them.
CAPTURE = textwrap.dedent("""
    import io, json, logging, sys
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
""")

GX_CHATTER = ("Skipping registering", "Multiple declarations of metric", "setup plugin", "Loading 'datasources'")


def _run(script: str, **env: str) -> str:
    import os

    # INFO, Airflow's default task log level (the test session runs at WARNING)
    env = {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO", **env}
    out = subprocess.run([sys.executable, "-c", CAPTURE + textwrap.dedent(script)], capture_output=True, text=True, check=False,
                         timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr  # the operator's own lines go through Airflow's structlog, to stderr


def _assert_no_gx_chatter(log: str) -> None:
    noisy = [line for line in log.splitlines() if line.startswith("great_expectations") or
             "[great_expectations" in line or any(chatter in line for chatter in GX_CHATTER)]
    assert noisy == [], f"{len(noisy)} lines of GX chatter, first: {noisy[:3]}"


def test_the_runner_logs_none_of_gxs_chatter(tmp_path):
    log = _run(f"""
        import pandas as pd
        from airflow_segprovider.gates import run_gate
        frame = pd.DataFrame({{"kind": "data", "table_name": ["customers", "events"], "timestamp_column": "ts",
                              "source": None, "row_count": 10, "newest": pd.Timestamp("2026-11-23"),
                              "age_hours": pd.array([1.0, 72.0], dtype="Float64")}})
        result = run_gate("freshness", frame, {{"max_age_hours": 24}}, docs_dir={str(tmp_path / "docs")!r})
        logging.getLogger("airflow.task").info("%s", result.summary())
        print(stream.getvalue())
    """)
    _assert_no_gx_chatter(log)
    assert "gate freshness failed: 1 of 3 expectations failed on 2 rows" in log
    assert "observed: kind=data table_name=events" in log and "age_hours=72" in log


@pytest.mark.parametrize("gate", ["freshness", "segment_size"])
def test_a_gate_task_logs_its_summary_and_none_of_gxs_chatter(gate, evaluated_db, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(evaluated_db, warehouse)
    log = _run(f"""
        from airflow_segprovider.operators.gate import SegmentsGateOperator

        class TaskInstance:
            def xcom_push(self, key, value):
                pass

        operator = SegmentsGateOperator(task_id="gate_{gate}", gate="{gate}", project_path={str(EXAMPLE_PROJECT)!r},
                                        as_of="2026-11-24", docs_dir={str(tmp_path / "docs")!r})
        summary = operator.execute({{"ti": TaskInstance(), "run_id": "manual__1"}})
        print(stream.getvalue())
    """, AIRFLOW_CONN_SEGPROVIDER_WAREHOUSE=json.dumps({"conn_type": "duckdb", "host": str(warehouse)}))
    _assert_no_gx_chatter(log)
    assert f"gate {gate} at 2026-11-24T00:00:00 passed: " in log

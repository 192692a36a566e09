"""A gate operator is cheap to name in a DAG file; Great Expectations comes in with the task that runs it, quietly."""

from __future__ import annotations

import logging
import subprocess
import sys

HEAVY = ("great_expectations", "pandas", "pyarrow", "duckdb", "sqlglot", "scipy", "sqlalchemy")


def _loaded(code: str) -> list[str]:
    script = f"import sys\n{code}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    return [name for name in out.stdout.strip().split(",") if name]


def test_naming_a_gate_operator_loads_nothing_airflow_does_not_load():
    airflow = set(_loaded("import airflow.sdk"))  # Airflow's own models bring SQLAlchemy
    assert set(_loaded("from airflow_segprovider.operators.gate import SegmentsGateOperator")) == airflow
    assert "great_expectations" not in airflow and "pandas" not in airflow


def test_the_gate_modules_load_no_data_library_until_a_gate_runs():
    code = ("import airflow_segprovider.gates, airflow_segprovider.gates.evaluation, airflow_segprovider.gates.runner, "
            "airflow_segprovider.gates.hub, airflow_segprovider.gates.gx")
    assert _loaded(code) == []


def test_gx_logs_stay_as_a_logging_configuration_set_them():
    from airflow_segprovider.gates.gx import quiet_gx_logs

    logger = logging.getLogger("great_expectations")
    before = logger.level
    try:
        logger.setLevel(logging.DEBUG)  # someone debugging GX asked for everything
        quiet_gx_logs()
        assert logger.level == logging.DEBUG
        logger.setLevel(logging.NOTSET)
        quiet_gx_logs()
        assert logger.level == logging.WARNING
    finally:
        logger.setLevel(before)

"""run_gate on hand-built frames: suites, parameters, results, failure summaries, Data Docs."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pandas as pd
import pytest

from airflow_segprovider.gates import (
    GATES,
    GateBatch,
    GateConfigError,
    GateFailed,
    GateResult,
    load_suite,
    run_gate,
    run_gate_batches,
)
from airflow_segprovider.gates.suites import default_suite_dir, suite_parameters


def test_importing_the_package_loads_neither_gx_nor_airflow():
    code = ("import sys, airflow_segprovider.gates; "
            "print(sorted(m for m in ('great_expectations', 'airflow', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("gate", GATES)
def test_every_suite_is_documented(gate):
    suite = load_suite(gate)
    assert suite["name"] == gate
    assert suite["meta"]["notes"] and suite["meta"]["row_key"]
    for expectation in suite["expectations"]:
        assert expectation["meta"]["notes"], f"{gate}: {expectation['type']} says nothing of what it protects"
    used = {kw["$PARAMETER"] for e in suite["expectations"] for kw in e["kwargs"].values() if isinstance(kw, dict)}
    assert used == set(suite_parameters(suite)), "every parameter is declared with a default, and used"


def test_suites_are_found_outside_the_repository_root(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert (default_suite_dir() / "freshness.json").is_file()


def frame(ages):
    return pd.DataFrame({"kind": "data", "table_name": [f"t{i}" for i in range(len(ages))],
                         "timestamp_column": "ts", "source": None, "row_count": 10,
                         "newest": pd.Timestamp("2026-11-23"), "age_hours": pd.array(ages, dtype="Float64")})


def test_passing_gate():
    result = run_gate("freshness", frame([1.0, 2.5]), {"max_age_hours": 24})
    assert result.success
    assert result.statistics["evaluated_expectations"] == 3
    assert result.rows == 2
    assert result.parameters == {"freshness": {"max_age_hours": 24}}
    assert result.summary() == "gate freshness passed: 3 expectations held on 2 rows"


def test_failing_gate_names_expectation_threshold_and_observed_row():
    result = run_gate("freshness", frame([1.0, 72.0]), {"max_age_hours": 24})
    assert not result.success
    [failure] = result.failed
    assert failure.expectation_type == "expect_column_values_to_be_between"
    assert failure.column == "age_hours"
    assert failure.kwargs["max_value"] == 24
    assert (failure.unexpected_count, failure.element_count) == (1, 2)
    assert failure.unexpected_values == [72.0]
    assert failure.unexpected_rows == [{"kind": "data", "table_name": "t1", "timestamp_column": "ts",
                                        "age_hours": 72.0, "newest": "2026-11-23T00:00:00"}]
    summary = result.summary()
    assert "expect_column_values_to_be_between on age_hours (max_value=24)" in summary
    assert "table_name=t1" in summary and "age_hours=72" in summary
    assert "protects against: A stalled load" in summary


def test_aggregate_expectation_reports_its_observed_value():
    result = run_gate("freshness", frame([]))
    [failure] = result.failed
    assert failure.expectation_type == "expect_table_row_count_to_be_between"
    assert failure.observed_value == 0
    assert "observed value: 0" in result.summary()


def test_defaults_come_from_the_suite():
    assert run_gate("freshness", frame([47.0])).success
    assert not run_gate("freshness", frame([49.0])).success


def test_unknown_parameter_is_refused():
    with pytest.raises(GateConfigError, match="no parameter 'max_age'.*max_age_hours"):
        run_gate("freshness", frame([1.0]), {"max_age": 3})


def test_templated_text_thresholds_are_read_as_numbers():
    assert not run_gate("freshness", frame([30.0]), {"max_age_hours": "24"}).success
    with pytest.raises(GateConfigError, match="'max_age_hours' must be a number or null, got 'a day'"):
        run_gate("freshness", frame([1.0]), {"max_age_hours": "a day"})


def test_unknown_gate_and_missing_suite(tmp_path):
    with pytest.raises(GateConfigError, match="unknown gate 'fresh'"):
        run_gate("fresh", frame([1.0]))
    with pytest.raises(GateConfigError, match="no expectation suite for gate 'freshness'"):
        run_gate("freshness", frame([1.0]), suite_dir=tmp_path)


def test_missing_column_is_a_failure_with_the_reason():
    result = run_gate("freshness", frame([1.0]).drop(columns=["age_hours"]))
    assert not result.success
    [failure] = [f for f in result.failed if f.column == "age_hours"]
    assert failure.exception and "age_hours" in failure.exception
    assert "could not be evaluated" in result.summary()


def test_result_is_json_for_xcom_and_the_exception_pickles():
    result = run_gate("freshness", frame([1.0, 72.0]), {"max_age_hours": 24})
    data = json.loads(json.dumps(result.to_dict()))
    assert GateResult.from_dict(data).summary() == result.summary()
    error = pickle.loads(pickle.dumps(GateFailed(result)))
    assert isinstance(error, GateFailed)
    assert error.gate == "freshness" and not error.result.success and error.retryable is False
    assert str(error) == result.summary()


def test_data_docs_and_validation_results_are_written(tmp_path):
    docs = tmp_path / "docs"
    result = run_gate("freshness", frame([1.0, 72.0]), {"max_age_hours": 24}, docs_dir=docs)
    assert (docs / "index.html").is_file()
    assert list((docs / "validations").rglob("*.html")), "a page for the validation run"
    assert result.docs_index == str(docs / "index.html")
    raw = json.loads((docs / "validation_result.json").read_text())
    [validation] = raw["validations"]
    assert validation["parameters"] == {"max_age_hours": 24}
    assert validation["result"]["success"] is False
    assert json.loads((docs / "gate_result.json").read_text())["failed"][0]["column"] == "age_hours"
    assert f"Data Docs: {docs / 'index.html'}" in result.summary()


def test_a_lone_batch_of_a_sync_names_the_sync_in_its_failures():
    sizes = pd.DataFrame({"sync_id": ["vip__hubspot_crm"], "segment": "vip", "arm": None, "destination": "hubspot_crm",
                          "members": pd.array([0], dtype="Int64"), "previous_as_of": pd.Timestamp("2026-11-23"),
                          "previous_members": pd.array([900], dtype="Int64"), "change_fraction": [1.0]})
    result = run_gate_batches("segment_size", [GateBatch("vip__hubspot_crm", sizes, {})])
    assert {failure.batch for failure in result.failed} == {"vip__hubspot_crm"}
    assert run_gate("freshness", frame([72.0])).failed[0].batch is None  # a gate's own batch needs no name

"""The arithmetic of numbers (docs/segments-language.md, "Numbers"), on every warehouse that runs here.

Each value is rounded to 9 decimals and summed exactly, so three purchases of 100/3 sum to
99.999999999; a value out of range (10^15 or more, inf, NaN) reads as missing, every other segment
still evaluates, and the evaluation reports the rows. BigQuery's SQL runs on DuckDB with its NUMERIC
read as what it is in BigQuery, DECIMAL(38, 9) (sqlglot alone would give DuckDB's DECIMAL(18, 3)).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
from typing import TYPE_CHECKING, Any

import pytest

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.evaluate.explain import explain
from airflow_segprovider.core.sql.numbers import check_number
from support.engine_harness import COLUMN_TYPES, write_project
from support.warehouse_matrix import BigQuerySQLOnDuckDB, load_rows, open_warehouse, stored

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

AS_OF = dt.datetime(2026, 3, 15, 12)
DAY_BEFORE = AS_OF - dt.timedelta(days=1)
KINDS = ("duckdb", "postgres", "snowflake", "bigquery_sql")


class BigQueryNumericOnDuckDB(BigQuerySQLOnDuckDB):
    @staticmethod
    def to_duckdb(sql: str) -> str:
        import sqlglot
        from sqlglot import exp

        def numeric(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.DECIMAL and not node.expressions:
                return exp.DataType.build("DECIMAL(38, 9)")
            return node

        statements = sqlglot.parse(sql, read="bigquery", error_level=sqlglot.ErrorLevel.RAISE)
        return ";\n".join(s.transform(numeric).sql(dialect="duckdb") for s in statements if s is not None)


@contextlib.contextmanager
def warehouse_of(kind: str) -> Iterator[Any]:
    if kind == "bigquery_sql":
        warehouse = BigQueryNumericOnDuckDB(":memory:")
        try:
            yield warehouse
        finally:
            warehouse.close()
    else:
        with open_warehouse(kind) as warehouse:
            yield warehouse


def buy(key: str, revenue: float | None) -> dict[str, Any]:
    return {"customer_id": key, "occurred_at": DAY_BEFORE, "event_type": "buy", "revenue": revenue}


SEGMENTS = [
    {"name": "sum_at_least_100", "rule": {"event": "buy", "aggregate": "sum", "property": "revenue", "op": "gte",
                                          "value": 100}},
    {"name": "sum_is_99_999999999", "rule": {"event": "buy", "aggregate": "sum", "property": "revenue", "op": "eq",
                                             "value": 99.999999999}},
    {"name": "avg_is_a_third", "rule": {"event": "buy", "aggregate": "avg", "property": "revenue", "op": "eq",
                                        "value": 33.333333333}},
    {"name": "avg_at_least_5", "rule": {"event": "buy", "aggregate": "avg", "property": "revenue", "op": "gte",
                                        "value": 5}},
    {"name": "avg_missing", "rule": {"event": "buy", "aggregate": "avg", "property": "revenue", "op": "is_null"}},
    {"name": "sum_positive", "rule": {"event": "buy", "aggregate": "sum", "property": "revenue", "op": "gt",
                                      "value": 0}},
    {"name": "max_over_1000", "rule": {"event": "buy", "aggregate": "max", "property": "revenue", "op": "gt",
                                       "value": 1000}},
    {"name": "score_missing", "rule": {"attribute": "score", "op": "is_null"}},
    {"name": "score_high", "rule": {"attribute": "score", "op": "gt", "value": 1000}},
    {"name": "decimal_row", "rule": {"attribute": "score", "op": "eq", "value": 0.3}},
    {"name": "everyone", "rule": {"attribute": "name", "op": "is_not_null"}},
]
TABLES = {
    "customers": [{"customer_id": "third", "name": "x", "score": 0.1 + 0.2},
                  {"customer_id": "huge", "name": "x", "score": 1e30},
                  {"customer_id": "inf", "name": "x", "score": float("inf")},
                  {"customer_id": "big_ok", "name": "x", "score": 123456789.12345679}],
    "events": [buy("third", 100 / 3), buy("third", 100 / 3), buy("third", 100 / 3),
               buy("huge", 1e30), buy("huge", 5.0),
               buy("inf", float("inf")), buy("inf", float("-inf")),
               buy("big_ok", 123456789.12345679)],
}
EXPECTED = {
    "sum_at_least_100": {"big_ok"},  # third: 99.999999999; huge: 5 (its 1e30 is missing)
    "sum_is_99_999999999": {"third"},
    "avg_is_a_third": {"third"},
    "avg_at_least_5": {"third", "huge", "big_ok"},
    "avg_missing": {"inf"},
    "sum_positive": {"third", "huge", "big_ok"},
    "max_over_1000": {"big_ok"},
    "score_missing": {"huge", "inf"},
    "score_high": {"big_ok"},
    "decimal_row": {"third"},  # 0.30000000000000004 rounds to 0.3
    "everyone": {"third", "huge", "inf", "big_ok"},
}

@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    return write_project(tmp_path_factory.mktemp("numbers"), SEGMENTS)


@pytest.mark.parametrize("kind", KINDS)
def test_sums_round_each_value_to_9_decimals_and_out_of_range_values_are_missing(project, kind: str) -> None:
    with warehouse_of(kind) as warehouse:
        load_rows(warehouse, TABLES, COLUMN_TYPES)
        result = evaluate(project, warehouse, AS_OF, run_id="numbers")
        members = stored(warehouse, AS_OF)
        got = {name: set(members.get(name, {})) for name in EXPECTED}
        assert got == EXPECTED
        # the bad rows are reported, not fatal: 1e30 and inf (twice in events) per column
        assert result.out_of_range["customers.score"] == 2
        assert result.out_of_range["events.revenue"] == 3
        assert result.to_dict()["out_of_range"] == result.out_of_range
        shown = explain(project, warehouse, "avg_is_a_third", "third", AS_OF).text()
        assert "[observed avg: 33.333333333]" in shown


@pytest.mark.parametrize("kind", KINDS)
def test_a_nan_reads_as_missing(tmp_path: Path, kind: str) -> None:
    project = write_project(tmp_path / "p", [
        {"name": "score_missing", "rule": {"attribute": "score", "op": "is_null"}},
        {"name": "score_small", "rule": {"attribute": "score", "op": "lt", "value": 1}},
        {"name": "revenue_sum", "rule": {"event": "buy", "aggregate": "sum", "property": "revenue", "op": "eq",
                                         "value": 2}}])
    tables = {"customers": [{"customer_id": "nan", "score": float("nan")}, {"customer_id": "one", "score": 0.5}],
              "events": [buy("nan", float("nan")), buy("nan", 2.0)]}
    with warehouse_of(kind) as warehouse:
        load_rows(warehouse, tables, COLUMN_TYPES)
        evaluate(project, warehouse, AS_OF, run_id="nan")
        members = stored(warehouse, AS_OF)
    assert set(members["score_missing"]) == {"nan"}
    assert set(members["score_small"]) == {"one"}
    assert set(members["revenue_sum"]) == {"nan"}


@pytest.mark.parametrize("value", [0, 1, -2.5, 0.3, 99.999999999, 999_999_999_999_999, 1e-9])
def test_rule_numbers_in_range_are_exact_decimals(value: float) -> None:
    assert check_number(value) == decimal.Decimal(repr(value) if isinstance(value, float) else value)

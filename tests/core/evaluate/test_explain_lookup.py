"""``explain`` reads one customer by key and checks its sources itself.

The key is compared with each table's column as stored (an integer key as an integer): a cast of the
column to text keeps DuckDB from pushing the filter into the scan and pruning row groups by their
min/max (https://duckdb.org/docs/stable/guides/performance/indexing#zonemaps), which made the
insights customer lookup read every event of every customer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from airflow_segprovider.core.errors import TerminalEvaluationError
from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.evaluate.explain import explain
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.state.membership import MembershipStore
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.example.generate import generate

DAY = dt.datetime(2026, 11, 23)


class RecordingWarehouse(DuckDBWarehouse):
    """A real DuckDB warehouse that keeps the SQL of each query it answers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.statements: list[str] = []

    def query_records(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self.statements.append(sql)
        return super().query_records(sql, parameters)


@pytest.fixture(scope="module")
def warehouse() -> RecordingWarehouse:
    opened = RecordingWarehouse(":memory:")
    generate(opened, 1_000)
    evaluate(load_project(EXAMPLE_PROJECT), opened, DAY)
    yield opened
    opened.close()


def test_an_integer_key_is_compared_as_an_integer_in_every_table(warehouse: RecordingWarehouse) -> None:
    project = load_project(EXAMPLE_PROJECT)
    member = min(MembershipStore(warehouse).members("vip", DAY), key=int)
    warehouse.statements.clear()

    found = explain(project, warehouse, "vip", member, DAY)

    assert found.member is True
    sql = warehouse.statements[-1]
    assert f'"customer_id" IN ({int(member)})' in sql
    assert "CAST(\"customer_id\"" not in sql and "CAST(\"c\".\"customer_id\"" not in sql


def test_a_key_that_cannot_be_an_integer_is_refused_saying_why(warehouse: RecordingWarehouse) -> None:
    with pytest.raises(TerminalEvaluationError, match=r"customer 'x1' not found in customers.customer_id: its keys "
                                                      r"are integers \(BIGINT\)"):
        explain(load_project(EXAMPLE_PROJECT), warehouse, "vip", "x1", DAY)


def test_a_missing_source_table_is_named_by_explain_itself() -> None:
    project = load_project(EXAMPLE_PROJECT)
    bare = DuckDBWarehouse(":memory:")
    generate(bare, 50)
    bare.execute("DROP TABLE events")
    try:
        with pytest.raises(TerminalEvaluationError, match=r"table '?events'? does not exist in the warehouse"):
            explain(project, bare, "win_back", "1", DAY)  # win_back reads email opens (and churned: purchases)
    finally:
        bare.close()

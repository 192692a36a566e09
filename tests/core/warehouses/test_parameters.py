"""Bound parameters: ``query(sql, parameters)`` keeps request values out of the SQL text, on every adapter.

The insights plugin passes a segment name or a customer key from a request this way; a value carrying
SQL must be read as data (matched literally, never executed).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse, duckdb_parameters

HOSTILE = "vip'; DROP TABLE people; --"


def _postgres() -> Iterator[Any]:
    from support.postgres import postgres_warehouse

    try:
        with postgres_warehouse() as warehouse:
            yield warehouse
    except Exception as exc:  # the server is started by .ci/run; say so rather than fail obscurely
        if "connection" in str(exc).lower() and "refused" in str(exc).lower():
            pytest.skip(f"PostgreSQL is not running: {exc}")
        raise


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "duckdb":
        duck = DuckDBWarehouse(":memory:")
        yield duck
        duck.close()
    else:
        yield from _postgres()


@pytest.fixture
def people(warehouse: Any) -> Any:
    warehouse.execute("CREATE TABLE people (name VARCHAR, segment VARCHAR, score INTEGER)")
    warehouse.execute("INSERT INTO people VALUES ('ann', 'vip', 3), ('bob', 'vip', 5), ('cy', 'churn', 7), "
                      f"('dee', '{HOSTILE.replace(chr(39), chr(39) * 2)}', 9)")
    return warehouse


def test_values_are_bound_by_name(people: Any) -> None:
    rows = people.query("SELECT name FROM people WHERE segment = %(segment)s AND score >= %(low)s ORDER BY name",
                        {"segment": "vip", "low": 4})
    records = people.query_records("SELECT name, score FROM people WHERE segment = %(segment)s ORDER BY name",
                                   {"segment": "churn"})

    assert rows == [("bob",)]
    assert records == [{"name": "cy", "score": 7}]


def test_a_value_carrying_sql_is_data(people: Any) -> None:
    rows = people.query("SELECT name FROM people WHERE segment = %(segment)s", {"segment": HOSTILE})
    none = people.query("SELECT COUNT(*) FROM people WHERE segment = %(segment)s", {"segment": "x' OR '1'='1"})

    assert rows == [("dee",)]  # matched literally, quotes and all
    assert none == [(0,)]
    assert people.query("SELECT COUNT(*) FROM people") == [(4,)]  # nothing was dropped


def test_a_literal_percent_is_doubled_with_parameters_and_left_alone_without(people: Any) -> None:
    with_parameters = people.query("SELECT COUNT(*) FROM people WHERE name LIKE 'a%%' AND score > %(low)s",
                                   {"low": 0})
    without = people.query("SELECT COUNT(*) FROM people WHERE name LIKE 'a%'")

    assert with_parameters == [(1,)] and without == [(1,)]


def test_duckdb_rewrites_pyformat_to_named_placeholders_and_passes_only_what_is_used() -> None:
    text, values = duckdb_parameters("SELECT %(a)s, '%%', %(a)s, %(b)s", {"a": 1, "b": "x", "unused": 2})

    assert text == "SELECT $a, '%', $a, $b"
    assert values == {"a": 1, "b": "x"}
    with pytest.raises(KeyError):
        duckdb_parameters("SELECT %(missing)s", {})

"""Incremental evaluation equals a full one, day after random day, in the BigQuery SQL the core
writes (each statement parsed as BigQuery, run transpiled onto DuckDB: ``BigQuerySQLOnDuckDB``): see
:mod:`support.incremental_differential`.

What only a BigQuery server could show it cannot: which statements BigQuery accepts inside a
transaction (DDL on permanent tables is refused there), quotas, sessions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from support.incremental_differential import SETTINGS, run_case


@settings(max_examples=3, **SETTINGS)
@given(data=st.data())
def test_incremental_equals_full_on_bigquery_sql(data: st.DataObject) -> None:
    run_case("bigquery_sql", data)

"""Incremental evaluation equals a full one, day after random day, on Snowflake as fakesnow emulates it
(on DuckDB): see :mod:`support.incremental_differential`.

Snowflake runs no DDL inside a transaction: "Executing a DDL statement within an open transaction
commits the open transaction, then executes the DDL statement and commits it. CTAS statements are
treated as DDL" (https://docs.snowflake.com/en/sql-reference/transactions, "DDL"). fakesnow does not
apply that rule to a connection in autocommit mode with an explicit ``BEGIN`` (how
:class:`SnowflakeWarehouse` runs transactions): it runs the DDL inside its DuckDB transaction, and fails
on ``CREATE TEMPORARY TABLE ... AS SELECT`` there, whose bookkeeping writes to a second DuckDB
database ("a single transaction can only write to a single attached database"). The warehouses here
refuse any DDL inside a transaction (``support.incremental_differential.SnowflakeTransactionRules``), so the
test fails as soon as an evaluation would lose its atomicity on Snowflake, and not only where
fakesnow happens to trip.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from support.incremental_differential import SETTINGS, run_case


@settings(max_examples=3, **SETTINGS)
@given(data=st.data())
def test_incremental_equals_full_on_snowflake(data: st.DataObject) -> None:
    run_case("snowflake", data)

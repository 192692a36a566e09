"""PostgreSQL: a customer attribute under a case-insensitive (nondeterministic ICU) collation.

The language compares text by code point whatever the column's collation, and a full evaluation does
(``dialects.byte_order``). An incremental run finds changed attributes by comparing them with the state's
copy, which keeps the column's collation: under it 'apple' and 'Apple' were equal, the customer was not
touched and kept its old membership. See https://www.postgresql.org/docs/current/collation.html
("Nondeterministic Collations").
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.warehouses.postgres import PostgresWarehouse
from support.engine_harness import write_project
from support.postgres import pg_connect, postgres_schema
from support.warehouse_matrix import stored

T1 = dt.datetime(2026, 3, 10, 6, 30)
MODEL: dict[str, Any] = {"customer": {"table": "customers", "key": "customer_id",
                                      "attributes": {"name": {"type": "string"}}}}
SEGMENTS: list[dict[str, Any]] = [{"name": "apple", "rule": {"attribute": "name", "op": "eq", "value": "Apple"}}]


def test_a_case_only_change_under_a_case_insensitive_collation_is_seen(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", SEGMENTS, model=MODEL)
    with postgres_schema() as schema:
        warehouse = PostgresWarehouse(pg_connect(), schema=schema)
        try:
            with warehouse.transaction():
                warehouse.execute(f"CREATE COLLATION \"{schema}\".ci "
                                  "(provider = icu, locale = 'und-u-ks-level2', deterministic = false)")
                warehouse.execute(f'CREATE TABLE "{schema}".customers (customer_id INTEGER, '
                                  f'name VARCHAR COLLATE "{schema}".ci)')
                warehouse.execute(f"INSERT INTO \"{schema}\".customers SELECT i, CASE WHEN i = 7 THEN 'apple' "
                                  "ELSE 'n' || i END FROM generate_series(1, 100) AS t(i)")
            evaluate(project, warehouse, T1)
            assert "apple" not in stored(warehouse, T1)
            with warehouse.transaction():
                warehouse.execute(f"UPDATE \"{schema}\".customers SET name = 'Apple' WHERE customer_id = 7")
            result = evaluate(project, warehouse, T1 + dt.timedelta(days=1))
            assert result.mode == "incremental", result.reason
            assert stored(warehouse, T1 + dt.timedelta(days=1)) == {"apple": {"7": None}}
        finally:
            warehouse.close()

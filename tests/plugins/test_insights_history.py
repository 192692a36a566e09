"""The customer lookup's history, read by key from the indexed copy of the changes, is every snapshot that
holds the customer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.state.insights import CUSTOMER_CHANGES
from airflow_segprovider.core.state.membership import CHANGES, MEMBERSHIPS, SNAPSHOTS
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.example.generate import generate
from airflow_segprovider.plugins.insights import queries

#: a later segment's first snapshot after the others', and a day evaluated out of order (a backfill)
DAYS = [dt.datetime(2026, 11, 19), dt.datetime(2026, 11, 21), dt.datetime(2026, 11, 23), dt.datetime(2026, 11, 20)]


def test_each_customers_periods_cover_exactly_the_snapshots_that_hold_them(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    project = load_project(EXAMPLE_PROJECT)
    writer = DuckDBWarehouse(str(path))
    generate(writer, 800)
    evaluate(project, writer, DAYS[0], run_id="d0", segments=["vip", "at_risk"])
    for n, day in enumerate(DAYS[1:], 1):
        evaluate(project, writer, day, run_id=f"d{n}")
    writer.close()
    warehouse = DuckDBWarehouse(str(path), connection=duckdb.connect(str(path), read_only=True), schema="main")
    try:
        dates: dict[str, list[dt.datetime]] = {}
        for segment, as_of in warehouse.query(f"SELECT segment, as_of FROM {SNAPSHOTS} ORDER BY as_of"):
            dates.setdefault(segment, []).append(as_of)
        held: dict[str, set[tuple[str, str, str | None]]] = {}
        for segment, key, as_of, arm in warehouse.query(f"SELECT segment, customer_key, as_of, arm FROM {MEMBERSHIPS}"):
            held.setdefault(key, set()).add((segment, as_of.isoformat(), arm))
        # the copy the lookup reads is the store's changes, the backfill's rewritten diff included
        columns = "customer_key, segment, change, arm, as_of"
        assert sorted(warehouse.query(f"SELECT {columns} FROM {CUSTOMER_CHANGES}")) == sorted(
            warehouse.query(f"SELECT {columns} FROM {CHANGES}"))
        # ...and DuckDB answers one customer's rows through the ART index on the key, not a scan of every change
        # (https://duckdb.org/docs/stable/sql/indexes: point queries on an indexed column use an index scan)
        plan = warehouse.query(f"EXPLAIN ANALYZE SELECT segment FROM {CUSTOMER_CHANGES} "
                               "WHERE customer_key = '17'")[0][1]
        assert "Type: Index Scan" in plan, plan
        customers = sorted(held)[:150] + ["no-such-customer"]
        assert len(customers) > 100

        for customer in customers:
            periods = queries.customer_history(warehouse, customer)["memberships"]
            covered = {(p["segment"], at.isoformat(), p["arm"]) for p in periods for at in dates[p["segment"]]
                       if p["since"] <= at.isoformat() and (p["until"] is None or at.isoformat() < p["until"])}
            assert covered == held.get(customer, set()), customer
    finally:
        warehouse.close()

"""The overlap matrix read from the packed store equals the one joined from the membership view, and is cached
per snapshot."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.example.generate import generate
from airflow_segprovider.plugins.insights import queries

DAY = dt.datetime(2026, 11, 20)


def _read_only(path: Path) -> DuckDBWarehouse:
    return DuckDBWarehouse(str(path), connection=duckdb.connect(str(path), read_only=True), schema="main")


def test_the_packed_overlap_equals_the_joined_one_and_a_new_evaluation_is_not_answered_from_the_cache(
        tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    project = load_project(EXAMPLE_PROJECT)
    warehouse = DuckDBWarehouse(str(path))
    generate(warehouse, 1_500)
    evaluate(project, warehouse, DAY, run_id="first")
    warehouse.close()

    reader = _read_only(path)
    try:
        slots = queries._snapshot_writes(reader, DAY)
        packed = queries._shared_packed(reader, DAY, slots)
        assert packed and packed == queries._shared_rows(reader, DAY)
        first = queries.overlap(reader, DAY)
        assert queries.overlap(reader, DAY) == first
    finally:
        reader.close()

    # the same as_of evaluated again for part of the segments: a new write, so a new cache key and a fresh answer
    segment = first["segments"][0]
    warehouse = DuckDBWarehouse(str(path))
    warehouse.execute("DELETE FROM customers WHERE customer_id IN (SELECT customer_id FROM customers LIMIT 300)")
    evaluate(project, warehouse, DAY, run_id="again", segments=[segment])
    warehouse.close()
    reader = _read_only(path)
    try:
        again = queries.overlap(reader, DAY)
        shared = queries._shared_rows(reader, DAY)
        assert again["segments"] == sorted({a for a, _ in shared})
        assert again["matrix"] == [[shared.get((a, b), 0) for b in again["segments"]] for a in again["segments"]]
        assert again != first
    finally:
        reader.close()

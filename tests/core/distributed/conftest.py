"""Fixtures for the distributed-model tests; helpers live in ``support.distributed_world``."""

from __future__ import annotations

import pytest

from airflow_segprovider.example.generate import generate
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from segprovider_sandbox import serve

from support.distributed_world import consenting_customers, seed_sandbox


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("distributed")


@pytest.fixture(scope="module")
def warehouse(module_tmp):
    warehouse = DuckDBWarehouse(module_tmp / "warehouse.duckdb")
    generate(warehouse, 400, seed=5)
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="module")
def customers(warehouse) -> dict[str, str]:
    """Customer key -> email of 40 customers who may receive email."""
    return consenting_customers(warehouse, 40)


@pytest.fixture(scope="module")
def sandbox(module_tmp):
    with serve(db_path=module_tmp / "sandbox.db") as running:
        running.systems = seed_sandbox(running)
        yield running

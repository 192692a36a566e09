"""Customer attribute history written by ingest (``model.customer.history: true``): SCD type 2 versions.

Modelled on dbt snapshots (https://docs.getdbt.com/docs/build/snapshots): a changed row closes its
current version (``valid_to``) and opens a new one; an unchanged row writes nothing; a row gone from
the source has its version closed (dbt's ``hard_deletes: invalidate``). Run on DuckDB, PostgreSQL and
Snowflake (fakesnow), each reading its own history back.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from ingest.conftest import PROJECT_YAML

from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.project.spec import Project
from airflow_segprovider.core.state.attributes import BEGINNING, HISTORY_TABLE
from airflow_segprovider.ingest import LOADS_TABLE, TerminalIngestError, ingest_source

D1, D2, D3 = dt.datetime(2026, 3, 1), dt.datetime(2026, 3, 2), dt.datetime(2026, 3, 3)

HEADER = "customer_id,email,ltv,is_vip,birth_date,signup_at\n"
DAY1 = HEADER + "1,a@example.com,10,true,1990-01-02,2026-01-01\n2,b@example.com,20,false,,\n"
DAY2 = HEADER + "1,a@example.com,99,true,1990-01-02,2026-01-01\n2,b@example.com,20,false,,\n"


def history_project(root: Path, mode: str = "upsert") -> Project:
    (root / "landing").mkdir(parents=True, exist_ok=True)
    (root / "project.yml").write_text(PROJECT_YAML.replace("    key: customer_id\n",
                                                           "    key: customer_id\n    history: true\n", 1))
    (root / "sources.yml").write_text(
        "sources:\n  - {name: crm, table: customers, kind: file, format: csv, path: landing/customers*.csv, "
        f"mode: {mode}}}\n")
    return load_project(root)


def versions(warehouse) -> list[tuple]:
    return warehouse.query(f"SELECT customer_key, customer_id, ltv, valid_from, valid_to FROM {HISTORY_TABLE} "
                           "ORDER BY customer_key, valid_from")


def load(project: Project, warehouse, text: str, day: dt.datetime, **kwargs) -> None:
    (Path(project.root) / "landing" / "customers.csv").write_text(text)
    result = ingest_source(project, warehouse, "crm", now=day + dt.timedelta(hours=1), valid_from=day, **kwargs)
    assert result.status == "succeeded"


def test_a_change_closes_the_version_and_opens_a_new_one_and_an_unchanged_row_writes_nothing(
        tmp_path, target) -> None:
    project = history_project(tmp_path / "p")

    load(project, target, DAY1, D1)
    assert versions(target) == [("1", "1", 10.0, BEGINNING, None), ("2", "2", 20.0, BEGINNING, None)]

    load(project, target, DAY2, D2)
    load(project, target, DAY2, D3)  # nothing changed: no version written

    assert versions(target) == [("1", "1", 10.0, BEGINNING, D2), ("1", "1", 99.0, D2, None),
                                ("2", "2", 20.0, BEGINNING, None)]
    assert target.query(f"SELECT COUNT(DISTINCT load_id) FROM {HISTORY_TABLE}")[0][0] == 2


def test_a_null_is_a_value_like_any_other(tmp_path, warehouse) -> None:
    project = history_project(tmp_path / "p")
    load(project, warehouse, DAY1, D1)
    load(project, warehouse, HEADER + "1,a@example.com,,true,1990-01-02,2026-01-01\n2,b@example.com,20,false,,\n",
         D2)
    load(project, warehouse, HEADER + "1,a@example.com,,true,1990-01-02,2026-01-01\n2,b@example.com,20,false,,\n",
         D3)  # NULL again: unchanged (compared NULL-safe), no new version

    assert versions(warehouse) == [("1", "1", 10.0, BEGINNING, D2), ("1", "1", None, D2, None),
                                   ("2", "2", 20.0, BEGINNING, None)]


def test_a_customer_left_out_of_a_replace_load_has_its_version_closed_and_a_new_one_starts_later(
        tmp_path, warehouse) -> None:
    project = history_project(tmp_path / "p", mode="replace")
    load(project, warehouse, DAY1, D1)
    load(project, warehouse, HEADER + "1,a@example.com,10,true,1990-01-02,2026-01-01\n", D2, allow_shrink=True)
    load(project, warehouse, DAY1, D3)

    assert versions(warehouse) == [("1", "1", 10.0, BEGINNING, None), ("2", "2", 20.0, BEGINNING, D2),
                                   ("2", "2", 20.0, D3, None)]


def test_a_failed_load_leaves_the_history_as_it_was(tmp_path, warehouse) -> None:
    project = history_project(tmp_path / "p")
    load(project, warehouse, DAY1, D1)
    before = versions(warehouse)
    # the ledger row, written after the versions in the same transaction, cannot be written: the load fails
    # after its versions were written, and its transaction takes them back
    warehouse.execute(f"ALTER TABLE {LOADS_TABLE} RENAME TO ledger_kept")
    warehouse.execute(f"CREATE VIEW {LOADS_TABLE} AS SELECT * FROM ledger_kept")
    (Path(project.root) / "landing" / "customers.csv").write_text(DAY2)

    with pytest.raises(TerminalIngestError):
        ingest_source(project, warehouse, "crm", now=D2, valid_from=D2)

    assert versions(warehouse) == before
    assert warehouse.query("SELECT ltv FROM customers ORDER BY customer_id") == [(10.0,), (20.0,)]


def test_a_backfill_load_dated_before_the_latest_change_writes_from_its_own_start(tmp_path, warehouse) -> None:
    project = history_project(tmp_path / "p")
    load(project, warehouse, DAY1, D1)
    load(project, warehouse, DAY2, D3)
    (Path(project.root) / "landing" / "customers.csv").write_text(
        HEADER + "1,a@example.com,5,true,1990-01-02,2026-01-01\n2,b@example.com,20,false,,\n")
    started = D3 + dt.timedelta(days=2)

    ingest_source(project, warehouse, "crm", now=started, valid_from=D2)  # a backfill run's as_of

    assert versions(warehouse)[:3] == [("1", "1", 10.0, BEGINNING, D3), ("1", "1", 99.0, D3, started),
                                       ("1", "1", 5.0, started, None)]


def test_an_attribute_added_to_the_model_is_added_to_the_history(tmp_path, warehouse) -> None:
    root = tmp_path / "p"
    history_project(root)
    project_yml = (root / "project.yml").read_text()
    (root / "project.yml").write_text(project_yml.replace("      signup_at: {type: timestamp}\n", ""))
    load(load_project(root), warehouse, DAY1, D1)
    assert "signup_at" not in {c.lower() for c in warehouse.columns(HISTORY_TABLE)}

    (root / "project.yml").write_text(project_yml)
    load(load_project(root), warehouse, DAY1, D2)

    assert warehouse.query(f"SELECT customer_id, signup_at, valid_from, valid_to FROM {HISTORY_TABLE} "
                           "ORDER BY customer_id, valid_from") == [
        ("1", None, BEGINNING, D2), ("1", dt.datetime(2026, 1, 1), D2, None),  # its past is unknown: NULL
        ("2", None, BEGINNING, None)]  # NULL before and after: unchanged


def test_history_true_without_a_source_of_the_customer_table_is_refused_naming_the_field(tmp_path) -> None:
    from airflow_segprovider.core.errors import ProjectValidationError

    root = tmp_path / "p"
    root.mkdir()
    (root / "project.yml").write_text(PROJECT_YAML.replace("    key: customer_id\n",
                                                           "    key: customer_id\n    history: true\n", 1))
    with pytest.raises(ProjectValidationError) as error:
        load_project(root)

    assert "SEG087" in str(error.value) and "model.customer.history" in str(error.value)


def test_the_ingest_operator_dates_the_versions_at_its_runs_as_of(tmp_path) -> None:
    import contextlib

    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.operators.ingest import SegmentsIngestOperator

    path = tmp_path / "operator.duckdb"

    class LocalIngest(SegmentsIngestOperator):
        @contextlib.contextmanager
        def warehouse(self):
            warehouse = DuckDBWarehouse(path)
            try:
                yield warehouse
            finally:
                warehouse.close()

    project = history_project(tmp_path / "p")
    for text, as_of in ((DAY1, "2026-03-01T00:00:00Z"), (DAY2, "2026-03-02T00:00:00+00:00")):
        (Path(project.root) / "landing" / "customers.csv").write_text(text)
        LocalIngest(task_id="load", project_path=project.root, source="crm", as_of=as_of).execute({})

    warehouse = DuckDBWarehouse(path)
    try:
        assert versions(warehouse) == [("1", "1", 10.0, BEGINNING, D2), ("1", "1", 99.0, D2, None),
                                       ("2", "2", 20.0, BEGINNING, None)]
    finally:
        warehouse.close()

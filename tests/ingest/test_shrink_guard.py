"""Empty-source guard: a `replace` source that comes back empty or sharply shrunken is refused.

The refusal rolls the load back (the table keeps its rows) unless the source allows it
(``allow_empty``, ``max_shrink_fraction``) or the run does (``allow_shrink``). Shown on DuckDB, the
real PostgreSQL server and Snowflake as fakesnow emulates it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from airflow_segprovider.ingest import TerminalIngestError, ingest_all, ingest_source

NOW = dt.datetime(2026, 3, 1, 12, 0)

CUSTOMERS_HEADER = "customer_id,email,ltv\n"
REPLACE_SOURCE = """\
sources:
  - {name: crm_snapshot, table: customers, kind: file, format: csv, path: landing/customers.csv, mode: replace%s}
"""


def write_customers(project_dir: Path, count: int) -> None:
    rows = "".join(f"{n},c{n}@example.com,{n}\n" for n in range(1, count + 1))
    (project_dir / "landing" / "customers.csv").write_text(CUSTOMERS_HEADER + rows)


def customer_count(warehouse) -> int:
    return warehouse.query("SELECT count(*) FROM customers")[0][0]


def ledger_statuses(warehouse, source: str) -> list[str]:
    return [row[0] for row in warehouse.query(
        f"SELECT status FROM segprovider_source_loads WHERE source = '{source}' ORDER BY finished_at")]



def test_an_empty_replace_source_is_refused_and_the_table_keeps_its_rows(make_project, project_dir, target) -> None:
    project = make_project(REPLACE_SOURCE % "")
    write_customers(project_dir, 4)
    ingest_source(project, target, "crm_snapshot", now=NOW)
    write_customers(project_dir, 0)  # the export came back with its header only

    with pytest.raises(TerminalIngestError) as refused:
        ingest_source(project, target, "crm_snapshot", now=NOW + dt.timedelta(days=1))

    message = str(refused.value)
    assert refused.value.source == "crm_snapshot"
    assert "crm_snapshot" in message and "4 rows" in message and "0 rows" in message
    assert "allow_shrink" in message and "--allow-shrink" in message and "allow_empty" in message
    assert customer_count(target) == 4
    assert ledger_statuses(target, "crm_snapshot") == ["succeeded", "failed"]
    assert refused.value.result is not None and refused.value.result.status == "failed"


def test_a_replace_source_shrinking_by_more_than_its_fraction_is_refused_unless_allowed(
        make_project, project_dir, target) -> None:
    project = make_project(REPLACE_SOURCE % "")
    write_customers(project_dir, 10)
    ingest_source(project, target, "crm_snapshot", now=NOW)
    write_customers(project_dir, 4)  # 60% fewer rows; the default max_shrink_fraction is 0.5

    with pytest.raises(TerminalIngestError, match=r"10 rows.*4 rows"):
        ingest_source(project, target, "crm_snapshot", now=NOW + dt.timedelta(days=1))
    assert customer_count(target) == 10

    allowed = ingest_source(project, target, "crm_snapshot", now=NOW + dt.timedelta(days=2), allow_shrink=True)

    assert (allowed.status, allowed.rows_loaded) == ("succeeded", 4)
    assert customer_count(target) == 4
    write_customers(project_dir, 2)  # exactly half: within the fraction
    assert ingest_source(project, target, "crm_snapshot", now=NOW + dt.timedelta(days=3)).rows_loaded == 2


def test_the_source_settings_allow_an_empty_or_deeper_shrinking_export(make_project, project_dir, warehouse) -> None:
    project = make_project(REPLACE_SOURCE % ", max_shrink_fraction: 0.9")
    write_customers(project_dir, 10)
    ingest_source(project, warehouse, "crm_snapshot", now=NOW)
    write_customers(project_dir, 1)
    assert ingest_source(project, warehouse, "crm_snapshot", now=NOW).rows_loaded == 1
    write_customers(project_dir, 0)
    with pytest.raises(TerminalIngestError, match="empty"):  # an empty export needs allow_empty, whatever the fraction
        ingest_source(project, warehouse, "crm_snapshot", now=NOW)

    project = make_project(REPLACE_SOURCE % ", allow_empty: true")

    assert ingest_source(project, warehouse, "crm_snapshot", now=NOW).rows_loaded == 0
    assert customer_count(warehouse) == 0


def test_ingest_all_passes_allow_shrink_and_reports_the_refusal_as_a_failed_load(
        make_project, project_dir, warehouse) -> None:
    project = make_project(REPLACE_SOURCE % "")
    write_customers(project_dir, 3)
    ingest_all(project, warehouse, now=NOW)
    write_customers(project_dir, 0)

    [refused] = ingest_all(project, warehouse, now=NOW)
    [allowed] = ingest_all(project, warehouse, now=NOW, allow_shrink=True)

    assert refused.status == "failed" and "3 rows" in (refused.error or "")
    assert (allowed.status, customer_count(warehouse)) == ("succeeded", 0)




def test_the_command_line_refuses_the_empty_export_and_loads_it_with_allow_shrink(
        make_project, project_dir, tmp_path, capsys) -> None:
    from airflow_segprovider.cli.main import main as segprovider

    make_project(REPLACE_SOURCE % "")
    db = str(tmp_path / "cli.duckdb")
    write_customers(project_dir, 3)
    assert segprovider(["ingest", str(project_dir), "--db", db]) == 0
    write_customers(project_dir, 0)

    refused = segprovider(["ingest", str(project_dir), "--db", db])
    refused_out = capsys.readouterr().out
    allowed = segprovider(["ingest", str(project_dir), "--db", db, "--allow-shrink"])

    assert refused == 1 and "FAILED crm_snapshot" in refused_out and "holds 3 rows" in refused_out
    assert allowed == 0 and "OK     crm_snapshot -> customers (replace): read 0" in capsys.readouterr().out


def test_the_operator_passes_its_templated_allow_shrink(make_project, project_dir, tmp_path) -> None:
    import contextlib

    from airflow.sdk.exceptions import AirflowFailException

    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.operators.ingest import SegmentsIngestOperator

    class LocalIngest(SegmentsIngestOperator):
        @contextlib.contextmanager
        def warehouse(self):
            warehouse = DuckDBWarehouse(tmp_path / "operator.duckdb")
            try:
                yield warehouse
            finally:
                warehouse.close()

    make_project(REPLACE_SOURCE % "")
    write_customers(project_dir, 3)
    LocalIngest(task_id="load", project_path=str(project_dir), source="crm_snapshot").execute({})
    write_customers(project_dir, 0)

    with pytest.raises(AirflowFailException, match="crm_snapshot.*holds 3 rows"):
        LocalIngest(task_id="load", project_path=str(project_dir), source="crm_snapshot").execute({})
    rendered = LocalIngest(task_id="load", project_path=str(project_dir), source="crm_snapshot",
                           allow_shrink="True")  # as "{{ params.allow_shrink }}" renders

    assert "allow_shrink" in SegmentsIngestOperator.template_fields
    assert rendered.execute({})["rows_loaded"] == 0

"""The ``sources:`` section of the project language: parsing, located errors (SEG060-SEG067), the example project."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_segprovider.cli.main import main as segprovider
from airflow_segprovider.core.errors import ProjectValidationError
from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.project.spec import Incremental, Pagination
from airflow_segprovider.core.state.membership import MembershipStore
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.example.generate import generate
from airflow_segprovider.example.landing import write_landing_files
from airflow_segprovider.ingest import ingest_all, last_loads


def test_sources_parse_with_defaults(make_project) -> None:
    project = make_project("""\
sources:
  - {name: crm, table: customers, kind: file, format: csv, path: landing/*.csv}
  - {name: clicks, table: events, kind: file, format: jsonl, path: /data/clicks/*.jsonl}
  - name: api
    table: orders
    kind: rest_api
    url: https://api.example.com/orders
    mode: upsert
    key: [order_id]
    pagination: {style: cursor, page_size: 100}
    incremental: {column: updated_at, param: since}
""")

    crm, clicks, api = project.sources.values()
    assert (crm.mode, crm.key, crm.format) == ("upsert", ("customer_id",), "csv")
    assert (clicks.mode, clicks.key) == ("append", ())
    assert api.pagination == Pagination(style="cursor", page_size=100)
    assert api.incremental == Incremental("updated_at", "since")
    assert api.loc.line == 4
    assert (crm.max_shrink_fraction, crm.allow_empty, crm.future_tolerance) == (0.5, False, dt.timedelta(days=1))


def test_the_ingest_guards_are_set_per_source(make_project) -> None:
    project = make_project("""\
sources:
  - {name: crm, table: customers, kind: file, format: csv, path: x.csv, mode: replace, max_shrink_fraction: 0.9,
     allow_empty: true, future_tolerance: 12h}
""")

    crm = project.sources["crm"]
    assert (crm.max_shrink_fraction, crm.allow_empty, crm.future_tolerance) == (0.9, True, dt.timedelta(hours=12))


def test_a_project_without_sources_has_none(make_project, project_dir) -> None:
    (project_dir / "sources.yml").unlink(missing_ok=True)
    assert load_project(project_dir).sources == {}


@pytest.mark.parametrize(("sources", "code", "message"), [
    ("- {name: a, table: customers, kind: file, format: csv, path: x.csv}\n"
     "- {name: a, table: events, kind: file, format: csv, path: y.csv}", "SEG060", "duplicate source name 'a'"),
    ("- {name: a, table: customer, kind: file, format: csv, path: x.csv}", "SEG061", "did you mean 'customers'"),
    ("- {name: a, table: customers, kind: file, format: csv, path: x.csv, url: /x}", "SEG062",
     "'url' does not apply to a file source"),
    ("- {name: a, table: customers, kind: file, format: parquet, path: x, delimiter: ';'}", "SEG062",
     "'delimiter' applies to csv files only"),
    ("- {name: a, table: customers, kind: warehouse_table}", "SEG062", "exactly one of 'query' and 'from_table'"),
    ("- {name: a, table: events, kind: file, format: csv, path: x, incremental: {column: t}}", "SEG062",
     "'incremental' does not apply to a file source"),
    ("- {name: a, table: customers, kind: file, format: csv, path: x, mode: append}", "SEG063",
     "cannot be loaded in append mode"),
    ("- {name: a, table: orders, kind: file, format: csv, path: x, mode: upsert}", "SEG063", "needs a 'key'"),
    ("- {name: a, table: events, kind: file, format: csv, path: x, key: [id]}", "SEG063", "upsert mode only"),
    ("- {name: a, table: customers, kind: file, format: csv, path: x, key: [email]}", "SEG064",
     "upserted by the model's key 'customer_id'"),
    ("- {name: a, table: customers, kind: rest_api, url: /v1/customers}", "SEG065", "names no connection"),
    ("- {name: a, table: customers, kind: rest_api, url: 'ftp://x/y'}", "SEG065", "not an http(s) URL"),
    ("- {name: a, table: customers, kind: rest_api, url: 'https://x/y', pagination: {style: offset}}", "SEG065",
     "offset pagination needs a page_size"),
    ("- {name: a, table: customers, kind: rest_api, url: 'https://x/y', pagination: {style: link_header, "
     "cursor_path: next}}", "SEG065", "'cursor_path' does not apply to link_header pagination"),
    ("- {name: a, table: customers, kind: rest_api, url: 'https://x/y', incremental: {column: updated_at}}",
     "SEG065", "without 'param'"),
    ("- {name: a, table: orders, kind: warehouse_table, from_table: orders}", "SEG066", "reads the table it loads"),
    ("- {name: a, table: consents, kind: file, format: csv, path: x, mode: replace}\n"
     "- {name: b, table: consents, kind: file, format: csv, path: y}", "SEG067", "which source(s) 'b' also load"),
    ("- {name: a, table: customers, kind: file, format: csv}", "SEG010", "missing required key 'path'"),
    ("- {name: a, table: customers, kind: file, format: csv, path: x, mode: replace, max_shrink_fraction: 1.5}",
     "SEG010", "1.5 is greater than the maximum of 1"),
    ("- {name: a, table: customers, kind: file, format: csv, path: x, allow_empty: true}", "SEG063",
     "'allow_empty' applies to replace mode only"),
    ("- {name: a, table: events, kind: file, format: csv, path: x, max_shrink_fraction: 0.2}", "SEG063",
     "'max_shrink_fraction' applies to replace mode only"),
    ("- {name: a, table: events, kind: file, format: csv, path: x, future_tolerance: soon}", "SEG048",
     "'soon' is not a duration"),
    ("- {name: a, table: customers, kind: rest_api, url: /x, connection_id: c, pagination: {style: pages}}",
     "SEG010", "'pages' is not one of"),
])
def test_bad_source_definitions_are_located_errors(make_project, project_dir, sources, code, message) -> None:
    with pytest.raises(ProjectValidationError) as failure:
        make_project("sources:\n" + "\n".join("  " + line for line in sources.splitlines()) + "\n")

    issues = failure.value.issues
    assert [issue.code for issue in issues] == [code], failure.value
    assert message in issues[0].message + issues[0].hint
    assert issues[0].location.file.endswith("sources.yml") and issues[0].location.line is not None


def test_the_example_project_declares_sources_for_tables_of_its_model(example_project) -> None:
    project = load_project(example_project)

    model = project.model
    model_tables = {model.customer.table, *(event.table for event in model.events.values())}
    model_tables |= {model.consent.table} if model.consent else set()
    assert set(project.sources) == {"crm_customers", "web_events", "shop_orders", "consent_log"}
    assert {source.table for source in project.sources.values()} == model_tables
    assert all(source.kind == "file" and source.format == "parquet" for source in project.sources.values())


def test_demo_generate_export_ingest_gives_the_same_segments_as_the_generated_data(
        example_project, tmp_path) -> None:
    project = load_project(example_project)
    generated = DuckDBWarehouse()
    generate(generated, 1500, seed=7, events_per_customer=8)
    files = write_landing_files(generated, tmp_path / "landing")
    assert sorted(files) == ["consents", "customers", "events", "orders"]
    ingested = DuckDBWarehouse(tmp_path / "warehouse.duckdb")

    results = ingest_all(project, ingested, files_root=tmp_path)
    again = ingest_all(project, ingested, files_root=tmp_path)  # a rerun changes nothing

    assert all(r.succeeded and r.rows_quarantined == 0 for r in results + again)
    for table in files:
        assert ingested.query(f"SELECT count(*) FROM {table}") == generated.query(f"SELECT count(*) FROM {table}")
    assert set(last_loads(ingested)) == set(project.sources)
    as_of = dt.datetime(2026, 11, 24)
    evaluate(project, generated, as_of)
    evaluate(project, ingested, as_of)
    for segment in project.segments:
        assert MembershipStore(ingested).members(segment, as_of) == MembershipStore(generated).members(segment, as_of)


def test_the_command_line_entry_point_reports_each_source(make_project, project_dir, tmp_path, capsys) -> None:
    make_project("""\
sources:
  - {name: crm, table: customers, kind: file, format: csv, path: landing/customers.csv}
""")
    (project_dir / "landing" / "customers.csv").write_text("customer_id,email,ltv\n1,a@example.com,oops\n2,b@x.y,3\n")

    code = segprovider(["ingest", str(project_dir), "--db", str(tmp_path / "cli.duckdb")])

    assert code == 0
    assert "OK     crm -> customers (upsert): read 2, loaded 1, quarantined 1" in capsys.readouterr().out
    assert segprovider(["ingest", str(project_dir), "--db", str(tmp_path / "cli.duckdb"), "--source", "nope"]) == 1
    assert "unknown source(s): nope" in capsys.readouterr().out

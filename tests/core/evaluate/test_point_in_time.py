"""Point-in-time customer attributes (issue #19): every reader sees the values valid at its ``as_of``.

The project keeps attribute history (``model.customer.history: true``): ingest writes a version per
change, and the evaluation, explain, the sync's identities and mapped fields, and the hub read the
versions valid at their ``as_of`` (``valid_from <= as_of < valid_to``, as dbt snapshots define validity:
https://docs.getdbt.com/docs/build/snapshots#snapshot-meta-fields). The backfill test runs on DuckDB and
PostgreSQL; the sync sends to the sandbox's HubSpot over loopback HTTP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from airflow_segprovider.core.evaluate.engine import evaluate, preview
from airflow_segprovider.core.evaluate.explain import explain
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.project.spec import Project
from airflow_segprovider.core.sql.dialects import render
from airflow_segprovider.core.state.membership import MembershipStore
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.ingest import ingest_source

DAYS = [dt.datetime(2026, 3, day) for day in range(1, 6)]
CHANGED = dt.datetime(2026, 3, 6)
CUSTOMERS = range(1, 31)

PROJECT = """\
project: {name: point_in_time, version: 1}
model:
  customer:
    table: customers
    key: customer_id
    history: true
    attributes:
      email: {type: string}
      lifetime_value: {type: number, column: ltv}
      plan: {type: string}
  event_tables:
    events:
      table: events
      customer_key: customer_id
      timestamp: occurred_at
      type_column: event_type
      event_types: [purchase]
      properties: {amount: number}
  consent:
    table: consents
    customer_key: customer_id
    channel_column: channel
    opted_in_column: opted_in
    updated_at_column: updated_at
    channels: {email: {require_opt_in: false}}
segments:
  - name: big_spenders
    rule: {attribute: lifetime_value, op: gte, value: 100}
  - name: pro_buyers
    rule:
      all:
        - {attribute: plan, op: eq, value: pro}
        - {event: purchase, aggregate: count, within: 2d, op: gte, value: 1}
  - name: pro_not_big
    rule: {all: [{segment: pro_buyers}, {not: {segment: big_spenders}}]}
destinations:
  - name: hubspot_crm
    kind: hubspot
    connection_id: segprovider_hubspot
    channel: email
    identity: email
    field_mapping: {lifetime_value: lifetime_value}
syncs:
  - {segment: big_spenders, destination: hubspot_crm, mode: mirror, target: {list_id: "101"}}
hub:
  attributes: {email: {}, lifetime_value: {}, plan: {}}
sources:
  - {name: crm, table: customers, kind: file, format: csv, path: landing/customers.csv}
"""


def attributes_on(day: int, customer: int) -> tuple[str, int, str]:
    """``(email, ltv, plan)`` of a customer on day ``day`` (1-5; 6 is the change after the original runs)."""
    if day == 6:
        return f"moved.{customer}@example.org", 500 - customer, "pro"
    return (f"c{customer}.{day % 2}@example.com", (customer * 37 + day * 53) % 200,
            "pro" if (customer + day) % 3 == 0 else "free")


def write_customers(root: Path, day: int) -> None:
    lines = ["customer_id,email,ltv,plan"]
    lines += [f"{c},{','.join(str(v) for v in attributes_on(day, c))}" for c in CUSTOMERS]
    (root / "landing" / "customers.csv").write_text("\n".join(lines) + "\n")


def make_project(root: Path, *, history: bool = True) -> Project:
    (root / "landing").mkdir(parents=True, exist_ok=True)
    text = PROJECT if history else PROJECT.replace("    history: true\n", "")
    (root / "segments.yml").write_text(text)
    return load_project(root)


def create_event_tables(warehouse) -> None:
    """The event and consent tables, written in DuckDB's SQL and rendered for the warehouse."""
    rows = [f"('{c}', TIMESTAMP '{(DAYS[0] + dt.timedelta(days=d, hours=c % 24)).isoformat(sep=' ')}', "
            f"'purchase', {c + d})"
            for c in CUSTOMERS for d in range(-1, 5) if (c * d) % 4 == 1]
    for statement in ("CREATE TABLE events (customer_id VARCHAR, occurred_at TIMESTAMP, event_type VARCHAR, "
                      "amount DOUBLE)",
                      "CREATE TABLE consents (customer_id VARCHAR, channel VARCHAR, opted_in BOOLEAN, "
                      "updated_at TIMESTAMP)",
                      f"INSERT INTO events VALUES {', '.join(rows)}"):
        warehouse.execute(render(statement, warehouse.dialect))


def load_day(project: Project, warehouse, day: int, valid_from: dt.datetime) -> None:
    write_customers(Path(project.root), day)
    result = ingest_source(project, warehouse, "crm", now=valid_from + dt.timedelta(minutes=5),
                           valid_from=valid_from)
    assert result.status == "succeeded", result.error


def snapshots(project: Project, warehouse) -> dict[tuple[str, dt.datetime], set[str]]:
    store = MembershipStore(warehouse)
    return {(segment, day): store.members(segment, day) for segment in project.segments for day in DAYS}


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.integration)])
def warehouse(request, tmp_path) -> Iterator:
    if request.param == "duckdb":
        wh = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
        yield wh
        wh.close()
    else:
        from support.postgres import postgres_warehouse

        with postgres_warehouse() as wh:
            yield wh


def run_days(project: Project, warehouse) -> dict[tuple[str, dt.datetime], set[str]]:
    """Days 1-5 as the DAG runs them: ingest the day's export, then evaluate at the day's as_of."""
    create_event_tables(warehouse)
    for number, day in enumerate(DAYS, start=1):
        load_day(project, warehouse, number, day)
        evaluate(project, warehouse, day, run_id=f"day_{number}")
    return snapshots(project, warehouse)


def test_a_backfill_after_attributes_changed_gives_every_snapshot_the_original_run_gave(tmp_path, warehouse):
    project = make_project(tmp_path / "p")
    original = run_days(project, warehouse)
    assert all(original[("big_spenders", day)] for day in DAYS) and any(original[("pro_buyers", d)] for d in DAYS)

    load_day(project, warehouse, 6, CHANGED)  # every customer's attributes change after the original runs
    for number, day in enumerate(DAYS, start=1):  # the backfill, in the order the Airflow UI runs it
        evaluate(project, warehouse, day, run_id=f"backfill_{number}")

    assert snapshots(project, warehouse) == original
    # the change is one the current values would show: without history, day 1 reads today's attributes
    current = preview(make_project(tmp_path / "no_history", history=False), warehouse, "big_spenders", DAYS[0])
    assert current.members == len(CUSTOMERS) != len(original[("big_spenders", DAYS[0])])


def test_explain_at_a_past_as_of_reads_the_values_valid_then(tmp_path):
    project = make_project(tmp_path / "p")
    with closing(DuckDBWarehouse(tmp_path / "warehouse.duckdb")) as warehouse:
        original = run_days(project, warehouse)
        load_day(project, warehouse, 6, CHANGED)
        customer = next(c for c in CUSTOMERS if attributes_on(1, c)[1] < 100)  # not big on day 1, big on day 6

        then = explain(project, warehouse, "big_spenders", str(customer), DAYS[0])
        now = explain(project, warehouse, "big_spenders", str(customer), CHANGED)

    assert (then.member, now.member) == (False, True)
    assert str(customer) not in original[("big_spenders", DAYS[0])]
    assert f"[lifetime_value = {attributes_on(1, customer)[1]}]" in then.text()
    assert f"[lifetime_value = {attributes_on(6, customer)[1]}]" in now.text()


@pytest.mark.integration
def test_a_sync_sends_the_identity_and_fields_valid_at_its_snapshot_as_of(tmp_path):
    from airflow_segprovider.core.sync import SyncEngine
    from airflow_segprovider.destinations.connection import build_client
    from segprovider_sandbox import DEFAULT_HUBSPOT_TOKEN, serve

    project = make_project(tmp_path / "p")
    sync = project.syncs[0]
    with closing(DuckDBWarehouse(tmp_path / "warehouse.duckdb")) as warehouse, \
            serve(db_path=tmp_path / "sandbox.db") as sandbox:
        sandbox.state.seed_demo_fixtures()
        create_event_tables(warehouse)
        load_day(project, warehouse, 1, DAYS[0])
        evaluate(project, warehouse, DAYS[0], run_id="day_1")
        load_day(project, warehouse, 6, CHANGED)  # new emails and values, loaded before the sync runs
        client = build_client(project, sync, {"host": sandbox.url, "password": DEFAULT_HUBSPOT_TOKEN})
        try:
            record = SyncEngine(project, warehouse).run(sync, client, DAYS[0])
        finally:
            client.close()
        members = MembershipStore(warehouse).members("big_spenders", DAYS[0])
        held = sandbox.state.hubspot_list_emails("101")
        contact = sandbox.state.hubspot_contact(attributes_on(1, int(min(members)))[0])

    assert record.status == "succeeded"
    assert held == {attributes_on(1, int(key))[0] for key in members}  # day 1's addresses, not today's
    assert float(contact["properties"]["lifetime_value"]) == attributes_on(1, int(min(members)))[1]


def test_the_hub_built_at_a_past_as_of_holds_the_values_valid_then(tmp_path):
    from airflow_segprovider.core.hybrid.build import HubBuilder

    project = make_project(tmp_path / "p")
    with closing(DuckDBWarehouse(tmp_path / "warehouse.duckdb")) as warehouse:
        create_event_tables(warehouse)
        load_day(project, warehouse, 2, DAYS[1])
        load_day(project, warehouse, 6, CHANGED)
        HubBuilder(project, warehouse).build(DAYS[1])
        profiles = warehouse.query(f"SELECT customer_key, email, lifetime_value, plan FROM {project.hub.table} "
                                   "ORDER BY CAST(customer_key AS INTEGER)")

    assert [(key, email, float(ltv), plan) for key, email, ltv, plan in profiles] == [
        (str(c), *attributes_on(2, c)[:1], float(attributes_on(2, c)[1]), attributes_on(2, c)[2]) for c in CUSTOMERS]


def test_a_declared_dbt_snapshot_is_read_at_each_as_of_and_overlapping_versions_are_refused(tmp_path):
    """A history another tool keeps, with dbt's column names (``dbt_valid_to`` NULL or, with
    ``dbt_valid_to_current``, a far-future date for the current version)."""
    from airflow_segprovider.core.errors import TerminalEvaluationError

    root = tmp_path / "p"
    root.mkdir()
    (root / "segments.yml").write_text(
        PROJECT.replace("    history: true\n", "    history: {table: customers_snapshot}\n")
        .split("sources:\n")[0])
    project = load_project(root)
    with closing(DuckDBWarehouse(tmp_path / "warehouse.duckdb")) as warehouse:
        create_event_tables(warehouse)
        warehouse.execute("CREATE TABLE customers AS SELECT '1' AS customer_id, 'a@x.org' AS email, "
                          "500.0 AS ltv, 'pro' AS plan")
        warehouse.execute(
            "CREATE TABLE customers_snapshot AS SELECT * FROM (VALUES "
            "('1', 'a@x.org', 10.0, 'free', TIMESTAMP '2026-01-01', TIMESTAMP '2026-03-02 12:00'), "
            "('1', 'a@x.org', 500.0, 'pro', TIMESTAMP '2026-03-02 12:00', TIMESTAMP '9999-12-31'), "
            "('2', 'b@x.org', 150.0, 'free', TIMESTAMP '2026-03-03', NULL)) "
            "AS t(customer_id, email, ltv, plan, dbt_valid_from, dbt_valid_to)")
        for day in DAYS[:4]:
            evaluate(project, warehouse, day)
        members = {day.day: MembershipStore(warehouse).members("big_spenders", day) for day in DAYS[:4]}
        warehouse.execute("INSERT INTO customers_snapshot VALUES "
                          "('2', 'b@x.org', 1.0, 'free', TIMESTAMP '2026-03-03 06:00', NULL)")
        with pytest.raises(TerminalEvaluationError, match="overlapping versions valid at 2026-03-04") as refused:
            evaluate(project, warehouse, DAYS[3])

    assert members == {1: set(), 2: set(), 3: {"1", "2"}, 4: {"1", "2"}}  # 1 from 03-02 12:00, 2 from 03-03
    assert "customers_snapshot.customer_id" in str(refused.value) and "'2'" in str(refused.value)


@pytest.mark.parametrize(("history", "message"), [
    ("{table: customers}", "model.customer.history.table 'customers' is the customer table itself"),
    ("{table: snap, valid_from: ltv}", "a validity column is also the key or an attribute column"),
    ("{table: snap, valid_from: t, valid_to: t}", "valid_from and valid_to are both 't'"),
])
def test_a_declared_history_table_is_checked_naming_the_field(tmp_path, history, message):
    from airflow_segprovider.core.errors import ProjectValidationError

    root = tmp_path / "p"
    root.mkdir()
    (root / "segments.yml").write_text(PROJECT.replace("    history: true\n", f"    history: {history}\n"))
    with pytest.raises(ProjectValidationError) as error:
        load_project(root)

    assert "SEG087" in str(error.value) and message in str(error.value)
    assert "segments.yml:6:" in str(error.value)  # the line of model.customer.history


def test_the_types_gate_samples_the_values_valid_at_its_as_of(tmp_path):
    from airflow_segprovider.gates import queries

    project = make_project(tmp_path / "p")
    with closing(DuckDBWarehouse(tmp_path / "warehouse.duckdb")) as warehouse:
        create_event_tables(warehouse)
        load_day(project, warehouse, 1, DAYS[0])
        load_day(project, warehouse, 6, CHANGED)
        then = warehouse.query(queries.types_sql(project, ["email", "ltv"], sample_rows=100, as_of=DAYS[0]))
        now = warehouse.query(queries.types_sql(project, ["email", "ltv"], sample_rows=100, as_of=CHANGED))

    assert sorted(then) == sorted((attributes_on(1, c)[0], float(attributes_on(1, c)[1])) for c in CUSTOMERS)
    assert sorted(now) == sorted((attributes_on(6, c)[0], float(attributes_on(6, c)[1])) for c in CUSTOMERS)


def test_explain_names_the_as_of_when_a_customer_has_no_version_valid_then(tmp_path):
    from airflow_segprovider.core.errors import TerminalEvaluationError

    project = make_project(tmp_path / "p")
    with closing(DuckDBWarehouse(tmp_path / "warehouse.duckdb")) as warehouse:
        create_event_tables(warehouse)
        load_day(project, warehouse, 1, DAYS[0])
        (Path(project.root) / "landing" / "customers.csv").write_text(
            "customer_id,email,ltv,plan\n99,new@example.com,1,free\n")
        ingest_source(project, warehouse, "crm", now=DAYS[2], valid_from=DAYS[2])  # 99 first known on day 3

        assert explain(project, warehouse, "big_spenders", "99", DAYS[2]).member is False
        with pytest.raises(TerminalEvaluationError, match="'99' not found in customers.customer_id at 2026-03-02"):
            explain(project, warehouse, "big_spenders", "99", DAYS[1])


@pytest.mark.integration
def test_the_distributed_model_matches_list_members_by_the_identities_valid_at_its_as_of(tmp_path):
    from airflow_segprovider.core.distributed import Reconciler
    from airflow_segprovider.core.state.distributed import PULLS
    from airflow_segprovider.destinations.connection import build_client
    from segprovider_sandbox import DEFAULT_HUBSPOT_TOKEN, DEFAULT_MAILCHIMP_API_KEY, serve

    root = tmp_path / "p"
    make_project(root)
    (root / "reconcile.yml").write_text(
        "destinations:\n  - {name: mailchimp_newsletter, kind: mailchimp, connection_id: segprovider_mailchimp, "
        "channel: email, identity: email, config: {list_id: a1b2c3d4e5, membership: static_segment}}\n"
        "syncs:\n  - {segment: big_spenders, destination: mailchimp_newsletter, mode: mirror, "
        "target: {segment_name: vip}}\n"
        "reconcile:\n  - {segment: big_spenders, policy: union}\n")
    project = load_project(root)
    customer = 3
    with closing(DuckDBWarehouse(tmp_path / "warehouse.duckdb")) as warehouse, \
            serve(db_path=tmp_path / "sandbox.db") as sandbox:
        sandbox.state.seed_demo_fixtures()
        create_event_tables(warehouse)
        load_day(project, warehouse, 1, DAYS[0])
        load_day(project, warehouse, 6, CHANGED)
        sandbox.state.edit_hubspot_list("101", attributes_on(1, customer)[0], True)  # day 1's address, by hand
        hosts = {"hubspot_crm": {"host": sandbox.url, "password": DEFAULT_HUBSPOT_TOKEN},
                 "mailchimp_newsletter": {"host": f"{sandbox.url}/3.0", "password": DEFAULT_MAILCHIMP_API_KEY}}
        reconciler = Reconciler(project, warehouse, lambda sync: build_client(project, sync, hosts[sync.destination]))
        reconciler.pull("then", DAYS[0])
        reconciler.pull("now", CHANGED)
        matched = dict(warehouse.query(f"SELECT run_id, customer_key FROM {PULLS} WHERE system = 'hubspot_crm'"))

    assert matched == {"then": str(customer)}  # today the address is nobody's: not matched to customer 3


def test_out_of_range_counts_the_versions_valid_at_the_as_of_not_every_version(tmp_path):
    """A lifetime value of 1e30 in day 1's export only: the evaluation at day 1 reads it as missing and
    reports one row; the evaluation at day 2 reads day 2's value and reports none, though the history
    still holds the old version (the language reference: "Out of range", docs/segments-language.md)."""
    project = make_project(tmp_path / "p")
    customer = CUSTOMERS[0]
    with closing(DuckDBWarehouse(tmp_path / "warehouse.duckdb")) as warehouse:
        create_event_tables(warehouse)
        load_day(project, warehouse, 1, DAYS[0])
        csv = Path(project.root) / "landing" / "customers.csv"
        lines = csv.read_text().splitlines()
        email, _ltv, plan = attributes_on(1, customer)
        lines[1] = f"{customer},{email},1e30,{plan}"
        csv.write_text("\n".join(lines) + "\n")
        assert ingest_source(project, warehouse, "crm", now=DAYS[0] + dt.timedelta(minutes=1),
                             valid_from=DAYS[0] + dt.timedelta(minutes=1)).status == "succeeded"
        first = evaluate(project, warehouse, DAYS[0] + dt.timedelta(hours=1), run_id="day_1")
        load_day(project, warehouse, 2, DAYS[1])
        second = evaluate(project, warehouse, DAYS[1] + dt.timedelta(hours=1), run_id="day_2")
        versions = warehouse.query("SELECT COUNT(*) FROM segprovider_customer_history WHERE ltv >= 1e15")[0][0]

    assert versions == 1  # the history keeps the out-of-range version
    assert first.out_of_range == {"segprovider_customer_history.ltv": 1}
    assert second.out_of_range == {}

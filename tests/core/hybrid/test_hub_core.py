"""The hub's pure core on a real DuckDB: the spec's checks, type checks and wire formats, changed-row detection."""

from __future__ import annotations

import datetime as dt
import shutil
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from airflow_segprovider.core.destination import FieldType
from airflow_segprovider.core.errors import ProjectValidationError
from airflow_segprovider.core.hybrid.errors import WireTypeError
from airflow_segprovider.core.hybrid.types import to_wire
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.example import EXAMPLE_PROJECT

REPO = Path(__file__).resolve().parents[2]


def project_with_hub(tmp_path: Path, hub_yaml: str) -> Path:
    project = tmp_path / "p"
    shutil.copytree(EXAMPLE_PROJECT, project, ignore=shutil.ignore_patterns("landing"))
    (project / "hub.yml").write_text(textwrap.dedent(hub_yaml))
    return project


def issues(tmp_path: Path, hub_yaml: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ProjectValidationError) as caught:
        load_project(project_with_hub(tmp_path, hub_yaml))
    return [(i.code, i.location.line, i.location.path) for i in caught.value.issues]


def test_the_example_project_declares_a_hub_and_spoke_segments() -> None:
    project = load_project(EXAMPLE_PROJECT)
    assert project.hub is not None and set(project.hub.push) == {"mailchimp_newsletter", "hubspot_crm"}
    assert project.hub.attributes["last_purchase_date"].type == "date"
    assert project.spoke_segments["mc_high_value"].spoke_name == "high_value"


def test_hub_mistakes_are_reported_where_they_are_written(tmp_path: Path) -> None:
    found = issues(tmp_path, """\
        hub:
          max_source_age: soon
          attributes:
            email: {}
            ltv: {attribute: lifetime_valu}
            last_buy: {event: purchase}
            opt_in: {consent: fax}
          push:
            - destination: mailchimp_newsletter
              fields: {LTV: lifetime_value}
            - destination: nowhere
              fields: {X: email}
        """)
    assert ("SEG080", 5, "hub.attributes.ltv.attribute") in found
    assert ("SEG080", 6, "hub.attributes.last_buy") in found
    assert ("SEG080", 7, "hub.attributes.opt_in.consent") in found
    assert ("SEG081", 10, "hub.push[0].fields.LTV") in found
    assert ("SEG081", 11, "hub.push[1].destination") in found
    assert ("SEG086", 2, "hub.max_source_age") in found


def test_spoke_rules_must_be_what_the_spoke_can_evaluate(tmp_path: Path) -> None:
    found = issues(tmp_path, """\
        hub:
          attributes: {email: {}, lifetime_value: {}, country: {}}
          push:
            - destination: mailchimp_newsletter
              fields: {LTV: lifetime_value}
        spoke_segments:
          - name: by_event
            destination: mailchimp_newsletter
            rule: {all: [{event: purchase, aggregate: count, op: gte, value: 1}]}
          - name: not_pushed
            destination: mailchimp_newsletter
            rule: {attribute: country, op: eq, value: DE}
          - name: gte_on_mailchimp
            destination: mailchimp_newsletter
            rule: {attribute: lifetime_value, op: gte, value: 10}
          - name: no_push
            destination: hubspot_crm
            rule: {attribute: lifetime_value, op: gte, value: 10}
          - name: ads
            destination: meta_ads
            rule: {attribute: lifetime_value, op: gt, value: 10}
        """)
    codes = {(code, path) for code, _, path in found}
    assert ("SEG082", "spoke_segments[0].rule.all[0]") in codes
    assert ("SEG083", "spoke_segments[1].rule") in codes
    assert ("SEG083", "spoke_segments[2].rule") in codes
    assert ("SEG084", "spoke_segments[3].destination") in codes
    assert ("SEG085", "spoke_segments[4].destination") in codes


def test_values_are_written_as_each_api_documents_the_field_type() -> None:
    number, date = FieldType("LTV", "number"), FieldType("LASTBUY", "date", "DD/MM/YYYY")
    assert to_wire("mailchimp", number, 12.5) == 12.5 and to_wire("mailchimp", number, Decimal("20.00")) == 20
    assert to_wire("hubspot", FieldType("ltv", "number"), 12.5) == "12.5"
    assert to_wire("mailchimp", date, dt.date(2026, 3, 4)) == "04/03/2026"
    assert to_wire("mailchimp", FieldType("D", "date"), dt.date(2026, 3, 4)) == "03/04/2026"  # Mailchimp's default
    assert to_wire("hubspot", FieldType("d", "date"), dt.datetime(2026, 3, 4, 15, 0)) == "2026-03-04"
    assert to_wire("hubspot", FieldType("d", "datetime"), dt.datetime(2026, 3, 4)) == "1772582400000"
    assert to_wire("hubspot", FieldType("b", "bool"), True) == "true"
    assert to_wire("mailchimp", number, None) is None
    with pytest.raises(WireTypeError, match="LTV.*not a number"):
        to_wire("mailchimp", number, "12,50 EUR")
    with pytest.raises(WireTypeError, match="not a date"):
        to_wire("hubspot", FieldType("d", "date"), "yesterday")


def test_a_hub_column_of_the_wrong_type_fails_the_types_check(tmp_path: Path) -> None:
    from airflow_segprovider.core.hybrid.build import HubBuilder
    from airflow_segprovider.core.hybrid.types import type_checks
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

    project = load_project(EXAMPLE_PROJECT)
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    warehouse.execute("CREATE TABLE customers (customer_id BIGINT, email VARCHAR, first_name VARCHAR, "
                      "country VARCHAR, lifetime_value VARCHAR)")  # an upstream schema change: money as text
    warehouse.execute("INSERT INTO customers VALUES (1, 'a@example.com', 'A', 'DE', '12,50 EUR')")
    warehouse.execute("CREATE TABLE events (customer_id BIGINT, occurred_at TIMESTAMP, event_type VARCHAR)")
    warehouse.execute("CREATE TABLE consents (customer_id BIGINT, channel VARCHAR, opted_in BOOLEAN, "
                      "updated_at TIMESTAMP)")
    HubBuilder(project, warehouse).build(dt.datetime(2026, 11, 24))
    rows = {(r["attribute"], r["destination"]): r for r in type_checks(project, warehouse, {
        "mailchimp_newsletter": {"LTV": FieldType("LTV", "number"), "FNAME": FieldType("FNAME", "text"),
                                 "COUNTRY": FieldType("COUNTRY", "text"), "LASTBUY": FieldType("LASTBUY", "date")}})}
    bad = rows[("lifetime_value", "(hub)")]
    assert not bad["compatible"] and "VARCHAR" in bad["problem"] and "lifetime_value" in bad["problem"]
    assert rows[("email", "(hub)")]["compatible"] and rows[("lifetime_value", "mailchimp_newsletter")]["compatible"]
    warehouse.close()

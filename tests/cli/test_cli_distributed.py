"""``segprovider distributed``: a dry run prints conflicts with both sides and sends nothing; a real run
(through the earlier name, ``segprovider reconcile``) agrees."""

from __future__ import annotations

import datetime as dt
import json

from airflow_segprovider.cli.demo import connection_variables, sandbox_connections
from airflow_segprovider.cli.main import main
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.example.generate import generate
from support.distributed_world import (  # noqa: F401  (pytest fixtures)
    consenting_customers,
    last_request_id,
    make_project,
    membership_writes,
    module_tmp,
    sandbox,
)
from support.sandbox import SANDBOX_CREDENTIALS


def test_dry_run_then_reconcile_from_the_command_line(tmp_path, sandbox, monkeypatch, capsys) -> None:  # noqa: F811
    systems = sandbox.systems
    with systems.sandbox.state.write() as cursor:
        cursor.execute("DELETE FROM mailchimp_segment_members")
        cursor.execute("DELETE FROM hubspot_list_members")
    project = make_project(tmp_path,
                           "reconcile:\n  - {segment: sales_priority, policy: union, max_change_fraction: 1.0}\n",
                           third_system=False)
    db = tmp_path / "cli.duckdb"
    warehouse = DuckDBWarehouse(db)
    generate(warehouse, 150, seed=21)
    emails = list(consenting_customers(warehouse, 4).values())
    warehouse.close()
    for name, value in connection_variables(sandbox_connections(db, sandbox.url, "http://127.0.0.1:9/alerts", SANDBOX_CREDENTIALS,
                                                                {"backoff_base": 0.01, "max_attempts": 3})).items():
        monkeypatch.setenv(name, value)
    past = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(hours=1)
    systems.edit("hubspot_crm", emails[0], True, past)
    systems.edit("mailchimp_newsletter", emails[1], True, past)

    before = last_request_id(sandbox)
    assert main(["distributed", str(project), "--db", str(db), "--dry-run", "--run-id", "cli_dry"]) == 0
    out = capsys.readouterr().out
    assert "sales_priority (union): 2 customers, 2 conflicts" in out
    assert "in hubspot_crm, not in mailchimp_newsletter -> member (union" in out
    assert "dry run cli_dry: nothing sent" in out
    assert not any(membership_writes(sandbox, before).values())

    assert main(["reconcile", str(project), "--db", str(db), "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out[out.index("{"):])
    assert result["plan"]["total_changes"] == 2
    assert [(r["system"], r["drift"]) for r in result["drift"]] == [("mailchimp_newsletter", 0), ("hubspot_crm", 0)]
    held = systems.held()
    assert held["hubspot_crm"] == held["mailchimp_newsletter"] == set(emails[:2])


def test_a_mistyped_segment_is_refused_even_when_the_project_reconciles_nothing(project_copy, tmp_path, capsys) -> None:
    (project_copy / "reconcile.yml").unlink()  # a project with no reconcile: policy at all
    code = main(["distributed", str(project_copy), "--segment", "sales_priorty", "--db", str(tmp_path / "w.duckdb")])
    err = capsys.readouterr().err
    assert code == 1 and "--segment" in err and "sales_priorty" in err and "Traceback" not in err

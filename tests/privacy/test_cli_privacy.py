"""``segprovider forget`` and ``segprovider suppress``: errors without tracebacks, and a forget end to end."""

from __future__ import annotations

import json

import pytest

from airflow_segprovider.cli.main import main
from airflow_segprovider.core.state.privacy import SALT_ENV, TOMBSTONES
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from support.privacy_world import SALT
from support.sync_constants import DAY_2
from support.sync_runs import run, sync_of

pytestmark = pytest.mark.integration


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_forget_refuses_to_run_without_a_salt_or_with_a_short_one(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv(SALT_ENV, raising=False)
    code, _, err = cli(capsys, "forget", "42", "--project", str(tmp_path), "--db", str(tmp_path / "w.duckdb"))
    assert code == 1 and SALT_ENV in err and "Traceback" not in err
    assert not (tmp_path / "w.duckdb").exists()  # refused before anything was opened
    monkeypatch.setenv(SALT_ENV, "short")
    code, _, err = cli(capsys, "forget", "42", "--project", str(tmp_path))
    assert code == 1 and "at least 16" in err


def test_forget_and_suppress_name_the_argument_at_fault(capsys, monkeypatch, example_project, tmp_path):
    monkeypatch.setenv(SALT_ENV, SALT)
    code, _, err = cli(capsys, "forget", "--project", str(example_project), "--db", str(tmp_path / "w.duckdb"))
    assert code == 1 and "--pending" in err
    with pytest.raises(SystemExit) as usage:
        main(["forget", " ", "--project", str(example_project)])
    assert usage.value.code == 2 and "customer key cannot be empty" in capsys.readouterr().err
    db = str(tmp_path / "w.duckdb")
    code, _, err = cli(capsys, "suppress", "add", "--reason", "x", "--db", db)
    assert code == 1 and "--customer KEY, --identity EMAIL" in err
    with pytest.raises(SystemExit):
        main(["suppress", "add", "--customer", "7", "--db", db])  # --reason is required
    assert "--reason" in capsys.readouterr().err


def test_suppress_add_list_remove(capsys, tmp_path):
    db = str(tmp_path / "w.duckdb")
    assert cli(capsys, "suppress", "add", "--identity", " Ada@Example.com", "--reason", "complaint", "--db", db)[1] \
        == "suppressed\n"
    assert cli(capsys, "suppress", "add", "--identity", "ada@example.com", "--reason", "x", "--db", db)[1] \
        == "already suppressed\n"
    code, out, _ = cli(capsys, "suppress", "list", "--json", "--db", db)
    assert code == 0 and [(e["identity"], e["reason"]) for e in json.loads(out)] == [("ada@example.com", "complaint")]
    assert cli(capsys, "suppress", "remove", "--identity", "ADA@example.com", "--db", db)[1] \
        == "removed from the suppression list\n"
    assert cli(capsys, "suppress", "list", "--db", db)[1] == "the suppression list is empty\n"


def test_forget_from_the_command_line(capsys, monkeypatch, world):
    sync = sync_of(world.project, "vip", "hubspot_crm")
    run(world.project, world.warehouse, world.connections, sync, DAY_2)
    key = world.warehouse.query(
        f"SELECT MIN(customer_key) FROM segprovider_sync_state WHERE sync_id = '{sync.id}'")[0][0]
    for name, connection in world.connections.items():
        destination = world.project.destinations[name]
        monkeypatch.setenv(f"AIRFLOW_CONN_{destination.connection_id.upper()}",
                           json.dumps({"conn_type": f"segprovider_{destination.kind}", **connection}))
    db = str(world.root.parent / "warehouse.duckdb")
    world.warehouse.close()

    code, out, err = cli(capsys, "forget", key, "--project", str(world.root), "--db", db, "--json")

    assert code == 0, err
    assert out.startswith(f"{key}: erased (request erasure__")
    assert "hubspot_crm (vip__hubspot_crm): erased" in out
    assert json.loads(out[out.index("["):])[0]["status"] == "erased"
    warehouse = DuckDBWarehouse(db)
    try:
        assert warehouse.query(f"SELECT COUNT(*) FROM {TOMBSTONES}")[0][0] == 1
        assert warehouse.query(
            f"SELECT COUNT(*) FROM customers WHERE CAST(customer_id AS VARCHAR) = '{key}'")[0][0] == 0
    finally:
        warehouse.close()

"""``segprovider sync-log``: the per-record sync log, filtered by sync, customer, run and time, as text or JSON.

The warehouse gets the rows the sync engine writes (through the same core functions: the log rows of
two batches and the run records they link to), so the command is tested on what a run leaves behind;
the engine writing them is tested in ``tests/core/sync/test_sync_log.py``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from airflow_segprovider.cli.main import EXIT_OK, EXIT_USAGE, main
from airflow_segprovider.core.state import sync as sync_state
from airflow_segprovider.core.sync.record import SyncRunRecord, write_run
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

THE_3RD, THE_4TH = dt.datetime(2026, 12, 3, 9, 30), dt.datetime(2026, 12, 4, 9, 30)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Customer 42 sent to Meta and accepted on the 3rd; refused by Mailchimp on the 4th; 7 accepted by both."""
    path = tmp_path / "warehouse.duckdb"
    warehouse = DuckDBWarehouse(path)
    sync_state.ensure_tables(warehouse)
    for run_id, sync_id, destination, at, rejected in (
            ("run_3rd", "win_back__meta_ads", "meta_ads", THE_3RD, []),
            ("run_4th", "vip__mailchimp_newsletter", "mailchimp_newsletter", THE_4TH,
             [("42", "h42", "Invalid Resource", "42's address looks fake or invalid")])):
        accepted = ["7"] if rejected else ["42", "7"]
        warehouse.load(sync_state.LOG, sync_state.log_rows(sync_id, run_id, "add", accepted,
                                                           [f"h{k}" for k in accepted], rejected, at))
        record = SyncRunRecord(run_id, sync_id, sync_id.split("__")[0], destination, "2026-11-24T00:00:00",
                               "mirror", False, status="partial" if rejected else "succeeded")
        write_run(warehouse, record, at)
    warehouse.close()
    return path


def sync_log(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["sync-log", *args])
    return code, capsys.readouterr().out


def test_did_customer_42_reach_meta_on_the_3rd_and_what_did_the_api_answer(db, capsys) -> None:
    code, out = sync_log(capsys, "--db", str(db), "--customer", "42", "--since", "2026-12-03",
                         "--until", "2026-12-04", "--json")
    assert code == EXIT_OK
    [entry] = json.loads(out)
    assert (entry["destination"], entry["action"], entry["status"], entry["error_code"], entry["run_id"]) == \
        ("meta_ads", "add", "accepted", None, "run_3rd")
    assert entry["logged_at"].startswith("2026-12-03 09:30")


def test_every_row_of_a_customer_newest_first_as_a_table(db, capsys) -> None:
    code, out = sync_log(capsys, "--db", str(db), "--customer", "42")
    lines = out.splitlines()
    assert code == EXIT_OK and lines[0].split()[:3] == ["time", "(UTC)", "sync"]
    assert "vip__mailchimp_newsletter" in lines[1] and "rejected" in lines[1] and "Invalid Resource" in lines[1]
    assert "win_back__meta_ads" in lines[2] and "accepted" in lines[2]
    assert len(lines) == 3


@pytest.mark.parametrize(("args", "expected"), [
    (["--sync", "win_back__meta_ads"], {("42", "run_3rd"), ("7", "run_3rd")}),
    (["--run", "run_4th"], {("42", "run_4th"), ("7", "run_4th")}),
    (["--customer", "7", "--since", "2026-12-04"], {("7", "run_4th")}),
    (["--customer", "7", "--until", "2026-12-04"], {("7", "run_3rd")}),
])
def test_filters(db, capsys, args, expected) -> None:
    code, out = sync_log(capsys, "--db", str(db), "--json", *args)
    assert code == EXIT_OK
    assert {(e["customer_key"], e["run_id"]) for e in json.loads(out)} == expected


def test_limit_keeps_the_newest_rows_and_says_so(db, capsys) -> None:
    code, out = sync_log(capsys, "--db", str(db), "--limit", "2")
    assert code == EXIT_OK and "run_4th" in out and "run_3rd" not in out
    assert "--limit N for more" in out


def test_a_warehouse_without_a_sync_log_yet_has_no_rows(tmp_path, capsys) -> None:
    code, out = sync_log(capsys, "--db", str(tmp_path / "empty.duckdb"))
    assert code == EXIT_OK and out.strip() == "no sync-log rows match"
    assert sync_log(capsys, "--db", str(tmp_path / "empty.duckdb"), "--json") == (EXIT_OK, "[]\n")


def test_the_project_locates_the_warehouse(project_copy, db, capsys) -> None:
    code, out = sync_log(capsys, "--project", str(project_copy), "--db", str(db), "--run", "run_3rd", "--json")
    assert code == EXIT_OK and len(json.loads(out)) == 2


@pytest.mark.parametrize("args", [["--limit", "0"], ["--since", "yesterday-ish"]])
def test_bad_arguments_are_usage_errors(db, capsys, args) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["sync-log", "--db", str(db), *args])
    assert exited.value.code == EXIT_USAGE


def test_the_help_names_the_run_record_as_the_join_key(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["sync-log", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "run_id of its run record" in out and "the join key" in out

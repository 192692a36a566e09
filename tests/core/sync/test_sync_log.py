"""The per-record sync log (``segprovider_sync_log``): what each run sent and what the destination answered.

Runs the engine against the destination sandbox over loopback HTTP, on DuckDB and on the real
PostgreSQL server. The log is written in the transaction of each acknowledged batch's state, so it
is never ahead of or behind it; rows older than ``log_retention_days`` are deleted at the end of a
run; each row joins its run record on ``run_id``.
"""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.sql.dialects import render
from airflow_segprovider.core.state.sync import LOG
from airflow_segprovider.core.sync import record as sync_record
from airflow_segprovider.core.sync.record import read_sync_log
from airflow_segprovider.example.generate import generate
from segprovider_sandbox import DEFAULT_MAILCHIMP_API_KEY
from support.sync_constants import DAY_1, DAY_2, FAST_RETRIES
from support.sync_runs import run, sync_of
from support.warehouse_matrix import copy_tables, open_warehouse

pytestmark = pytest.mark.integration

THE_3RD = dt.datetime(2026, 12, 3, 9, 30)




def at(monkeypatch, moment: dt.datetime) -> None:
    """Let the sync log (and its retention) read ``moment`` as the time now."""
    monkeypatch.setattr(sync_record, "utc_now", lambda: moment)


def log_rows(warehouse, where="TRUE"):
    return warehouse.query(render(f"SELECT run_id, customer_key, action, status, error_code, row_hash, logged_at "
                                  f"FROM {LOG} WHERE {where}", warehouse.dialect))


def test_did_customer_42_reach_meta_on_the_3rd_and_what_did_the_api_answer(
        project, warehouse, sandbox, connections, monkeypatch):
    sync = sync_of(project, "win_back", "meta_ads")
    at(monkeypatch, THE_3RD)
    record = run(project, warehouse, connections, sync, DAY_2)
    member = min(k for (k,) in warehouse.query(
        f"SELECT customer_key FROM segprovider_sync_state WHERE sync_id = '{sync.id}' AND in_destination"))
    the_3rd, the_4th = dt.datetime(2026, 12, 3), dt.datetime(2026, 12, 4)

    # customer 42 is not in win_back on this data: no row, so never sent to Meta that day
    assert read_sync_log(warehouse, customer_key="42", since=the_3rd, until=the_4th) == []
    # a member was: added, and Meta accepted it, in this run (the run record's run_id is the link)
    [entry] = read_sync_log(warehouse, customer_key=member, since=the_3rd, until=the_4th)
    assert (entry["destination"], entry["action"], entry["status"], entry["error_code"]) == \
        ("meta_ads", "add", "accepted", None)
    assert entry["run_id"] == record.run_id and entry["run_status"] == "succeeded"
    assert entry["logged_at"] == THE_3RD and entry["as_of"] == DAY_2
    assert entry["row_hash"] == warehouse.query(
        f"SELECT row_hash FROM segprovider_sync_state WHERE sync_id = '{sync.id}' AND customer_key = '{member}'")[0][0]
    assert read_sync_log(warehouse, customer_key=member, since=the_4th) == []
    # one row per record sent, and one per record refused before sending (no identity), no more
    assert len(log_rows(warehouse, "status = 'accepted'")) == record.succeeded["add"]
    assert len(log_rows(warehouse, "action = 'reject'")) == record.plan.missing_identity
    assert len(log_rows(warehouse)) == record.succeeded["add"] + record.plan.missing_identity


def test_a_refused_record_is_logged_with_the_destination_s_error_code(project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "mailchimp_newsletter")
    keys = sorted(k for (k,) in warehouse.query(
        "SELECT customer_key FROM segprovider_memberships WHERE segment = 'vip' AND as_of = TIMESTAMP '2026-11-24'"))
    record = run(project, warehouse, connections, sync, DAY_2, dry_run=True, sample_size=10_000)
    sendable = record.plan.samples["add"]
    bad, blank = sendable[0], sendable[1]
    warehouse.execute(f"UPDATE customers SET email = 'not-an-email' WHERE customer_id = {int(bad)}")
    warehouse.execute(f"UPDATE customers SET email = NULL WHERE customer_id = {int(blank)}")

    record = run(project, warehouse, connections, sync, DAY_2)

    [refused] = read_sync_log(warehouse, customer_key=bad)
    code, message = warehouse.query(f"SELECT error_code, message FROM segprovider_rejected_records "
                                    f"WHERE customer_key = '{bad}'")[0]
    assert (refused["action"], refused["status"], refused["error_code"], refused["message"]) == \
        ("add", "rejected", code, message)
    # no identity: refused by the engine before any call
    [unsendable] = read_sync_log(warehouse, customer_key=blank)
    assert (unsendable["action"], unsendable["status"], unsendable["error_code"]) == \
        ("reject", "rejected", "missing_identity")
    accepted = read_sync_log(warehouse, sync_id=sync.id, run_id=record.run_id, limit=10_000)
    assert sum(e["status"] == "accepted" for e in accepted) == record.succeeded["add"]
    assert set(keys) >= {e["customer_key"] for e in accepted}


def test_the_log_agrees_with_the_state_and_the_run_records_over_two_days(project, warehouse, sandbox, connections):
    sync = sync_of(project, "vip", "hubspot_crm")
    records = [run(project, warehouse, connections, sync, day, batch_size=40) for day in (DAY_1, DAY_2)]
    for record in records:
        for operation in ("add", "change", "remove"):
            accepted = log_rows(warehouse, f"run_id = '{record.run_id}' AND action = '{operation}' "
                                           "AND status = 'accepted'")
            assert len(accepted) == record.succeeded[operation]
    assert records[1].succeeded["remove"] > 0
    # the latest accepted action of each key says whether it is in the destination, as the state does
    latest: dict[str, str] = {}
    for run_id, key, action, status, *_ in sorted(log_rows(warehouse, "status = 'accepted'"),
                                                  key=lambda row: records[0].run_id != row[0]):
        latest[key] = action
    held = {k for (k,) in warehouse.query(
        f"SELECT customer_key FROM segprovider_sync_state WHERE sync_id = '{sync.id}' AND in_destination")}
    assert {k for k, action in latest.items() if action != "remove"} == held


def test_a_batch_whose_log_cannot_be_written_leaves_no_state_either(
        project, warehouse, sandbox, connections, monkeypatch):
    sync = sync_of(project, "vip", "mailchimp_newsletter")
    load, loads = warehouse.load, []

    def failing_second_log_load(table, rows, **kwargs):
        if table == LOG and rows.column("action")[0].as_py() != "reject":  # a sent batch's rows
            loads.append(rows.num_rows)
            if len(loads) == 2:
                raise RuntimeError("the warehouse went away")
        return load(table, rows, **kwargs)

    monkeypatch.setattr(warehouse, "load", failing_second_log_load)
    with pytest.raises(RuntimeError, match="went away"):
        run(project, warehouse, connections, sync, DAY_2, batch_size=50, concurrency=1)

    state = warehouse.query(f"SELECT COUNT(*) FROM segprovider_sync_state WHERE sync_id = '{sync.id}'")[0][0]
    logged = warehouse.query(f"SELECT COUNT(*) FROM {LOG} WHERE sync_id = '{sync.id}' AND action <> 'reject'")[0][0]
    # the first batch, in both; the second, in neither; a batch acknowledged while the second failed is
    # still committed (send_all keeps what the destination acknowledged), in both: timing decides whether there is one
    committed = sum(rows for attempt, rows in enumerate(loads) if attempt != 1)
    assert state == logged == committed > 0 and committed < sum(loads)


def test_rows_older_than_the_retention_are_deleted_at_the_end_of_a_run(
        project, warehouse, sandbox, connections, monkeypatch):
    vip_mailchimp, vip_hubspot = sync_of(project, "vip", "mailchimp_newsletter"), sync_of(project, "vip", "hubspot_crm")
    at(monkeypatch, dt.datetime(2026, 8, 1))
    old = run(project, warehouse, connections, vip_mailchimp, DAY_1)
    run(project, warehouse, connections, vip_hubspot, DAY_1)
    at(monkeypatch, dt.datetime(2026, 10, 1))
    kept_forever = run(project, warehouse, connections, vip_mailchimp, DAY_2, log_retention_days=None)
    assert log_rows(warehouse, f"run_id = '{old.run_id}'")  # nothing pruned without a retention
    at(monkeypatch, THE_3RD)

    new = run(project, warehouse, connections, vip_mailchimp, DAY_2, log_retention_days=90)

    runs = {run_id for run_id, *_ in log_rows(warehouse, f"sync_id = '{vip_mailchimp.id}'")}
    assert kept_forever.succeeded["add"] + kept_forever.succeeded["remove"] > 0
    assert old.run_id not in runs  # 124 days old: deleted
    assert kept_forever.run_id in runs  # 63 days old: kept
    assert new.run_id in runs  # it sent nothing new, and logged the members it cannot send (no identity)
    # another sync's rows follow that sync's own runs and retention
    assert log_rows(warehouse, f"sync_id = '{vip_hubspot.id}'")


@pytest.fixture
def postgres(project):
    with open_warehouse("duckdb") as source, open_warehouse("postgres") as warehouse:
        generate(source, 500, seed=5)
        copy_tables(source, warehouse, ["customers", "events", "orders", "consents"])
        for day, run_id in ((DAY_1, "day_1"), (DAY_2, "day_2")):
            evaluate(project, warehouse, day, run_id=run_id)
        yield warehouse


def test_the_sync_log_on_postgresql(project, postgres, sandbox, monkeypatch):
    connections = {"mailchimp_newsletter": {"host": f"{sandbox.url}/3.0", "password": DEFAULT_MAILCHIMP_API_KEY,
                                            "extra": FAST_RETRIES}}
    sync = sync_of(project, "vip", "mailchimp_newsletter")
    planned = run(project, postgres, connections, sync, DAY_2, dry_run=True, sample_size=10_000).plan.samples["add"]
    assert len(planned) >= 2
    bad = planned[0]
    postgres.execute(f"UPDATE customers SET email = 'not-an-email' WHERE customer_id = {int(bad)}")
    at(monkeypatch, dt.datetime(2026, 8, 1))
    old = run(project, postgres, connections, sync, DAY_1, batch_size=20)
    at(monkeypatch, THE_3RD)

    record = run(project, postgres, connections, sync, DAY_2, batch_size=20, log_retention_days=90)

    entries = read_sync_log(postgres, sync_id=sync.id, limit=10_000)
    assert entries and {e["run_id"] for e in entries} == {record.run_id}  # the August run's rows are gone
    assert old.succeeded["add"] > 0
    accepted = [e for e in entries if e["status"] == "accepted"]
    assert len(accepted) == sum(record.succeeded.values())
    [refused] = read_sync_log(postgres, customer_key=bad, since=dt.datetime(2026, 12, 3))
    assert (refused["action"], refused["status"], refused["destination"]) == ("add", "rejected", "mailchimp_newsletter")
    assert refused["error_code"] and refused["logged_at"] == THE_3RD
    state = dict(postgres.query(f"SELECT customer_key, row_hash FROM segprovider_sync_state "
                                f"WHERE sync_id = '{sync.id}' AND in_destination"))
    assert all(state[e["customer_key"]] == e["row_hash"] for e in accepted if e["action"] == "add")

"""A killed sync is visible, and refusals for a missing identity stop counting (issue #17), on the sandbox.

A run writes its record as ``running`` when it starts; one killed before its end (SIGKILL: no ``finally``
runs) stays ``running`` until the next run of the sync marks it ``crashed``. Rejections for a missing
identity are counted up to ``max_attempts``, like every refusal, and never keep a customer from being sent
once they have an identity.
"""

from __future__ import annotations

import pytest

from airflow_segprovider.core.state.sync import RUNS
from airflow_segprovider.core.sync import SyncEngine, SyncOptions
from airflow_segprovider.core.sync.record import CRASHED_ERROR
from airflow_segprovider.destinations.connection import build_client
from support.sync_constants import DAY_2

pytestmark = pytest.mark.integration


class Killed(BaseException):
    """Stands for a SIGKILL: the run stops, and nothing after this point (no ``finally``) is recorded."""


def sync_of(project, destination):
    return next(s for s in project.syncs if s.segment == "vip" and s.destination == destination)


def run(project, warehouse, connections, sync, engine=None, run_id=None, **options):
    client = build_client(project, sync, connections[sync.destination])
    try:
        return (engine or SyncEngine(project, warehouse)).run(sync, client, DAY_2, options=SyncOptions(**options),
                                                             run_id=run_id)
    finally:
        client.close()


def runs(warehouse, sync) -> dict[str, tuple]:
    return {run_id: (status, finished_at, error) for run_id, status, finished_at, error in warehouse.query(
        f"SELECT run_id, status, finished_at, error FROM {RUNS} WHERE sync_id = '{sync.id}'")}


def killed_engine(project, warehouse, monkeypatch) -> SyncEngine:
    """An engine whose run dies while sending, before it can write its final record."""
    engine = SyncEngine(project, warehouse)
    write_run = engine._write_run

    def only_the_start(record, started_at, *, finished=True):
        if not finished:
            write_run(record, started_at, finished=False)

    def die(*args, **kwargs):
        raise Killed()

    monkeypatch.setattr(engine, "_write_run", only_the_start)
    monkeypatch.setattr(engine, "_execute", die)
    return engine


def test_a_killed_run_is_visible_and_the_next_run_marks_it_crashed(
        project, warehouse, sandbox, connections, monkeypatch):
    sync = sync_of(project, "mailchimp_newsletter")
    with pytest.raises(Killed):
        run(project, warehouse, connections, sync, engine=killed_engine(project, warehouse, monkeypatch),
            run_id="killed")
    assert runs(warehouse, sync) == {"killed": ("running", None, None)}

    # a dry run does not judge: it may run beside a real one
    run(project, warehouse, connections, sync, dry_run=True, run_id="preview")
    assert runs(warehouse, sync)["killed"][0] == "running"

    after = run(project, warehouse, connections, sync, run_id="after")

    recorded = runs(warehouse, sync)
    assert recorded["killed"] == ("crashed", None, CRASHED_ERROR)
    assert recorded["after"][0] == after.status == "succeeded" and recorded["after"][1] is not None
    assert after.succeeded["add"] > 0  # it resumed: nothing had been sent by the killed run


def test_a_run_in_progress_has_a_running_record(project, warehouse, sandbox, connections, monkeypatch):
    sync = sync_of(project, "hubspot_crm")
    engine = SyncEngine(project, warehouse)
    seen = []
    execute = engine._execute

    def looking(*args, **kwargs):
        seen.append(runs(warehouse, sync))
        return execute(*args, **kwargs)

    monkeypatch.setattr(engine, "_execute", looking)
    run(project, warehouse, connections, sync, engine=engine, run_id="live")
    assert seen == [{"live": ("running", None, None)}]
    assert runs(warehouse, sync)["live"][0] == "succeeded"


def test_missing_identity_rejections_stop_counting_at_max_attempts(project, warehouse, sandbox, connections):
    sync = sync_of(project, "hubspot_crm")
    key = min(run(project, warehouse, connections, sync, dry_run=True, sample_size=1).plan.samples["add"])
    email = warehouse.query(f"SELECT email FROM customers WHERE customer_id = {int(key)}")[0][0]
    warehouse.execute(f"UPDATE customers SET email = NULL WHERE customer_id = {int(key)}")

    for _ in range(5):
        run(project, warehouse, connections, sync, max_attempts=3)

    assert warehouse.query(f"SELECT error_code, attempts FROM segprovider_rejected_records "
                           f"WHERE sync_id = '{sync.id}' AND customer_key = '{key}'") == [("missing_identity", 3)]
    assert warehouse.query(f"SELECT COUNT(*) FROM segprovider_sync_log WHERE sync_id = '{sync.id}' "
                           f"AND customer_key = '{key}' AND action = 'reject'") == [(3,)]

    # given an identity, the customer is sent at once: a missing identity never exhausts sending
    warehouse.execute(f"UPDATE customers SET email = '{email}' WHERE customer_id = {int(key)}")
    record = run(project, warehouse, connections, sync, max_attempts=3)
    assert record.succeeded["add"] == 1
    assert warehouse.query(f"SELECT COUNT(*) FROM segprovider_rejected_records WHERE customer_key = '{key}'") == [(0,)]
    assert email.lower() in {e.lower() for e in sandbox.state.hubspot_list_emails(sandbox.fixtures.hubspot_list_id)}

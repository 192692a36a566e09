"""A deployment on real Airflow services, driven through the REST API as the UI drives it.

The tests share one installation (see ``conftest.py``) and run in this file's order: data landed with
``segprovider land`` (dated today), connections and the warehouse pool created through the REST API.

**A backfill of three past dates**, created as the UI's "Run backfill" dialog does.

The api-server, scheduler (LocalExecutor) and dag-processor run as subprocesses; the destinations are the
sandbox on loopback. Unpausing the DAG (``catchup=False``) first makes the scheduler run the latest
interval, which syncs for real: that run is the "latest run" a backfill must leave alone, and the requests
it makes show that the sandbox is wired in, so "zero requests" from the backfill means something.

The backfill must then write one snapshot per backfilled interval (``as_of = data_interval_end``) and make
no destination call at all: the syncs skip, and so does everything that would ask a destination for counts.

**A broken segment** then holds only its own syncs, and the alert, signed, reaches the webhook receiver
with the gate's observed values. **A missing pool** fails the run at once instead of leaving it queued.

Airflow's REST API: https://airflow.apache.org/docs/apache-airflow/stable/stable-rest-api-ref.html (dag runs
with ``logical_date: null``, backfills, connections, pools).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

import duckdb
import pytest
import requests

from support.airflow_services import FINISHED_RUN_STATES, latest_midnight, task_log, wait_for

if TYPE_CHECKING:
    from conftest import RunningAirflow

    from segprovider_sandbox import RunningSandbox

DAG_ID = "segments_centralized"
# Three past days before the latest interval, leaving a gap (2026-11-20..22 when today is 2026-11-24).
BACKFILL_FROM = latest_midnight() - dt.timedelta(days=4)
BACKFILL_TO = latest_midnight() - dt.timedelta(days=2)
# What a backfill run must do with each task: recompute what lives in the warehouse, skip whatever
# talks to a destination (the syncs, and the counts asked of destinations before and after them).
RECOMPUTED = "success"
NOT_SENT = "skipped"
EXPECTED_IN_BACKFILL = {
    "gate_freshness": RECOMPUTED, "gate_types": RECOMPUTED, "evaluate": RECOMPUTED,
    "gate_segment_size": RECOMPUTED, "gate_consent": RECOMPUTED,
    "gate_cross_system_counts": NOT_SENT, "sync": NOT_SENT, "check_post_sync_counts": NOT_SENT,
    "report_held": RECOMPUTED,  # reads only XCom: nothing was held
}


def _expected_in_backfill(task_id: str) -> str | None:
    if task_id.startswith("ingest."):
        return RECOMPUTED
    return EXPECTED_IN_BACKFILL.get(task_id.rsplit(".", 1)[-1])  # a destination's branch: <destination>.<task>


def _parse(timestamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(dt.timezone.utc)


def _map_index(ti: dict[str, Any]) -> int:
    index = ti.get("map_index")
    return -1 if index is None else int(index)


def _label(ti: dict[str, Any]) -> str:
    index = _map_index(ti)
    return f"{ti['task_id']}[{index}]" if index >= 0 else ti["task_id"]


def _logs_of(airflow: RunningAirflow, run_id: str, tis: list[dict[str, Any]]) -> str:
    home = airflow.installation.home
    return "\n".join(f"=== {_label(ti)} ({ti['state']}):\n"
                     f"{task_log(home, DAG_ID, run_id, ti['task_id'], _map_index(ti))}"
                     for ti in tis)


def _finished_runs(airflow: RunningAirflow, run_type: str, expected: int) -> list[dict[str, Any]] | None:
    runs = airflow.api.dag_runs(DAG_ID, run_type=run_type)
    if len(runs) >= expected and all(run["state"] in FINISHED_RUN_STATES for run in runs):
        return runs
    return None


def _wait_for_runs(airflow: RunningAirflow, run_type: str, expected: int, *, timeout: float) -> list[dict[str, Any]]:
    """The DAG's ``run_type`` runs once ``expected`` of them exist and all are finished; on a timeout, where
    each run got stuck."""
    try:
        return wait_for(f"{expected} {run_type} run(s) of {DAG_ID} to finish",
                        lambda: _finished_runs(airflow, run_type, expected), timeout=timeout, interval=2.0,
                        services=airflow.services)
    except TimeoutError as exc:
        progress = [f"{run['dag_run_id']} {run['state']}: "
                    f"{ {_label(ti): ti['state'] for ti in airflow.api.task_instances(DAG_ID, run['dag_run_id'])} }"
                    for run in airflow.api.dag_runs(DAG_ID, run_type=run_type)]
        pytest.fail(f"{exc}\n" + "\n".join(progress or ["(no run created)"]))


def _assert_succeeded(airflow: RunningAirflow, run: dict[str, Any]) -> list[dict[str, Any]]:
    tis = airflow.api.task_instances(DAG_ID, run["dag_run_id"])
    if run["state"] != "success":
        unhappy = [ti for ti in tis if ti["state"] not in ("success", "skipped")]
        pytest.fail(f"{run['run_type']} run {run['dag_run_id']} ended {run['state']}; tasks: "
                    f"{ {_label(ti): ti['state'] for ti in tis} }\n{_logs_of(airflow, run['dag_run_id'], unhappy)}")
    return tis


@pytest.mark.integration
@pytest.mark.slow
def test_backfill_of_three_past_dates_writes_three_snapshots_and_makes_no_destination_call(  # noqa: PLR0915
    running_airflow: RunningAirflow, sandbox: RunningSandbox,
) -> None:
    airflow, api = running_airflow, running_airflow.api
    timings: dict[str, float] = {}
    started = time.monotonic()

    dag = wait_for(f"the dag-processor to parse {DAG_ID}", lambda: _dag_if_parsed(airflow), timeout=120,
                   services=airflow.services)
    assert dag["is_paused"], "a new DAG starts paused: nothing may have run before the test unpauses it"
    timings["dag parsed"] = time.monotonic() - started

    # The latest interval: created by the scheduler on unpause, a normal run that syncs.
    api.request("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
    (scheduled,) = _wait_for_runs(airflow, "scheduled", 1, timeout=180)
    assert _parse(scheduled["logical_date"]) == latest_midnight(), scheduled
    _assert_succeeded(airflow, scheduled)
    timings["scheduled run"] = time.monotonic() - started
    before_backfill = sandbox.state.requests()
    assert any(r.vendor in ("mailchimp", "hubspot", "meta") for r in before_backfill), (
        "the scheduled run made no destination request: the sandbox is not wired in, so the check below "
        "would prove nothing")
    last_request_id = before_backfill[-1].id

    # As the UI's "Run backfill" dialog does: missing runs only, one at a time.
    backfill = api.request("POST", "/backfills", json={
        "dag_id": DAG_ID, "from_date": BACKFILL_FROM.isoformat(), "to_date": BACKFILL_TO.isoformat(),
        "reprocess_behavior": "none", "max_active_runs": 1, "run_backwards": False, "dag_run_conf": {},
    })
    assert backfill["dag_id"] == DAG_ID and backfill["completed_at"] is None, backfill
    runs = _wait_for_runs(airflow, "backfill", 3, timeout=240)
    # The scheduler marks a backfill complete on a 30 s timer once its runs are done.
    wait_for(f"backfill {backfill['id']} to be marked complete",
             lambda: api.get(f"/backfills/{backfill['id']}")["completed_at"], timeout=45, interval=2.0,
             services=airflow.services)
    timings["backfill"] = time.monotonic() - started

    # One run per requested date, each successful.
    assert sorted(_parse(run["logical_date"]) for run in runs) == [BACKFILL_FROM + dt.timedelta(days=n)
                                                                    for n in range(3)]
    task_instances = {run["dag_run_id"]: _assert_succeeded(airflow, run) for run in runs}

    # One snapshot per backfilled interval (as_of = data_interval_end), written by that interval's run and
    # covering the same segments as the latest run's; no sync recorded for any of them.
    con = duckdb.connect(str(airflow.installation.warehouse), read_only=True)
    try:
        snapshots = con.execute("SELECT run_id, as_of, LIST(segment ORDER BY segment) FROM segprovider_snapshots "
                                "GROUP BY 1, 2").fetchall()
        synced_as_ofs = {row[0] for row in con.execute("SELECT DISTINCT as_of FROM segprovider_sync_runs").fetchall()}
    finally:
        con.close()
    by_run = {run_id: (as_of, segments) for run_id, as_of, segments in snapshots}
    latest_segments = by_run[scheduled["dag_run_id"]][1]
    for run in runs:
        as_of = _parse(run["data_interval_end"]).replace(tzinfo=None)
        assert by_run.get(run["dag_run_id"]) == (as_of, latest_segments), (
            f"backfill run {run['dag_run_id']} should have written the snapshot at as_of {as_of}; "
            f"snapshots (run, as_of, segments): {snapshots}")
    backfilled_as_ofs = {by_run[run["dag_run_id"]][0] for run in runs}
    assert len(backfilled_as_ofs) == 3
    assert not backfilled_as_ofs & synced_as_ofs, f"a backfilled as_of was synced: {sorted(synced_as_ofs)}"

    # Not one request reached the sandbox while the backfill ran.
    during_backfill = [r for r in sandbox.state.requests() if r.id > last_request_id]
    assert not during_backfill, (
        f"the backfill made {len(during_backfill)} destination requests: "
        f"{[(r.vendor, r.method, r.path) for r in during_backfill[:12]]}")

    # Task by task: history recomputed, every destination task skipped.
    for run_id, tis in task_instances.items():
        states = {_label(ti): ti["state"] for ti in tis}
        wrong = [ti for ti in tis if ti["state"] != _expected_in_backfill(ti["task_id"])]
        assert not wrong, (f"backfill run {run_id}: tasks {states}; expected {EXPECTED_IN_BACKFILL} and the "
                           f"ingest group successful\n{_logs_of(airflow, run_id, wrong)}")
        assert sum(1 for label in states if label.endswith(".sync")) == 3, states
    # As the UI's "Trigger" button does by default in Airflow 3: a run with no logical date, so no data
    # interval (POST /api/v2/dags/{dag_id}/dagRuns with "logical_date": null). It evaluates at its run_after.
    triggered = api.request("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {}})
    assert triggered["logical_date"] is None, triggered
    (manual,) = _wait_for_runs(airflow, "manual", 1, timeout=300)
    _assert_succeeded(airflow, manual)
    con = duckdb.connect(str(airflow.installation.warehouse), read_only=True)
    try:
        (manual_as_of,) = con.execute("SELECT DISTINCT as_of FROM segprovider_snapshots WHERE run_id = ?",
                                      [manual["dag_run_id"]]).fetchone()
    finally:
        con.close()
    assert manual_as_of == _parse(manual["run_after"]).astimezone(dt.timezone.utc).replace(tzinfo=None), manual
    timings["manual run"] = time.monotonic() - started
    timings["total"] = time.monotonic() - started
    print("timings (s since the services were healthy): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))


def _sync_runs_of(airflow: RunningAirflow, dag_run_id: str) -> dict[str, str]:
    con = duckdb.connect(str(airflow.installation.warehouse), read_only=True)
    try:
        return dict(con.execute("SELECT sync_id, status FROM segprovider_sync_runs WHERE run_id LIKE ?",
                                [f"{dag_run_id}__%"]).fetchall())
    finally:
        con.close()


def _trigger_now(airflow: RunningAirflow) -> dict[str, Any]:
    """A run as the UI's Trigger button makes it (no logical date), waited for until it finished."""
    triggered = airflow.api.request("POST", f"/dags/{DAG_ID}/dagRuns", json={"logical_date": None, "conf": {}})
    run_id = triggered["dag_run_id"]

    def finished() -> dict[str, Any] | None:
        run = airflow.api.get(f"/dags/{DAG_ID}/dagRuns/{run_id}")
        return run if run["state"] in FINISHED_RUN_STATES else None

    return wait_for(f"run {run_id} to finish", finished, timeout=300, interval=2.0, services=airflow.services)


@pytest.mark.integration
@pytest.mark.slow
def test_a_broken_segment_holds_only_its_syncs_and_a_signed_alert_arrives_with_the_observed_values(
    running_airflow: RunningAirflow, sandbox: RunningSandbox,
) -> None:
    airflow = running_airflow
    wait_for(f"the dag-processor to parse {DAG_ID}", lambda: _dag_if_parsed(airflow), timeout=120,
             services=airflow.services)
    airflow.api.request("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
    healthy = _trigger_now(airflow)  # the segments' sizes before the break: the gate compares with them
    _assert_succeeded(airflow, healthy)
    alerts_before = len(sandbox.state.webhook_batches("alerts"))
    # a bad edit of the definition, read by the tasks of the next run: nobody qualifies for vip any more
    value = airflow.installation.dags_folder / "segments_project" / "segments" / "value.yml"
    original = value.read_text()
    value.write_text(original.replace("op: gte, value: 2000", "op: gte, value: 2000000000")
                     .replace("op: gt, value: 500,", "op: gt, value: 500000000,"))
    try:
        broken = _trigger_now(airflow)
    finally:
        value.write_text(original)
    tis = {_label(ti): ti["state"] for ti in airflow.api.task_instances(DAG_ID, broken["dag_run_id"])}
    assert broken["state"] == "failed", tis
    assert tis["gate_segment_size"] == "success" and tis["report_held"] == "failed", tis
    assert all(state == "success" for label, state in tis.items() if label.endswith(".sync")), tis
    runs = _sync_runs_of(airflow, broken["dag_run_id"])
    held = {sync_id for sync_id, status in runs.items() if status == "held"}
    assert held == {sync_id for sync_id in runs if sync_id.startswith("vip__")} and held, runs
    assert all(status == "succeeded" for sync_id, status in runs.items() if sync_id not in held), runs

    # The alert of report_held, delivered to the receiver (which refuses an unsigned or wrongly signed body).
    def held_alert() -> dict[str, Any] | None:
        for batch in sandbox.state.webhook_batches("alerts")[alerts_before:]:
            if batch.get("task_id") == "report_held" and batch.get("run_id") == broken["dag_run_id"]:
                return batch
        return None

    alert = wait_for("the report_held alert at the webhook receiver", held_alert, timeout=60,
                     services=airflow.services)
    assert "vip" in alert["error"] and alert["gate"] == "segment_size", alert
    observed = [f["observed"] for f in alert["failed_expectations"]]
    assert observed and all(o is not None for o in observed), alert
    # the receiver records a batch only when its X-Segprovider-Signature is the HMAC of the body under the
    # shared secret (a 401 otherwise): the alert arrived signed
    posted = [r for r in sandbox.state.requests() if r.path.endswith("/webhook/alerts") and '"report_held"' in r.body]
    assert posted and all(r.status == 200 for r in posted), [(r.path, r.status) for r in posted]


@pytest.mark.integration
@pytest.mark.slow
def test_a_missing_warehouse_pool_fails_the_run_at_once_and_says_how_to_create_it(
    running_airflow: RunningAirflow,
) -> None:
    from support.airflow_services import WAREHOUSE_POOL as POOL

    airflow = running_airflow
    wait_for(f"the dag-processor to parse {DAG_ID}", lambda: _dag_if_parsed(airflow), timeout=120,
             services=airflow.services)
    airflow.api.request("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
    airflow.api.request("DELETE", f"/pools/{POOL}")
    try:
        started = time.monotonic()
        run = _trigger_now(airflow)
        took = time.monotonic() - started
    finally:
        airflow.api.request("POST", "/pools", json={"name": POOL, "slots": 1})
    assert run["state"] == "failed", run
    assert took < 120, f"the run took {took:.0f}s to fail"
    assert POOL in (run.get("note") or ""), run
    assert "airflow pools set" in run["note"]
    tis = airflow.api.task_instances(DAG_ID, run["dag_run_id"])
    assert not [ti for ti in tis if ti["state"] == "success" and ti["pool"] == POOL], "a task ran without its pool"


def _dag_if_parsed(airflow: RunningAirflow) -> dict[str, Any] | None:
    errors = airflow.api.get("/importErrors")
    if errors.get("total_entries"):
        pytest.fail(f"the DAG folder has import errors: {errors['import_errors']}")
    try:
        return airflow.api.get(f"/dags/{DAG_ID}")
    except requests.HTTPError as exc:
        if exc.response is not None and exc.response.status_code == 404:
            return None
        raise

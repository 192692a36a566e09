"""``segments_centralized`` end to end with ``dag.test()``: DuckDB, the sandbox, gates, alerts, backfills."""

from __future__ import annotations

import datetime as dt

import pytest

from support.dag_world import DAY_1, DAY_2, World

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def held(world: World) -> dict[str, set[str]]:
    """What each sync's list or audience holds, read from the sandbox (lowercased emails or hashes)."""
    from segprovider_sandbox import DemoFixtures

    fx = DemoFixtures()
    state = world.sandbox.state
    mailchimp_segments = {name: sid for sid, name in state_segments(world, fx.mailchimp_list_id)}
    return {
        "vip__mailchimp_newsletter": {e.lower() for e in state.mailchimp_segment_emails(
            fx.mailchimp_list_id, mailchimp_segments["vip"])},
        "vip__hubspot_crm": {e.lower() for e in state.hubspot_list_emails(fx.hubspot_list_id)},
        "win_back__meta_ads": state.meta_audience_hashes(fx.meta_audience_id),
        "high_intent__meta_ads": state.meta_audience_hashes("23850000000000002"),
    }


def state_segments(world: World, list_id: str) -> list[tuple[str, str]]:
    import requests

    from segprovider_sandbox import DEFAULT_MAILCHIMP_API_KEY

    response = requests.get(f"{world.sandbox.url}/3.0/lists/{list_id}/segments", params={"count": 1000},
                            auth=("any", DEFAULT_MAILCHIMP_API_KEY), timeout=10)
    response.raise_for_status()
    return [(str(s["id"]), s["name"]) for s in response.json()["segments"]]


def synced_state(world: World) -> dict[str, int]:
    return dict(world.query("SELECT sync_id, COUNT(*) FILTER (WHERE in_destination) FROM segprovider_sync_state "
                            "GROUP BY 1"))


def test_two_days_land_members_everywhere_and_day_two_sends_only_the_diff(world: World) -> None:
    states = world.run(DAY_1)
    assert all(state == "success" for state in states.values()), states
    day1 = held(world)
    state1 = synced_state(world)
    # every destination holds exactly what the sync state says it acknowledged, and it is not empty
    for sync_id, members in day1.items():
        assert members and len(members) == state1[sync_id], sync_id
    requests_before = len(world.sandbox.state.requests())

    states = world.run(DAY_2)
    assert all(state == "success" for state in states.values()), states
    runs = world.query("SELECT sync_id, planned_add, planned_remove, succeeded_add, succeeded_remove "
                       "FROM segprovider_sync_runs WHERE as_of = TIMESTAMP '2026-11-24' ORDER BY sync_id")
    day2 = held(world)
    for sync_id, planned_add, planned_remove, added, removed in runs:
        assert (added, removed) == (planned_add, planned_remove), sync_id
        if sync_id in day2:  # the list changed by exactly what was sent
            assert len(day2[sync_id]) == len(day1[sync_id]) + added - removed, sync_id
    # day two is a diff: far fewer member records than day one went over the wire
    day2_requests = world.sandbox.state.requests()[requests_before:]
    sent_day1 = sum(r.body.count("@") for r in world.sandbox.state.requests()[:requests_before])
    sent_day2 = sum(r.body.count("@") for r in day2_requests)
    assert sent_day2 < sent_day1 / 5
    assert not world.alerts
    # sales_priority is reconciled (segments_distributed owns it): two days of runs never touched its lists
    from segprovider_sandbox import DemoFixtures

    fx = DemoFixtures()
    assert not any(sync_id.startswith("sales_priority__") for sync_id in synced_state(world))
    assert not world.query("SELECT sync_id FROM segprovider_sync_runs WHERE segment = 'sales_priority'")
    assert not world.sandbox.state.mailchimp_segment_emails(fx.mailchimp_list_id, fx.reconciled_mailchimp_segment_id)
    assert not world.sandbox.state.hubspot_list_emails(fx.reconciled_hubspot_list_id)
    assert not [r.path for r in world.sandbox.state.requests()
                if f"/segments/{fx.reconciled_mailchimp_segment_id}" in r.path
                or f"/lists/{fx.reconciled_hubspot_list_id}/" in r.path]


def test_a_stale_source_stops_every_sync_and_alerts(world: World) -> None:
    # a year after the newest data: every source is stale at as_of
    states = world.run(dt.datetime(2027, 11, 24, tzinfo=dt.timezone.utc))
    assert states["gate_freshness"] == "failed"
    assert all(state in ("upstream_failed", "None") for task, state in states.items() if task.endswith(".sync"))
    assert world.destination_writes() == []
    alert = next(a for a in world.alerts if a["task_id"] == "gate_freshness")
    assert alert["gate"] == "freshness" and alert["failed_expectations"]
    assert any(f["observed"] for f in alert["failed_expectations"])


def collapse_vip(world: World) -> None:
    """A bad edit of the definition: nobody qualifies for ``vip`` any more."""
    value = world.project / "segments" / "value.yml"
    value.write_text(value.read_text().replace("op: gte, value: 2000", "op: gte, value: 2000000000")
                     .replace("op: gt, value: 500,", "op: gt, value: 500000000,"))
    world._dag = None


def test_a_collapsed_segment_holds_only_its_own_syncs_and_its_opt_outs_still_go_out(world: World) -> None:
    assert all(s == "success" for s in world.run(DAY_1).values())
    before = held(world)
    # one vip member on the newsletter withdraws e-mail consent before day two
    key, email = world.query(
        "SELECT s.customer_key, s.identity FROM segprovider_sync_state s WHERE s.sync_id = 'vip__mailchimp_newsletter' "
        "AND s.in_destination ORDER BY s.customer_key LIMIT 1")[0]
    import duckdb

    con = duckdb.connect(str(world.warehouse))
    con.execute(f"INSERT INTO consents (customer_id, channel, opted_in, updated_at) VALUES ({int(key)}, 'email', "
                "FALSE, TIMESTAMP '2026-11-23 12:00:00')")
    con.close()
    collapse_vip(world)
    states = world.run(DAY_2)
    # the gate held vip; every sync task ran; the last task fails the run and alerts with what was held
    assert states["gate_segment_size"] == "success", states
    assert all(state == "success" for task, state in states.items() if task.endswith(".sync")), states
    assert states["report_held"] == "failed"
    runs = dict(world.query("SELECT sync_id, status FROM segprovider_sync_runs WHERE as_of = TIMESTAMP '2026-11-24'"))
    vip_syncs = {sync_id for sync_id in runs if sync_id.startswith("vip__")}
    assert vip_syncs and all(runs[sync_id] == "held" for sync_id in vip_syncs), runs
    others = {sync_id: status for sync_id, status in runs.items() if sync_id not in vip_syncs}
    assert others and all(status == "succeeded" for status in others.values()), runs
    after = held(world)
    # nothing of vip's collapse reached the tools: the list lost only the member who opted out
    assert after["vip__mailchimp_newsletter"] == before["vip__mailchimp_newsletter"] - {email.lower()}
    assert after["vip__hubspot_crm"] == before["vip__hubspot_crm"] - {email.lower()}  # e-mail channel too
    alert = next(a for a in world.alerts if a["task_id"] == "report_held")
    assert "vip" in alert["error"] and "vip__mailchimp_newsletter" in alert["error"]
    assert alert["gate"] == "segment_size"
    assert any(f["observed"] is not None for f in alert["failed_expectations"])
    assert not [a for a in world.alerts if a["task_id"] != "report_held"]


def test_block_all_stops_every_sync_when_one_segment_collapses(world: World) -> None:
    assert all(s == "success" for s in world.run(DAY_1).values())
    before = held(world)
    writes = len(world.destination_writes())
    project_file = world.project / "segprovider_project.yml"
    project_file.write_text(project_file.read_text().replace("  version: 1\n", "  version: 1\n  on_gate_failure: block_all\n"))
    collapse_vip(world)
    states = world.run(DAY_2)
    assert states["gate_segment_size"] == "failed"
    assert "report_held" not in states
    assert all(state in ("upstream_failed", "None") for task, state in states.items() if task.endswith(".sync"))
    assert len(world.destination_writes()) == writes
    assert held(world)["vip__mailchimp_newsletter"] == before["vip__mailchimp_newsletter"]
    alert = next(a for a in world.alerts if a["task_id"] == "gate_segment_size")
    assert any(f["observed"] is not None for f in alert["failed_expectations"])


def test_lifetime_value_loaded_as_text_stops_every_sync(world: World) -> None:
    import duckdb

    # an upstream job recreated the table with the column as text, outside our typed ingest
    con = duckdb.connect(str(world.warehouse))
    con.execute("CREATE TABLE customers (customer_id BIGINT, email VARCHAR, first_name VARCHAR, country VARCHAR, "
                "plan VARCHAR, lifetime_value VARCHAR, is_employee BOOLEAN, birth_date DATE, "
                "signup_at TIMESTAMP, last_seen_at TIMESTAMP)")
    con.close()
    states = world.run(DAY_2)
    assert states["gate_types"] == "failed"
    assert world.destination_writes() == []
    alert = next(a for a in world.alerts if a["task_id"] == "gate_types")
    assert "lifetime_value" in str(alert["failed_expectations"])


def test_a_backfill_of_three_past_dates_writes_snapshots_and_never_calls_a_destination(world: World) -> None:
    assert all(s == "success" for s in world.run(DAY_2).values())  # the latest run syncs
    writes = len(world.destination_writes())
    for day in (dt.datetime(2026, 11, 20, tzinfo=dt.timezone.utc), dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc),
                dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)):
        states = world.run(day)
        assert all(s.endswith("skipped") for t, s in states.items() if t.endswith(".sync")), states
        assert states["evaluate"] == "success"
    snapshots = {row[0] for row in world.query("SELECT DISTINCT as_of FROM segprovider_snapshots")}
    assert {d.day for d in snapshots} == {20, 21, 22, 24}
    assert len(world.destination_writes()) == writes


def test_a_run_triggered_without_a_logical_date_evaluates_at_its_run_after(world: World) -> None:
    # Airflow 3 triggers a manual run from the UI or the REST API with no logical date by default, and
    # such a run has no data interval: data_interval_end is not in the template context
    # (https://airflow.apache.org/docs/apache-airflow/stable/templates-ref.html: "data_interval_end ...
    # only available when the Dag run has a logical date"). dag.test(logical_date=None) creates that run.
    from support.airflow_world import task_states

    dagrun = world.dag.test(logical_date=None, run_after=DAY_2)
    assert getattr(dagrun, "logical_date", "set") is None
    states = task_states(dagrun)
    assert states and all(state == "success" for state in states.values()), states
    assert world.query("SELECT DISTINCT as_of FROM segprovider_snapshots") == [(DAY_2.replace(tzinfo=None),)]
    assert world.query("SELECT COUNT(*) FROM segprovider_sync_runs WHERE as_of = TIMESTAMP '2026-11-24'")[0][0] > 0


def test_the_drift_monitor_right_after_a_clean_sync_reports_no_drift(world: World) -> None:
    """Meta reports an approximate, rounded count (a range): a clean sync must still read as no drift."""
    import os
    from pathlib import Path

    from airflow_segprovider.factory.monitor import build_drift_monitor_dag
    from support.airflow_world import task_states

    assert all(s == "success" for s in world.run(DAY_1).values())
    (Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "segments_drift_monitor.py").write_text(
        "from airflow_segprovider.factory.monitor import build_drift_monitor_dag\n"
        f"dag = build_drift_monitor_dag({str(world.project)!r}, dag_id='segments_drift_monitor')\n")
    monitor = build_drift_monitor_dag(world.project, dag_id="segments_drift_monitor")
    states = task_states(monitor.test(logical_date=DAY_1 + dt.timedelta(hours=1)))
    assert states == {"check_drift": "success"}, states
    assert not world.alerts
    rows = world.query("SELECT kind, name, expected, reported, status FROM segprovider_drift_reports")
    synced = {row[1]: row for row in rows if row[0] == "synced_segment"}
    assert "high_intent__meta_ads" in synced and "vip__mailchimp_newsletter" in synced, rows
    assert not [row for row in rows if row[4] in ("drift", "stale", "mismatch")], rows
    # only the centralized model ran: the hybrid hub was never built, which is said, not alerted as drift
    assert ("hub", "unknown") in {(row[0], row[4]) for row in rows}, rows


def test_a_destination_with_a_wrong_token_fails_alone_and_every_other_destination_syncs(
    world: World, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json
    import os

    meta = json.loads(os.environ["AIRFLOW_CONN_SEGPROVIDER_META"])
    monkeypatch.setenv("AIRFLOW_CONN_SEGPROVIDER_META", json.dumps({**meta, "password": "a-revoked-token"}))
    states = world.run(DAY_1)
    assert states["meta_ads.sync"] == "failed", states
    for destination in ("mailchimp_newsletter", "hubspot_crm"):
        branch = {task: state for task, state in states.items() if task.startswith(destination + ".")}
        assert branch and all(state == "success" for state in branch.values()), states
    assert states["report_held"] == "failed"  # the run's last task keeps the run failed
    synced = synced_state(world)
    assert synced.get("vip__mailchimp_newsletter") and synced.get("vip__hubspot_crm"), synced
    assert not any(sync_id.endswith("__meta_ads") and count for sync_id, count in synced.items()), synced
    alert = next(a for a in world.alerts if a["task_id"] == "meta_ads.sync")
    assert "401" in alert["error"] or "token" in alert["error"].lower(), alert["error"]
    # the failure is terminal: no retry was spent on a refused token
    assert alert["try_number"] == 1

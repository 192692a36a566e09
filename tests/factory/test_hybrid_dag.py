"""``segments_hybrid`` and ``segments_drift_monitor`` end to end with ``dag.test()`` against the sandbox."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
import requests

from support.hybrid_world import DAY_1, DAY_2, HybridWorld, make_world

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LIST_ID = "a1b2c3d4e5"


def mailchimp(world: HybridWorld, method: str, path: str, **kwargs):
    from segprovider_sandbox import DEFAULT_MAILCHIMP_API_KEY

    response = requests.request(method, f"{world.sandbox.url}/3.0{path}", auth=("any", DEFAULT_MAILCHIMP_API_KEY),
                                timeout=10, **kwargs)
    response.raise_for_status()
    return response.json()


def saved_segment(world: HybridWorld, name: str) -> dict:
    segments = mailchimp(world, "GET", f"/lists/{LIST_ID}/segments", params={"type": "saved"})["segments"]
    return next(s for s in segments if s["name"] == name)


def saved_members(world: HybridWorld, segment_id: int) -> set[str]:
    page = mailchimp(world, "GET", f"/lists/{LIST_ID}/segments/{segment_id}/members", params={"count": 1000})
    return {m["email_address"].lower() for m in page["members"]}


def all_success(states: dict[str, str]) -> bool:
    return all(state == "success" for state in states.values())


def test_a_changed_lifetime_value_reaches_the_spokes_typed_and_moves_the_spokes_own_segment(
        hybrid_world: HybridWorld) -> None:
    world = hybrid_world
    states = world.run(DAY_1)
    assert all_success(states), states
    high_value = saved_segment(world, "high_value")
    # the spoke's count is the hub's evaluation of the same rule on the same profiles
    (expected,) = world.query(
        "SELECT COUNT(*) FROM segprovider_hub_profiles h JOIN segprovider_sync_state s ON s.customer_key = "
        "h.customer_key AND s.sync_id = 'hub__mailchimp_newsletter' WHERE h.lifetime_value > 2000")[0]
    assert high_value["member_count"] == expected > 0
    # a consented, pushed customer below the threshold; and a high-value one
    (key, email, ltv), = world.query(
        "SELECT h.customer_key, lower(h.email), h.lifetime_value FROM segprovider_hub_profiles h "
        "JOIN segprovider_sync_state s ON s.customer_key = h.customer_key AND s.sync_id = 'hub__mailchimp_newsletter' "
        "JOIN segprovider_sync_state t ON t.customer_key = h.customer_key AND t.sync_id = 'hub__hubspot_crm' "
        "WHERE h.lifetime_value < 1000 ORDER BY h.customer_key LIMIT 1")
    assert email not in saved_members(world, high_value["id"])
    changed_before = world.query(f"SELECT lifetime_value__changed_at, first_name__changed_at FROM "
                                 f"segprovider_hub_profiles WHERE customer_key = '{key}'")[0]
    before = len(world.sandbox.state.requests())

    world.set_customer(int(key), lifetime_value=5000.0)
    states = world.run(DAY_2)
    assert all_success(states), states

    # the spoke holds the new value with the field's type (a number, not "5000")
    member = world.sandbox.state.mailchimp_member(LIST_ID, email)
    assert isinstance(member["merge_fields"]["LTV"], (int, float)) and member["merge_fields"]["LTV"] == 5000
    contact = world.sandbox.state.hubspot_contact(email)
    assert float(contact["properties"]["lifetime_value"]) == 5000
    # and the spoke's own segment gained the customer
    after_segment = saved_segment(world, "high_value")
    assert after_segment["member_count"] == high_value["member_count"] + 1
    assert email in saved_members(world, high_value["id"])
    # nothing else was sent: one attribute update per spoke, carrying this one customer. Mailchimp's is a batch
    # that adds only new contacts (update_existing false: a batch update would apply a status) and, for this
    # existing contact, a PUT of its merge fields with status_if_new only: a push never changes a status
    writes = world.writes(before)
    assert len(writes) == 3, [(w.method, w.path) for w in writes]
    mc = next(w for w in writes if w.vendor == "mailchimp" and w.method == "POST")
    put = next(w for w in writes if w.vendor == "mailchimp" and w.method == "PUT")
    hs = next(w for w in writes if w.vendor == "hubspot")
    assert mc.path == f"/3.0/lists/{LIST_ID}"
    assert [m["email_address"].lower() for m in json.loads(mc.body)["members"]] == [email]
    assert json.loads(mc.body)["update_existing"] is False
    assert put.path == f"/3.0/lists/{LIST_ID}/members/{hashlib.md5(email.lower().encode()).hexdigest()}"
    assert "status" not in json.loads(put.body) and "merge_fields" in json.loads(put.body)
    assert hs.path.endswith("/contacts/batch/upsert")
    assert [i["id"].lower() for i in json.loads(hs.body)["inputs"]] == [email]
    # freshness: only the changed attribute's changed_at moved, to the load it arrived with
    changed_after = world.query(f"SELECT lifetime_value__changed_at, first_name__changed_at FROM "
                                f"segprovider_hub_profiles WHERE customer_key = '{key}'")[0]
    assert changed_after[0] > changed_before[0] and changed_after[1] == changed_before[1]
    (load_time,) = world.query("SELECT MAX(finished_at) FROM segprovider_source_loads WHERE source = 'crm_customers'")[0]
    assert changed_after[0] == load_time

    # the monitor agrees with the spokes ...
    states = world.run(DAY_2 + dt.timedelta(hours=1), dag_id="segments_drift_monitor")
    assert all_success(states), states
    assert not world.alerts
    # ... until someone edits a contact in Mailchimp behind the hub's back
    victim = sorted(saved_members(world, high_value["id"]))[0]
    mailchimp(world, "POST", f"/lists/{LIST_ID}", json={
        "members": [{"email_address": victim, "status": "subscribed", "merge_fields": {"LTV": 1}}],
        "update_existing": True})
    states = world.run(DAY_2 + dt.timedelta(hours=2), dag_id="segments_drift_monitor")
    assert states["check_drift"] == "failed"
    alert = next(a for a in world.alerts if a["dag_id"] == "segments_drift_monitor")
    assert "mc_high_value" in alert["error"] and "drift" in alert["error"]
    rows = world.query("SELECT kind, name, expected, reported, status FROM segprovider_drift_reports "
                       "WHERE status = 'drift'")
    assert ("spoke_segment", "mc_high_value", after_segment["member_count"], after_segment["member_count"] - 1,
            "drift") in rows


def test_a_spoke_field_of_the_wrong_type_stops_the_push_and_alerts(tmp_path, airflow_db, monkeypatch) -> None:
    # the audience's LTV field was changed to text in Mailchimp: numbers would be compared as text there
    world, stop = make_world(tmp_path, monkeypatch, mailchimp_ltv_type="text")
    try:
        states = world.run(DAY_1)
        assert states["gate_hub_types"] == "failed"
        assert all(s in ("upstream_failed", "None") for t, s in states.items() if t.startswith("push_attributes"))
        assert world.writes() == []
        alert = next(a for a in world.alerts if a["task_id"] == "gate_hub_types")
        assert alert["gate"] == "hub_types"
        observed = json.dumps(alert["failed_expectations"])
        assert "LTV" in observed and "lifetime_value" in observed
    finally:
        stop()


def test_a_stale_source_stops_the_push_and_alerts(hybrid_world: HybridWorld) -> None:
    world = hybrid_world
    # a year after the sources were last loaded: every source is stale at as_of
    states = world.run(dt.datetime(2027, 11, 24, tzinfo=dt.timezone.utc))
    assert states["gate_hub_freshness"] == "failed"
    assert all(s in ("upstream_failed", "None") for t, s in states.items() if t.startswith("push_attributes"))
    assert world.writes() == []
    alert = next(a for a in world.alerts if a["task_id"] == "gate_hub_freshness")
    assert alert["gate"] == "hub_freshness"
    assert any(f["column"] == "source_age_hours" for f in alert["failed_expectations"])

"""State in SQLite: it survives restarts, the request log shows what each vendor received, configs load."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import pytest
import requests

from segprovider_sandbox import (
    DEFAULT_HUBSPOT_TOKEN,
    DEFAULT_MAILCHIMP_API_KEY,
    SandboxConfig,
    SandboxState,
    main,
    serve,
)
from segprovider_sandbox.store.schema import NEVER_REUSED_IDS, RULE_BASED_SCHEMA, SCHEMA, upgrade_never_reused_ids

AUTH = ("anyuser", DEFAULT_MAILCHIMP_API_KEY)


def test_state_survives_a_restart(tmp_path):
    db = tmp_path / "sandbox.db"
    with serve(db_path=db) as first:
        fixtures = first.state.seed_demo_fixtures()
        requests.post(
            f"{first.url}/3.0/lists/{fixtures.mailchimp_list_id}",
            auth=AUTH,
            json={"members": [{"email_address": "kept@example.org", "status": "subscribed"}]},
            timeout=5,
        )
    with serve(db_path=db) as second:
        page = requests.get(f"{second.url}/3.0/lists/{fixtures.mailchimp_list_id}/members", auth=AUTH, timeout=5).json()
        assert [m["email_address"] for m in page["members"]] == ["kept@example.org"]
        # The log survived too: the first run's POST, then this GET.
        assert [r.method for r in second.state.requests("mailchimp")] == ["POST", "GET"]


def test_request_log_records_what_was_sent(sandbox, fixtures):
    requests.post(
        f"{sandbox.url}/3.0/lists/{fixtures.mailchimp_list_id}",
        auth=AUTH,
        params={"skip_merge_validation": "true"},
        json={"members": [{"email_address": "sent@example.org", "status": "subscribed"}]},
        timeout=5,
    )
    requests.get(
        f"{sandbox.url}/crm/v3/lists/101", headers={"Authorization": f"Bearer {DEFAULT_HUBSPOT_TOKEN}"}, timeout=5
    )
    [logged] = sandbox.state.requests("mailchimp")
    assert (logged.method, logged.path, logged.query, logged.status) == (
        "POST",
        f"/3.0/lists/{fixtures.mailchimp_list_id}",
        "skip_merge_validation=true",
        200,
    )
    assert json.loads(logged.body)["members"][0]["email_address"] == "sent@example.org"
    assert [r.vendor for r in sandbox.state.requests()] == ["mailchimp", "hubspot"]
    # The check a privacy test makes: this address never reached any vendor.
    assert not any("never-sent@example.org" in r.body for r in sandbox.state.requests())


def test_a_second_state_object_reads_the_live_database(sandbox, fixtures):
    reader = SandboxState(sandbox.state.db_path)
    try:
        requests.post(
            f"{sandbox.url}/3.0/lists/{fixtures.mailchimp_list_id}",
            auth=AUTH,
            json={"members": [{"email_address": "seen@example.org", "status": "pending"}]},
            timeout=5,
        )
        assert reader.mailchimp_list_emails(fixtures.mailchimp_list_id, status="pending") == {"seen@example.org"}
    finally:
        reader.close()


def test_seeding_is_idempotent_and_needs_the_audience_first(tmp_path):
    state = SandboxState(tmp_path / "seed.db")
    try:
        state.seed_demo_fixtures()
        state.seed_demo_fixtures()
        with pytest.raises(ValueError, match="seed_mailchimp_list first"):
            state.seed_mailchimp_static_segment("nolist", 7, "x")
    finally:
        state.close()


def test_config_file_round_trip_and_errors(tmp_path):
    config = SandboxConfig.from_dict(
        {"seed": 9, "credentials": {"mailchimp_api_keys": ["k-us2"]}, "faults": {"meta": {"slow_rate": 0.5}}}
    )
    path = tmp_path / "sandbox.json"
    path.write_text(json.dumps(config.to_dict()))
    assert SandboxConfig.from_json_file(path) == config
    assert config.faults["hubspot"].rate_limit is not None  # defaults kept for vendors not named

    path.write_text(json.dumps({"faults": {"mailchimp": {"eror_rate": 0.1}}}))
    with pytest.raises(ValueError, match="eror_rate"):
        SandboxConfig.from_json_file(path)
    assert main(["--config", str(path), "--db", str(tmp_path / "x.db")]) == 2


def test_a_file_made_before_autoincrement_is_upgraded_and_reuses_no_id(tmp_path):
    """The state is kept across runs: a file whose tables a sandbox made without ``AUTOINCREMENT`` (SQLite then
    hands out the highest rowid again once its row is deleted, https://www.sqlite.org/autoinc.html) is upgraded when
    opened, rows, ids and memberships kept, and from then on HubSpot gives a deleted contact's id to no one
    (``tests/sandbox/contract/test_contract_hubspot.py`` has the contract)."""
    db = tmp_path / "old.db"
    with closing(sqlite3.connect(db, isolation_level=None)) as old:
        old.executescript(SCHEMA.replace(" AUTOINCREMENT", "") + RULE_BASED_SCHEMA)
        old.executemany("INSERT INTO hubspot_contacts (email, properties, created_at, updated_at) VALUES (?, ?, 0, 0)",
                        [(email, json.dumps({"email": email})) for email in ("one@example.org", "two@example.org")])
        old.execute("INSERT INTO hubspot_lists VALUES (101, 'vip', '0-1', 'MANUAL', 0, 0)")
        old.execute("INSERT INTO hubspot_list_members VALUES (101, 2, 0)")
        old.execute("INSERT INTO mailchimp_lists VALUES ('a1b2c3d4e5', 'demo', 0)")
        old.execute("INSERT INTO mailchimp_segments VALUES (1001, 'a1b2c3d4e5', 'vip', 0, 0)")
        assert "AUTOINCREMENT" not in old.execute("SELECT group_concat(sql) FROM sqlite_master").fetchone()[0]
    with serve(db_path=db) as running:
        with closing(sqlite3.connect(db)) as reader:
            tables = dict(reader.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall())
            indexes = {name for (name,) in reader.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert all("AUTOINCREMENT" in tables[table] for table in NEVER_REUSED_IDS)
        assert not [name for name in tables if name.endswith("__autoincrement")]
        assert "mailchimp_segments_by_list" in indexes  # dropped with the old table, made again
        state = running.state
        assert state.hubspot_contact("two@example.org")["id"] == "2"
        assert state.hubspot_list_emails(101) == {"two@example.org"}
        assert state.seed_mailchimp_tag("a1b2c3d4e5", "vip") == 1001
        headers = {"Authorization": f"Bearer {DEFAULT_HUBSPOT_TOKEN}"}
        erased = requests.post(f"{running.url}/crm/v3/objects/contacts/gdpr-delete", headers=headers,
                               json={"objectId": "2"}, timeout=5)
        assert erased.status_code == 204
        created = requests.post(f"{running.url}/crm/v3/objects/contacts/batch/create", headers=headers,
                                json={"inputs": [{"properties": {"email": "three@example.org"}}]}, timeout=5)
        assert created.status_code == 201, created.text
        assert created.json()["results"][0]["id"] == "3"
        assert state.edit_hubspot_contact("four@example.org", {})  # a hand edit takes a new id too
        assert state.hubspot_contact("four@example.org")["id"] == "4"
    # opened again: nothing left to upgrade
    with closing(sqlite3.connect(db, isolation_level=None)) as again:
        assert upgrade_never_reused_ids(again) == []

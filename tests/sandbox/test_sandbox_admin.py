"""``python -m segprovider_sandbox.admin``: each operation changes what a sandbox serving the same file answers.

The sandbox runs in this process on its own SQLite connection; the operations open another one on
the same file, as ``segprovider sandbox OPERATION`` does from its own process while the compose
service serves.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING

import pytest
import requests

from segprovider_sandbox import DEFAULT_HUBSPOT_TOKEN, DEFAULT_MAILCHIMP_API_KEY, DEFAULT_META_ACCESS_TOKEN, serve
from segprovider_sandbox.admin import main as admin

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from segprovider_sandbox import RunningSandbox

AUDIENCE = "a1b2c3d4e5"
MAILCHIMP = {"auth": ("segprovider", DEFAULT_MAILCHIMP_API_KEY), "timeout": 10}
HUBSPOT = {"headers": {"Authorization": f"Bearer {DEFAULT_HUBSPOT_TOKEN}"}, "timeout": 10}


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "sandbox.db")
    assert admin(["seed", "--db", path]) == 0
    return path


@pytest.fixture
def served(db: str) -> Iterator[RunningSandbox]:
    with serve(db_path=db) as running:
        yield running


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = admin(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def segment_emails(url: str, segment_id: str) -> set[str]:
    answer = requests.get(f"{url}/3.0/lists/{AUDIENCE}/segments/{segment_id}/members", params={"count": 1000},
                          **MAILCHIMP)
    assert answer.status_code == 200, answer.text
    return {member["email_address"] for member in answer.json()["members"]}


def member(url: str, email: str) -> requests.Response:
    return requests.get(f"{url}/3.0/lists/{AUDIENCE}/members/{email}", **MAILCHIMP)


def test_seed_is_idempotent_and_lists_prints_every_list_with_counts(db: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "seed", "--db", db)[0] == 0
    assert run(capsys, "add-member", "mailchimp", "vip", "ann@example.com", "--db", db)[0] == 0
    status, out, _ = run(capsys, "lists", "--db", db)
    assert status == 0
    rows = {tuple(line.split()[:3]): line for line in out.splitlines()}
    assert rows[("mailchimp", "audience", AUDIENCE)].endswith("1 (subscribed 1)")
    vip = [line for line in out.splitlines() if line.startswith("mailchimp") and " vip " in line]
    assert len(vip) == 1 and vip[0].split()[1:4] == ["static", "segment", "1001"] and vip[0].endswith(" 1")
    assert sum(line.startswith("meta ") for line in out.splitlines()) == 2
    status, out, _ = run(capsys, "lists", "--vendor", "hubspot", "--db", db)
    assert [line.split()[:3] for line in out.splitlines()[1:]] == [
        ["hubspot", "list", "101"], ["hubspot", "list", "102"]]


def test_mailchimp_add_and_remove_in_a_static_segment(served: RunningSandbox, db: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "add-member", "mailchimp", "vip", "ann@example.com", "bob@example.com", "--db", db)
    assert status == 0 and out.count("added to mailchimp static segment 1001 (vip)") == 2
    assert segment_emails(served.url, "1001") == {"ann@example.com", "bob@example.com"}
    assert member(served.url, "ann@example.com").json()["status"] == "subscribed"  # created in the audience
    assert run(capsys, "remove-member", "mailchimp", "1001", "bob@example.com", "--db", db)[0] == 0
    assert segment_emails(served.url, "1001") == {"ann@example.com"}
    assert member(served.url, "bob@example.com").status_code == 200  # still in the audience, without the tag
    status, out, _ = run(capsys, "members", "vip", "--vendor", "mailchimp", "--db", db)
    assert out.splitlines() == ["ann@example.com\tsubscribed"]


def test_mailchimp_audience_members_and_their_status(served: RunningSandbox, db: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "add-member", "mailchimp", AUDIENCE, "cat@example.com", "--db", db)[0] == 0
    assert member(served.url, "cat@example.com").json()["status"] == "subscribed"
    status, out, _ = run(capsys, "set-status", "mailchimp", AUDIENCE, "cat@example.com", "unsubscribed", "--db", db)
    assert status == 0 and "subscribed -> unsubscribed" in out
    assert member(served.url, "cat@example.com").json()["status"] == "unsubscribed"
    stats = requests.get(f"{served.url}/3.0/lists/{AUDIENCE}", **MAILCHIMP).json()["stats"]
    assert (stats["member_count"], stats["unsubscribe_count"]) == (0, 1)
    assert run(capsys, "add-member", "mailchimp", "vip", "cat@example.com", "--db", db)[0] == 0
    assert run(capsys, "remove-member", "mailchimp", AUDIENCE, "cat@example.com", "--db", db)[0] == 0
    assert member(served.url, "cat@example.com").status_code == 404
    assert segment_emails(served.url, "1001") == set()  # its tags went with it


def test_mailchimp_set_attribute_checks_the_merge_field_type(served: RunningSandbox, db: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "add-member", "mailchimp", AUDIENCE, "dan@example.com", "--db", db)
    assert run(capsys, "set-attribute", "mailchimp", "dan@example.com", "ltv", "2500", "--db", db)[0] == 0
    assert member(served.url, "dan@example.com").json()["merge_fields"]["LTV"] == "2500"
    status, _, err = run(capsys, "set-attribute", "mailchimp", "dan@example.com", "LTV", "lots", "--db", db)
    assert status == 1 and err.startswith("segprovider sandbox set-attribute: VALUE 'lots'") and "number" in err
    status, _, err = run(capsys, "set-attribute", "mailchimp", "dan@example.com", "SHOE", "42", "--db", db)
    assert status == 1 and "FIELD 'SHOE'" in err and "LTV" in err
    assert member(served.url, "dan@example.com").json()["merge_fields"]["LTV"] == "2500"


def test_hubspot_list_members_and_properties(served: RunningSandbox, db: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "add-member", "hubspot", "sales_priority", "Eve@Example.com", "--db", db)[0] == 0
    answer = requests.get(f"{served.url}/crm/v3/lists/102", **HUBSPOT).json()["list"]
    assert answer["size"] == 1
    assert run(capsys, "set-attribute", "hubspot", "eve@example.com", "lifetime_value", "310.5", "--db", db)[0] == 0
    contact = requests.get(f"{served.url}/crm/v3/objects/contacts/eve@example.com",
                           params={"idProperty": "email", "properties": "lifetime_value"}, **HUBSPOT)
    assert contact.status_code == 200, contact.text
    assert contact.json()["properties"]["lifetime_value"] == "310.5"
    status, _, err = run(capsys, "set-attribute", "hubspot", "eve@example.com", "lifetime_value", "x", "--db", db)
    assert status == 1 and "VALUE 'x'" in err
    assert run(capsys, "remove-member", "hubspot", "102", "eve@example.com", "--db", db)[0] == 0
    assert requests.get(f"{served.url}/crm/v3/lists/102", **HUBSPOT).json()["list"]["size"] == 0


def test_meta_audience_members_are_hashed(served: RunningSandbox, db: str, capsys: pytest.CaptureFixture[str]) -> None:
    emails = [f"p{n}@example.com" for n in range(120)]
    assert run(capsys, "add-member", "meta", "high_intent", *emails, "--db", db)[0] == 0
    audience = requests.get(f"{served.url}/v21.0/23850000000000002", timeout=10, params={
        "fields": "approximate_count_lower_bound,approximate_count_upper_bound",
        "access_token": DEFAULT_META_ACCESS_TOKEN}).json()
    # Meta counts the people it matched (the sandbox matches a deterministic share of hashes, like Meta)
    from segprovider_sandbox.config import SandboxConfig
    from segprovider_sandbox.store.meta import hash_matches

    rate = SandboxConfig().meta_match_rate
    matched = sum(hash_matches(hashlib.sha256(e.encode()).hexdigest(), rate) for e in emails)
    assert 0 < matched < 120
    assert audience["approximate_count_lower_bound"] <= matched <= audience["approximate_count_upper_bound"]
    _, out, _ = run(capsys, "members", "high_intent", "--db", db)
    assert hashlib.sha256(b"p0@example.com").hexdigest() in out.split()
    assert run(capsys, "remove-member", "meta", "23850000000000002", *emails[:50], "--db", db)[0] == 0
    assert len(run(capsys, "members", "23850000000000002", "--db", db)[1].split()) == 70


def test_edits_land_while_the_server_writes_the_same_file(served: RunningSandbox, db: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The server's batch subscribes and the operations' edits share the file's single writer without loss."""

    def subscribe() -> None:
        with requests.Session() as http:
            for batch in range(10):
                members = [{"email_address": f"s{batch}-{n}@example.com", "status": "subscribed"} for n in range(50)]
                answer = http.post(f"{served.url}/3.0/lists/{AUDIENCE}", json={"members": members}, **MAILCHIMP)
                assert answer.json()["error_count"] == 0

    writer = threading.Thread(target=subscribe)
    writer.start()
    for n in range(10):
        assert admin(["add-member", "mailchimp", "at_risk", f"h{n}@example.com", "--db", db]) == 0
    writer.join()
    capsys.readouterr()
    assert requests.get(f"{served.url}/3.0/lists/{AUDIENCE}", **MAILCHIMP).json()["stats"]["member_count"] == 510
    assert len(segment_emails(served.url, "1003")) == 10


@pytest.mark.parametrize(("argv", "message"), [
    (["members", "nope"], "LIST 'nope': no list, segment or audience has that id or name"),
    (["members", "vip"], "LIST 'vip' is ambiguous"),
    (["add-member", "mailchimp", "vip", "not-an-email"], "EMAIL 'not-an-email': not a valid email address"),
    (["add-member", "hubspot", "nope", "a@example.com"], "LIST 'nope': no hubspot list"),
    (["set-status", "mailchimp", "vip", "a@example.com", "cleaned"], "LIST 'vip' is a mailchimp static segment"),
    (["set-status", "mailchimp", AUDIENCE, "zed@example.com", "cleaned"], "EMAIL 'zed@example.com': not a member"),
    (["set-attribute", "mailchimp", "zed@example.com", "LTV", "1"], "EMAIL 'zed@example.com': no Mailchimp audience"),
])
def test_errors_are_one_line_naming_the_argument(db: str, capsys: pytest.CaptureFixture[str], argv: list[str],
                                                 message: str) -> None:
    status, out, err = run(capsys, *argv, "--db", db)
    assert status == 1 and out == ""
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def test_a_missing_state_file_is_named_and_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.db"
    status, _, err = run(capsys, "lists", "--db", str(missing))
    assert status == 1 and len(err.splitlines()) == 1 and f"--db {missing}: no sandbox state file" in err
    assert not missing.exists()

"""The sandbox's Meta Custom Audiences, over real HTTP."""

from __future__ import annotations

import hashlib
import json

import pytest
import requests

from segprovider_sandbox import DEFAULT_META_ACCESS_TOKEN
from segprovider_sandbox.meta import approximate_bounds

TOKEN = DEFAULT_META_ACCESS_TOKEN


def sha256(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def send(http, sandbox, audience_id, data, *, method="POST", schema="EMAIL_SHA256"):
    return http.request(
        method,
        f"{sandbox.url}/v21.0/{audience_id}/users",
        data={"access_token": TOKEN, "payload": json.dumps({"schema": schema, "data": data})},
    )


def bounds(http, sandbox, audience_id):
    answer = http.get(
        f"{sandbox.url}/v21.0/{audience_id}",
        params={"access_token": TOKEN, "fields": "approximate_count_lower_bound,approximate_count_upper_bound"},
    ).json()
    return answer["approximate_count_lower_bound"], answer["approximate_count_upper_bound"]


def test_missing_and_bad_tokens_are_oauth_exceptions(sandbox, http, fixtures):
    url = f"{sandbox.url}/v21.0/{fixtures.meta_audience_id}"
    missing = http.get(url)
    bad = http.get(url, params={"access_token": "expired"})
    for response, code in ((missing, 104), (bad, 190)):
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["type"] == "OAuthException" and error["code"] == code and error["fbtrace_id"]


def test_invalid_entries_are_counted_and_not_stored(sandbox, http, fixtures):
    good = [sha256(f"p{i}@example.org") for i in range(3)]
    bad = ["ABCDEF" + good[0][6:].upper(), "not-a-hash", good[1][:63]]
    response = send(http, sandbox, fixtures.meta_audience_id, good + bad)
    assert response.status_code == 200
    body = response.json()
    assert body["audience_id"] == fixtures.meta_audience_id and body["session_id"]
    assert body["num_received"] == 6 and body["num_invalid_entries"] == 3
    assert set(body["invalid_entry_samples"]) == set(bad)
    assert sandbox.state.meta_audience_hashes(fixtures.meta_audience_id) == set(good)


def test_multi_key_schema_and_json_body_and_delete(sandbox, http, fixtures):
    audience = fixtures.meta_audience_id
    rows = [[sha256(f"q{i}@example.org"), sha256("de")] for i in range(4)]
    response = http.post(
        f"{sandbox.url}/v21.0/{audience}/users",
        json={"access_token": TOKEN, "payload": {"schema": ["EMAIL", "COUNTRY"], "data": rows}},
    )
    assert response.json()["num_invalid_entries"] == 0
    removed = send(http, sandbox, audience, [rows[0][0], rows[1][0]], method="DELETE")
    assert removed.status_code == 200 and removed.json()["num_received"] == 2
    assert sandbox.state.meta_audience_hashes(audience) == {rows[2][0], rows[3][0]}


def test_a_key_meta_hashes_sent_in_clear_is_an_invalid_entry(sandbox, http, fixtures):
    """Every key but MADID and EXTERN_ID is sent SHA-256 hashed
    (https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences#hash)."""
    rows = [[sha256("r@example.org"), "DE"], [sha256("s@example.org"), sha256("de")]]
    response = http.post(f"{sandbox.url}/v21.0/{fixtures.meta_audience_id}/users",
                         json={"access_token": TOKEN, "payload": {"schema": ["EMAIL", "COUNTRY"], "data": rows}})
    assert response.json()["num_invalid_entries"] == 1
    assert sandbox.state.meta_audience_hashes(fixtures.meta_audience_id) == {rows[1][0]}


def test_a_multi_key_row_matches_on_any_identifier_and_is_removed_by_any(tmp_path):
    """Several keys raise the match rate: a person whose email Meta cannot match may match on the phone, or on
    first name, last name and zip together; each identifier matches at the sandbox's rate, deterministically."""
    from segprovider_sandbox import SandboxConfig, serve
    from segprovider_sandbox.store.meta import hash_matches

    rate = 0.5
    with serve(db_path=tmp_path / "s.db", config=SandboxConfig(meta_match_rate=rate)) as sandbox:
        audience = sandbox.state.seed_demo_fixtures().meta_audience_id
        schema = ["EMAIL", "PHONE", "FN", "LN", "ZIP", "EXTERN_ID"]
        rows = [[sha256(f"m{i}@example.org"), sha256(f"4915{i:07d}"), sha256(f"ann{i}"), sha256("lee"),
                 sha256("10115"), f"crm-{i}"] for i in range(400)]
        url = f"{sandbox.url}/v21.0/{audience}/users"
        with requests.Session() as session:
            answer = session.post(url, json={"access_token": TOKEN, "payload": {"schema": schema, "data": rows}}).json()
            email_only = [row[:1] for row in rows]
            session.delete(url, json={"access_token": TOKEN, "payload": {"schema": ["EMAIL"], "data": email_only}})
            sessions = session.get(f"{sandbox.url}/v21.0/{audience}/sessions",
                                   params={"access_token": TOKEN}).json()["data"]
            emails_matched = sum(hash_matches(row[0], rate) for row in rows)
            remaining = sandbox.state.meta_audience_hashes(audience)
            session.delete(url, json={"access_token": TOKEN, "payload": {"schema": schema, "data": rows}})
            assert sandbox.state.meta_audience_hashes(audience) == set()
    assert answer["num_invalid_entries"] == 0
    matched = int(sessions[-1]["num_matched"])  # the add session
    assert emails_matched < matched <= 400 and matched > 0.8 * 400  # four identifiers at 50 % each: ~94 %
    # the email-only removal took out everyone kept under their email; the people Meta matched on another key
    # stay until a removal names that key (the connector removes with the keys it added)
    assert 0 < len(remaining) < 400 and not remaining & {row[0] for row in rows}


def test_a_full_batch_of_10000_rows_is_stored_whole(sandbox, http, fixtures):
    data = [sha256(f"full{i}@example.org") for i in range(10_000)]
    body = send(http, sandbox, fixtures.meta_audience_id, data).json()
    assert body["num_received"] == 10_000 and body["num_invalid_entries"] == 0
    assert sandbox.state.meta_audience_hashes(fixtures.meta_audience_id) == set(data)


def test_more_than_10000_rows_is_rejected_whole(sandbox, http, fixtures):
    data = [sha256(f"r{i}@example.org") for i in range(10_001)]
    response = send(http, sandbox, fixtures.meta_audience_id, data)
    assert response.status_code == 400 and response.json()["error"]["code"] == 100
    assert sandbox.state.meta_audience_hashes(fixtures.meta_audience_id) == set()


def test_size_is_only_an_approximate_range(tmp_path, http, fixtures):
    from segprovider_sandbox import serve
    from segprovider_sandbox.config import SandboxConfig

    # every hash matches here (the default is Meta's partial match): this test is about the rounding
    with serve(db_path=tmp_path / "all_match.db", config=SandboxConfig(meta_match_rate=1.0)) as sandbox:
        sandbox.state.seed_demo_fixtures()
        audience = fixtures.meta_audience_id
        send(http, sandbox, audience, [sha256(f"s{i}@example.org") for i in range(1234)])
        assert bounds(http, sandbox, audience) == (1200, 1300)
        send(http, sandbox, audience, [sha256(f"s{i}@example.org") for i in range(1234)])  # re-adding changes nothing
        assert bounds(http, sandbox, audience) == (1200, 1300)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, (0, 0)),
        (57, (57, 57)),
        (100, (100, 100)),
        (1234, (1200, 1300)),
        (1200, (1200, 1200)),
        (98765, (98000, 99000)),
    ],
)
def test_approximate_bounds_round_to_two_significant_figures(count, expected):
    lower, upper = approximate_bounds(count)
    assert (lower, upper) == expected and lower <= count <= upper


def test_create_audience_then_unknown_audience_is_graph_method_exception(sandbox, http):
    created = http.post(
        f"{sandbox.url}/v21.0/act_555/customaudiences",
        data={
            "access_token": TOKEN,
            "name": "lapsed",
            "subtype": "CUSTOM",
            "customer_file_source": "USER_PROVIDED_ONLY",
        },
    )
    assert created.status_code == 200
    audience = created.json()["id"]
    assert send(http, sandbox, audience, [sha256("t@example.org")]).status_code == 200
    fields = http.get(
        f"{sandbox.url}/v21.0/{audience}", params={"access_token": TOKEN, "fields": "name,account_id"}
    ).json()
    assert fields == {"id": audience, "name": "lapsed", "account_id": "555"}

    unknown = send(http, sandbox, "999", [sha256("t@example.org")])
    assert unknown.status_code == 400
    assert unknown.json()["error"]["type"] == "GraphMethodException"
    no_field = http.get(f"{sandbox.url}/v21.0/{audience}", params={"access_token": TOKEN, "fields": "members"})
    assert no_field.status_code == 400  # members cannot be read back

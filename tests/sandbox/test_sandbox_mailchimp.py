"""The sandbox's Mailchimp Marketing API v3, over real HTTP."""

from __future__ import annotations

import threading

import requests

from segprovider_sandbox import (
    DEFAULT_MAILCHIMP_API_KEY,
    SandboxConfig,
    VendorFaults,
    serve,
    subscriber_hash,
)

AUTH = ("anyuser", DEFAULT_MAILCHIMP_API_KEY)


def subscribe(http, sandbox, list_id, emails, *, update_existing=True, status="subscribed"):
    members = [{"email_address": email, "status": status, "merge_fields": {"FNAME": email[:3]}} for email in emails]
    return http.post(
        f"{sandbox.url}/3.0/lists/{list_id}",
        auth=AUTH,
        json={"members": members, "update_existing": update_existing},
    )


def test_ping_answers_with_a_valid_key(sandbox, http):
    response = http.get(f"{sandbox.url}/3.0/ping", auth=AUTH)
    assert response.status_code == 200
    assert response.json() == {"health_status": "Everything's Chimpy!"}


def test_missing_and_unknown_keys_are_401_problem_documents(sandbox, http):
    missing = http.get(f"{sandbox.url}/3.0/ping")
    wrong = http.get(f"{sandbox.url}/3.0/ping", auth=("anyuser", "not-a-key-us1"))
    for response, title in ((missing, "API Key Missing"), (wrong, "API Key Invalid")):
        assert response.status_code == 401
        assert response.headers["Content-Type"].startswith("application/problem+json")
        body = response.json()
        assert set(body) == {"type", "title", "status", "detail", "instance"}
        assert body["title"] == title and body["status"] == 401


def test_unknown_list_is_404_resource_not_found(sandbox, http):
    response = http.get(f"{sandbox.url}/3.0/lists/nosuchlist", auth=AUTH)
    assert response.status_code == 404
    assert response.json()["title"] == "Resource Not Found"
    batch = subscribe(http, sandbox, "nosuchlist", ["a@example.org"])
    assert batch.status_code == 404


def test_batch_with_an_invalid_email_is_200_with_a_per_member_error(sandbox, http, fixtures):
    response = subscribe(http, sandbox, fixtures.mailchimp_list_id, ["ok@example.org", "not-an-email"])
    assert response.status_code == 200
    body = response.json()
    assert body["total_created"] == 1 and body["total_updated"] == 0 and body["error_count"] == 1
    assert [m["email_address"] for m in body["new_members"]] == ["ok@example.org"]
    assert body["new_members"][0]["id"] == subscriber_hash("ok@example.org")
    [error] = body["errors"]
    assert error["email_address"] == "not-an-email" and error["error_code"] == "ERROR_GENERIC"
    assert sandbox.state.mailchimp_list_emails(fixtures.mailchimp_list_id) == {"ok@example.org"}


def test_existing_member_without_update_existing_is_error_contact_exists(sandbox, http, fixtures):
    list_id = fixtures.mailchimp_list_id
    subscribe(http, sandbox, list_id, ["a@example.org"])
    again = subscribe(http, sandbox, list_id, ["A@Example.org", "b@example.org"], update_existing=False).json()
    assert again["total_created"] == 1
    assert [e["error_code"] for e in again["errors"]] == ["ERROR_CONTACT_EXISTS"]
    updated = subscribe(http, sandbox, list_id, ["a@example.org"], status="unsubscribed").json()
    assert updated["total_updated"] == 1 and updated["updated_members"][0]["status"] == "unsubscribed"


def test_a_full_batch_of_500_members_is_stored_whole(sandbox, http, fixtures):
    emails = [f"full{i}@example.org" for i in range(500)]
    body = subscribe(http, sandbox, fixtures.mailchimp_list_id, emails).json()
    assert body["total_created"] == 500 and body["error_count"] == 0
    assert sandbox.state.mailchimp_list_emails(fixtures.mailchimp_list_id) == set(emails)


def test_more_than_500_members_is_rejected_whole(sandbox, http, fixtures):
    emails = [f"m{i}@example.org" for i in range(501)]
    response = subscribe(http, sandbox, fixtures.mailchimp_list_id, emails)
    assert response.status_code == 400
    assert response.json()["title"] == "Invalid Resource"
    assert sandbox.state.mailchimp_list_emails(fixtures.mailchimp_list_id) == set()


def test_members_and_segment_members_page_with_count_and_offset(sandbox, http, fixtures):
    list_id, segment_id = fixtures.mailchimp_list_id, fixtures.mailchimp_segment_id
    emails = [f"p{i:02d}@example.org" for i in range(25)]
    subscribe(http, sandbox, list_id, emails)
    http.post(f"{sandbox.url}/3.0/lists/{list_id}/segments/{segment_id}", auth=AUTH, json={"members_to_add": emails})
    for path in (f"/3.0/lists/{list_id}/members", f"/3.0/lists/{list_id}/segments/{segment_id}/members"):
        seen: list[str] = []
        offset = 0
        while True:
            page = http.get(f"{sandbox.url}{path}", auth=AUTH, params={"count": 10, "offset": offset}).json()
            assert page["total_items"] == 25
            if not page["members"]:
                break
            seen += [m["email_address"] for m in page["members"]]
            offset += len(page["members"])
        assert sorted(seen) == emails  # every member once, across three pages
    too_big = http.get(f"{sandbox.url}/3.0/lists/{list_id}/members", auth=AUTH, params={"count": 1001})
    assert too_big.status_code == 400


def test_static_segment_add_and_remove(sandbox, http, fixtures):
    list_id, segment_id = fixtures.mailchimp_list_id, fixtures.mailchimp_segment_id
    subscribe(http, sandbox, list_id, ["a@example.org", "b@example.org", "c@example.org"])
    url = f"{sandbox.url}/3.0/lists/{list_id}/segments/{segment_id}"
    added = http.post(
        url, auth=AUTH, json={"members_to_add": ["a@example.org", "b@example.org", "stranger@example.org"]}
    )
    body = added.json()
    assert added.status_code == 200
    assert body["total_added"] == 2 and body["error_count"] == 1
    assert body["errors"][0]["email_addresses"] == ["stranger@example.org"]
    changed = http.post(
        url, auth=AUTH, json={"members_to_add": ["c@example.org"], "members_to_remove": ["a@example.org"]}
    ).json()
    assert (changed["total_added"], changed["total_removed"]) == (1, 1)
    assert http.get(url, auth=AUTH).json()["member_count"] == 2
    assert sandbox.state.mailchimp_segment_emails(list_id, segment_id) == {"b@example.org", "c@example.org"}
    # Leaving a segment does not leave the audience.
    assert sandbox.state.mailchimp_member(list_id, "a@example.org")["status"] == "subscribed"


def test_created_static_segment_is_found_by_type(sandbox, http, fixtures):
    list_id = fixtures.mailchimp_list_id
    seeded = http.get(f"{sandbox.url}/3.0/lists/{list_id}/segments", auth=AUTH, params={"type": "static"}).json()
    created = http.post(
        f"{sandbox.url}/3.0/lists/{list_id}/segments", auth=AUTH, json={"name": "spring", "static_segment": []}
    )
    assert created.status_code == 200 and created.json()["type"] == "static"
    listed = http.get(
        f"{sandbox.url}/3.0/lists/{list_id}/segments",
        auth=AUTH,
        params={"type": "static", "fields": "segments.id,segments.name,total_items"},
    ).json()
    assert seeded["total_items"] >= 1  # the demo fixtures' static segments
    assert listed["total_items"] == seeded["total_items"] + 1
    assert {"id": created.json()["id"], "name": "spring"} in listed["segments"]
    assert all(set(segment) == {"id", "name"} for segment in listed["segments"])


def test_put_member_by_hash_with_merge_fields_and_tags(sandbox, http, fixtures):
    list_id = fixtures.mailchimp_list_id
    member_hash = subscriber_hash("Ada@Example.org")
    url = f"{sandbox.url}/3.0/lists/{list_id}/members/{member_hash}"
    put = http.put(
        url,
        auth=AUTH,
        json={"email_address": "Ada@Example.org", "status_if_new": "subscribed", "merge_fields": {"FNAME": "Ada"}},
    )
    assert put.status_code == 200 and put.json()["id"] == member_hash
    http.put(
        url,
        auth=AUTH,
        json={"email_address": "ada@example.org", "status_if_new": "subscribed", "merge_fields": {"LNAME": "L"}},
    )
    assert http.get(url, auth=AUTH).json()["merge_fields"] == {"FNAME": "Ada", "LNAME": "L"}

    tags = http.post(
        f"{url}/tags",
        auth=AUTH,
        json={"tags": [{"name": "vip", "status": "active"}, {"name": "new", "status": "active"}]},
    )
    assert tags.status_code == 204 and tags.content == b""
    http.post(f"{url}/tags", auth=AUTH, json={"tags": [{"name": "new", "status": "inactive"}]})
    assert [t["name"] for t in http.get(f"{url}/tags", auth=AUTH).json()["tags"]] == ["vip"]
    assert [t["name"] for t in http.get(url, auth=AUTH).json()["tags"]] == ["vip"]
    found = http.get(f"{sandbox.url}/3.0/lists/{list_id}/tag-search", auth=AUTH, params={"name": "ne"}).json()
    assert [t["name"] for t in found["tags"]] == ["new"]  # the tag still exists, now empty

    mismatch = http.put(url, auth=AUTH, json={"email_address": "other@example.org", "status_if_new": "subscribed"})
    assert mismatch.status_code == 400
    unknown = http.get(f"{sandbox.url}/3.0/lists/{list_id}/members/{subscriber_hash('x@example.org')}", auth=AUTH)
    assert unknown.status_code == 404


def test_the_eleventh_simultaneous_request_gets_429(tmp_path):
    slow = SandboxConfig(faults={"mailchimp": VendorFaults(slow_rate=1.0, slow_seconds=1.0)})
    with serve(db_path=tmp_path / "sandbox.db", config=slow) as running:
        barrier = threading.Barrier(11)
        responses: list[requests.Response] = []

        def ping() -> None:
            barrier.wait()
            responses.append(requests.get(f"{running.url}/3.0/ping", auth=AUTH, timeout=10))

        threads = [threading.Thread(target=ping) for _ in range(11)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(r.status_code for r in responses) == [200] * 10 + [429]
        [too_many] = [r for r in responses if r.status_code == 429]
        assert too_many.json()["title"] == "Too Many Requests" and int(too_many.headers["Retry-After"]) >= 1
        [refused] = [r for r in running.state.requests("mailchimp") if r.status == 429]
        assert refused.fault == "concurrency_limited"


def test_merge_fields_are_the_defaults_plus_seeded_ones_and_page(sandbox, http, fixtures):
    url = f"{sandbox.url}/3.0/lists/{fixtures.mailchimp_list_id}/merge-fields"
    body = http.get(url, auth=AUTH, params={"count": 1000}).json()
    assert [f["tag"] for f in body["merge_fields"]] == ["FNAME", "LNAME", "ADDRESS", "PHONE", "BIRTHDAY", "COUNTRY",
                                                        "LTV", "LASTBUY"]
    assert body["total_items"] == 8
    assert {"merge_id", "tag", "name", "type", "list_id"} <= set(body["merge_fields"][0])
    second = http.get(url, auth=AUTH, params={"count": 4, "offset": 4}).json()
    assert [f["tag"] for f in second["merge_fields"]] == ["BIRTHDAY", "COUNTRY", "LTV", "LASTBUY"]
    assert http.get(f"{sandbox.url}/3.0/lists/nope/merge-fields", auth=AUTH).status_code == 404

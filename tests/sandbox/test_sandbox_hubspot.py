"""The sandbox's HubSpot CRM v3 contacts and Lists v3, over real HTTP."""

from __future__ import annotations

from segprovider_sandbox import DEFAULT_HUBSPOT_TOKEN

HEADERS = {"Authorization": f"Bearer {DEFAULT_HUBSPOT_TOKEN}"}
#: the headers HubSpot documents on every response (https://developers.hubspot.com/docs/api/usage-details)
RATE_LIMIT_HEADERS = (
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds",
    "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
)


def upsert(http, sandbox, emails):
    inputs = [{"idProperty": "email", "id": email, "properties": {"firstname": email[:2]}} for email in emails]
    return http.post(f"{sandbox.url}/crm/v3/objects/contacts/batch/upsert", headers=HEADERS, json={"inputs": inputs})


def test_missing_and_wrong_tokens_are_401_invalid_authentication(sandbox, http):
    url = f"{sandbox.url}/crm/v3/lists/101"
    for headers in ({}, {"Authorization": "Bearer wrong-token"}):
        response = http.get(url, headers=headers)
        assert response.status_code == 401
        body = response.json()
        assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
        assert body["message"] and body["correlationId"]


def test_upsert_returns_ids_and_is_idempotent_by_email(sandbox, http):
    first = upsert(http, sandbox, ["a@example.org", "b@example.org"])
    assert first.status_code == 200
    results = {r["properties"]["email"]: r for r in first.json()["results"]}
    assert all(r["new"] for r in results.values())
    again = upsert(http, sandbox, ["A@Example.org"]).json()["results"][0]
    assert again["id"] == results["a@example.org"]["id"] and again["new"] is False
    contact = sandbox.state.hubspot_contact("a@example.org")
    assert contact["id"] == again["id"] and contact["properties"]["firstname"] == "A@"


def test_upsert_with_a_malformed_email_is_207_multi_status(sandbox, http):
    response = upsert(http, sandbox, ["good@example.org", "not-an-email"])
    assert response.status_code == 207
    body = response.json()
    assert [r["properties"]["email"] for r in body["results"]] == ["good@example.org"]
    assert body["numErrors"] == 1
    assert body["errors"][0]["category"] == "VALIDATION_ERROR"
    assert body["errors"][0]["context"]["ids"] == ["not-an-email"]
    assert sandbox.state.hubspot_contact("not-an-email") is None


def test_upsert_limits_and_duplicates_are_rejected_whole(sandbox, http):
    too_many = upsert(http, sandbox, [f"c{i}@example.org" for i in range(101)])
    duplicate = upsert(http, sandbox, ["d@example.org", "D@example.org"])
    for response in (too_many, duplicate):
        assert response.status_code == 400 and response.json()["category"] == "VALIDATION_ERROR"
    assert sandbox.state.hubspot_contact("c0@example.org") is None


def test_batch_read_by_email_reports_missing_ids(sandbox, http):
    upsert(http, sandbox, ["a@example.org"])
    response = http.post(
        f"{sandbox.url}/crm/v3/objects/contacts/batch/read",
        headers=HEADERS,
        json={
            "idProperty": "email",
            "inputs": [{"id": "a@example.org"}, {"id": "ghost@example.org"}],
            "properties": ["email"],
        },
    )
    assert response.status_code == 207
    body = response.json()
    assert [r["properties"]["email"] for r in body["results"]] == ["a@example.org"]
    assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert body["errors"][0]["context"]["ids"] == ["ghost@example.org"]
    contact_id = body["results"][0]["id"]
    assert http.get(f"{sandbox.url}/crm/v3/objects/contacts/{contact_id}", headers=HEADERS).status_code == 200
    assert http.get(f"{sandbox.url}/crm/v3/objects/contacts/999999", headers=HEADERS).status_code == 404


def test_lists_create_read_and_unknown_is_404(sandbox, http):
    created = http.post(
        f"{sandbox.url}/crm/v3/lists",
        headers=HEADERS,
        json={"name": "winback", "objectTypeId": "0-1", "processingType": "MANUAL"},
    )
    assert created.status_code == 200
    list_id = created.json()["list"]["listId"]
    fetched = http.get(f"{sandbox.url}/crm/v3/lists/{list_id}", headers=HEADERS).json()["list"]
    assert fetched["name"] == "winback" and fetched["size"] == 0 and fetched["processingType"] == "MANUAL"
    missing = http.get(f"{sandbox.url}/crm/v3/lists/424242", headers=HEADERS)
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"
    dynamic = http.post(
        f"{sandbox.url}/crm/v3/lists",
        headers=HEADERS,
        json={"name": "d", "objectTypeId": "0-1", "processingType": "DYNAMIC"},
    )
    assert dynamic.status_code == 400


def test_add_and_remove_answers_with_the_documented_fields(sandbox, http, fixtures):
    ids = [r["id"] for r in upsert(http, sandbox, ["a@example.org", "b@example.org"]).json()["results"]]
    url = f"{sandbox.url}/crm/v3/lists/{fixtures.hubspot_list_id}/memberships/add-and-remove"
    added = http.put(url, headers=HEADERS, json={"recordIdsToAdd": [*ids, "987654"], "recordIdsToRemove": []}).json()
    # HubSpot's own spelling, typo included.
    assert added == {"recordIdsMissing": ["987654"], "recordIdsRemoved": [], "recordsIdsAdded": ids}
    changed = http.put(url, headers=HEADERS, json={"recordIdsToAdd": [ids[0]], "recordIdsToRemove": [ids[1]]}).json()
    assert changed["recordsIdsAdded"] == [] and changed["recordIdsRemoved"] == [ids[1]]
    assert sandbox.state.hubspot_list_emails(fixtures.hubspot_list_id) == {"a@example.org"}
    size = http.get(f"{sandbox.url}/crm/v3/lists/{fixtures.hubspot_list_id}", headers=HEADERS).json()["list"]["size"]
    assert size == 1


def test_memberships_page_with_the_after_cursor(sandbox, http, fixtures):
    ids: list[str] = []
    for start in range(0, 250, 100):
        emails = [f"m{i}@example.org" for i in range(start, min(start + 100, 250))]
        ids += [r["id"] for r in upsert(http, sandbox, emails).json()["results"]]
    url = f"{sandbox.url}/crm/v3/lists/{fixtures.hubspot_list_id}/memberships"
    http.put(f"{url}/add-and-remove", headers=HEADERS, json={"recordIdsToAdd": ids})
    seen: list[str] = []
    params: dict[str, object] = {"limit": 100}
    while True:
        page = http.get(url, headers=HEADERS, params=params).json()
        assert page["total"] == 250
        seen += [r["recordId"] for r in page["results"]]
        if "paging" not in page:
            break
        params["after"] = page["paging"]["next"]["after"]
    assert seen == sorted(ids, key=int)
    assert http.get(url, headers=HEADERS, params={"limit": 251}).status_code == 400


def test_rate_limit_headers_then_429_without_retry_after(sandbox, http, configure):
    """HubSpot's 429 names the limit in ``policyName`` and sends no ``Retry-After``; the headers say how the
    window and the day stand (https://developers.hubspot.com/docs/api/usage-details)."""
    first = http.get(f"{sandbox.url}/crm/v3/lists/101", headers=HEADERS)
    assert first.headers["X-HubSpot-RateLimit-Max"] == "190"
    assert first.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert first.headers["X-HubSpot-RateLimit-Daily"] == "650000"  # Professional's daily limit
    assert int(first.headers["X-HubSpot-RateLimit-Daily-Remaining"]) < 650000

    configure(faults={"hubspot": {"rate_limit": {"max_requests": 3, "window_seconds": 10}}})
    answers = [http.get(f"{sandbox.url}/crm/v3/lists/101", headers=HEADERS) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-HubSpot-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    limited = answers[-1]
    assert all(name in limited.headers for name in RATE_LIMIT_HEADERS)
    assert "Retry-After" not in limited.headers
    body = limited.json()
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert sandbox.state.requests("hubspot")[-1].fault == "rate_limited"


def test_the_daily_limit_answers_429_daily_until_the_next_day(sandbox, http, configure):
    """Past the day's requests HubSpot answers 429 with ``policyName`` ``DAILY`` and ``-Daily-Remaining`` 0
    (https://developers.hubspot.com/docs/api/usage-details); a refused request does not count."""
    configure(faults={"hubspot": {"daily_limit": 3}})
    answers = [http.get(f"{sandbox.url}/crm/v3/lists/101", headers=HEADERS) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert [a.headers["X-HubSpot-RateLimit-Daily-Remaining"] for a in answers] == ["2", "1", "0", "0", "0"]
    assert all(a.headers["X-HubSpot-RateLimit-Daily"] == "3" for a in answers)
    assert answers[-1].json()["policyName"] == "DAILY" and "Retry-After" not in answers[-1].headers
    assert all(a.headers["X-HubSpot-RateLimit-Remaining"] != "0" for a in answers)  # the window is not the cause


def test_contact_properties_are_the_defaults_plus_seeded_custom_ones(sandbox, http):
    sandbox.state.seed_hubspot_contact_property("favourite_colour", "Favourite colour")
    response = http.get(f"{sandbox.url}/crm/v3/properties/contacts", headers=HEADERS)
    assert response.status_code == 200
    results = response.json()["results"]
    names = [p["name"] for p in results]
    assert names[:6] == ["email", "firstname", "lastname", "phone", "country", "lifecyclestage"]
    assert names[6:] == ["lifetime_value", "last_purchase_date", "favourite_colour"]
    by_name = {p["name"]: p for p in results}
    assert by_name["lifetime_value"]["type"] == "number" and by_name["lifetime_value"]["hubspotDefined"] is False
    assert {"label", "fieldType", "groupName"} <= set(by_name["email"])


def test_the_daily_limit_starts_again_on_the_next_utc_day():
    from segprovider_sandbox.faults import FaultInjector, FaultKind, VendorFaults

    now = [86400 * 20000 + 86399.0]  # one second before a UTC midnight
    injector = FaultInjector({"hubspot": VendorFaults(daily_limit=2)}, seed=1, wall_clock=lambda: now[0])
    fates = [injector.decide("hubspot") for _ in range(3)]
    assert [f.kind for f in fates] == [FaultKind.NONE, FaultKind.NONE, FaultKind.RATE_LIMITED]
    assert fates[-1].daily and fates[-1].retry_after == 1
    now[0] += 1
    assert injector.decide("hubspot").kind is FaultKind.NONE

"""The sandbox as a spoke: typed values refused like the real APIs, rule-based segments evaluated on stored values."""

from __future__ import annotations

import pytest
import requests

from segprovider_sandbox import DEFAULT_HUBSPOT_TOKEN, DEFAULT_MAILCHIMP_API_KEY, serve

LIST_ID = "a1b2c3d4e5"
MC = ("any", DEFAULT_MAILCHIMP_API_KEY)
HS = {"Authorization": f"Bearer {DEFAULT_HUBSPOT_TOKEN}"}


@pytest.fixture
def sandbox(tmp_path):
    with serve(db_path=tmp_path / "sandbox.db") as running:
        running.state.seed_demo_fixtures()
        yield running


def subscribe(sandbox, members: list[dict]) -> dict:
    response = requests.post(f"{sandbox.url}/3.0/lists/{LIST_ID}", auth=MC, timeout=10,
                             json={"members": members, "update_existing": True})
    assert response.status_code == 200
    return response.json()


def test_mailchimp_refuses_a_merge_value_of_the_wrong_type_naming_the_field(sandbox) -> None:
    answer = subscribe(sandbox, [
        {"email_address": "a@example.com", "status": "subscribed", "merge_fields": {"LTV": "12,50 EUR"}},
        {"email_address": "b@example.com", "status": "subscribed", "merge_fields": {"LASTBUY": "2026-13-45"}},
        {"email_address": "c@example.com", "status": "subscribed",
         "merge_fields": {"LTV": 12.5, "LASTBUY": "11/20/2026"}}])
    errors = {e["email_address"]: e for e in answer["errors"]}
    assert errors["a@example.com"]["field"] == "LTV" and "number" in errors["a@example.com"]["field_message"]
    assert errors["b@example.com"]["field"] == "LASTBUY"
    assert answer["total_created"] == 1
    assert sandbox.state.mailchimp_member(LIST_ID, "c@example.com")["merge_fields"]["LTV"] == 12.5


def test_mailchimp_saved_segments_follow_their_conditions(sandbox) -> None:
    subscribe(sandbox, [
        {"email_address": f"u{i}@example.com", "status": "subscribed",
         "merge_fields": {"LTV": value, "COUNTRY": country, "LASTBUY": day}}
        for i, (value, country, day) in enumerate([(10, "DE", "01/05/2026"), (2500, "de", "11/01/2026"),
                                                   (3000, "FR", "")])])
    created = requests.post(f"{sandbox.url}/3.0/lists/{LIST_ID}/segments", auth=MC, timeout=10, json={
        "name": "rich_germans", "options": {"match": "all", "conditions": [
            {"condition_type": "TextMerge", "field": "LTV", "op": "greater", "value": "2000"},
            {"condition_type": "TextMerge", "field": "COUNTRY", "op": "is", "value": "DE"}]}}).json()
    assert created["type"] == "saved" and created["member_count"] == 1  # text compares ignore case
    path = f"{sandbox.url}/3.0/lists/{LIST_ID}/segments/{created['id']}"
    changed = requests.patch(path, auth=MC, timeout=10, json={"options": {"match": "any", "conditions": [
        {"condition_type": "DateMerge", "field": "LASTBUY", "op": "greater", "value": "2026-06-01"},
        {"condition_type": "TextMerge", "field": "LTV", "op": "less", "value": "100"}]}}).json()
    assert changed["member_count"] == 2
    # the count follows the stored values: a member's new value moves it in or out
    subscribe(sandbox, [{"email_address": "u0@example.com", "status": "subscribed", "merge_fields": {"LTV": 500}}])
    assert requests.get(path, auth=MC, timeout=10).json()["member_count"] == 1
    members = requests.get(f"{path}/members", auth=MC, timeout=10).json()["members"]
    assert [m["email_address"] for m in members] == ["u1@example.com"]
    bad = requests.post(f"{sandbox.url}/3.0/lists/{LIST_ID}/segments", auth=MC, timeout=10, json={
        "name": "x", "options": {"match": "all", "conditions": [
            {"condition_type": "TextMerge", "field": "NOPE", "op": "is", "value": "1"}]}})
    assert bad.status_code == 400 and "NOPE" in bad.text


def test_hubspot_refuses_a_property_value_of_the_wrong_type_with_a_400_naming_it(sandbox) -> None:
    response = requests.post(f"{sandbox.url}/crm/v3/objects/contacts/batch/upsert", headers=HS, timeout=10, json={
        "inputs": [{"idProperty": "email", "id": "a@example.com", "properties": {"lifetime_value": "lots"}}]})
    assert response.status_code == 400
    assert "lifetime_value" in response.json()["message"] and response.json()["category"] == "VALIDATION_ERROR"
    midday = requests.post(f"{sandbox.url}/crm/v3/objects/contacts/batch/upsert", headers=HS, timeout=10, json={
        "inputs": [{"idProperty": "email", "id": "a@example.com",
                    "properties": {"last_purchase_date": "1772632800000"}}]})  # 14:00 UTC, not midnight
    assert midday.status_code == 400 and "last_purchase_date" in midday.text
    assert sandbox.state.hubspot_contact("a@example.com") is None


def test_hubspot_dynamic_lists_follow_their_filters_and_refuse_manual_members(sandbox) -> None:
    upsert = requests.post(f"{sandbox.url}/crm/v3/objects/contacts/batch/upsert", headers=HS, timeout=10, json={
        "inputs": [{"idProperty": "email", "id": f"u{i}@example.com",
                    "properties": {"lifetime_value": str(v), "last_purchase_date": d, "country": c}}
                   for i, (v, d, c) in enumerate([(10, "2026-11-02", "DE"), (2500, "2026-09-01", "DE"),
                                                  (3000, "2026-11-20", "FR")])]})
    assert upsert.status_code == 200
    branch = {"filterBranchType": "OR", "filters": [], "filterBranches": [
        {"filterBranchType": "AND", "filterBranches": [], "filters": [
            {"filterType": "PROPERTY", "property": "country",
             "operation": {"operationType": "STRING", "operator": "IS_EQUAL_TO", "value": "de"}},
            {"filterType": "PROPERTY", "property": "last_purchase_date",
             "operation": {"operationType": "TIME_POINT", "operator": "IS_AFTER",
                           "timePoint": {"timeType": "DATE", "year": 2026, "month": 10, "day": 1}}}]}]}
    created = requests.post(f"{sandbox.url}/crm/v3/lists", headers=HS, timeout=10, json={
        "name": "recent_de", "objectTypeId": "0-1", "processingType": "DYNAMIC", "filterBranch": branch}).json()
    list_id = created["list"]["listId"]
    assert created["list"]["processingType"] == "DYNAMIC" and created["list"]["size"] == 1
    by_name = requests.get(f"{sandbox.url}/crm/v3/lists/object-type-id/0-1/name/recent_de", headers=HS, timeout=10)
    assert by_name.json()["list"]["listId"] == list_id
    branch["filterBranches"].append({"filterBranchType": "AND", "filterBranches": [], "filters": [
        {"filterType": "PROPERTY", "property": "lifetime_value",
         "operation": {"operationType": "NUMBER", "operator": "IS_GREATER_THAN_OR_EQUAL_TO", "value": 3000}}]})
    updated = requests.put(f"{sandbox.url}/crm/v3/lists/{list_id}/update-list-filters", headers=HS, timeout=10,
                           json={"filterBranch": branch}).json()
    assert updated["list"]["size"] == 2
    members = requests.get(f"{sandbox.url}/crm/v3/lists/{list_id}/memberships", headers=HS, timeout=10).json()
    assert members["total"] == 2
    manual = requests.put(f"{sandbox.url}/crm/v3/lists/{list_id}/memberships/add-and-remove", headers=HS,
                          timeout=10, json={"recordIdsToAdd": ["1"], "recordIdsToRemove": []})
    assert manual.status_code == 400 and "DYNAMIC" in manual.text

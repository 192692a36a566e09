"""The sandbox's Meta Custom Audiences, judged by Meta's official Python SDK (``facebook_business`` 26.x).

The SDK builds ``{FacebookSession.GRAPH}/{api_version}/{node}/{edge}`` URLs, sends parameters JSON-encoded in a form
(query string for GET and DELETE), and raises ``FacebookRequestError`` with the Graph error body on failure.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import pytest
from facebook_business.adobjects.adaccount import AdAccount
from facebook_business.adobjects.customaudience import CustomAudience
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession

from segprovider_sandbox import DEFAULT_META_ACCESS_TOKEN

if TYPE_CHECKING:
    from collections.abc import Iterator

    from segprovider_sandbox import DemoFixtures, RunningSandbox

API_VERSION = "v21.0"


def _sha256(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


@pytest.fixture
def api(sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[FacebookAdsApi]:
    """The official API object, its session pointed at the sandbox instead of ``https://graph.facebook.com``."""
    monkeypatch.setattr(FacebookSession, "GRAPH", sandbox.url)
    api = FacebookAdsApi.init(access_token=DEFAULT_META_ACCESS_TOKEN, api_version=API_VERSION, crash_log=False)
    yield api
    FacebookAdsApi.set_default_api(None)


def test_add_users_with_a_single_key_schema(api, fixtures: DemoFixtures):
    """https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences/#add-users and
    https://developers.facebook.com/docs/marketing-api/reference/custom-audience/users/"""
    audience = CustomAudience(fixtures.meta_audience_id, api=api)
    hashes = [_sha256(f"user{i}@example.com") for i in range(3)]
    answer = audience.create_user(params={"payload": {"schema": "EMAIL_SHA256", "data": [*hashes, "not-hashed"]}})
    assert answer["audience_id"] == fixtures.meta_audience_id
    assert answer["num_received"] == 4 and answer["num_invalid_entries"] == 1
    assert "session_id" in answer and "not-hashed" in answer["invalid_entry_samples"]


def test_add_then_remove_users_with_a_multi_key_schema(api, sandbox, fixtures: DemoFixtures):
    """https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences/#remove-users
    (``DELETE /{audience_id}/users``; ``schema`` may list several keys, each row in the same order)"""
    audience = CustomAudience(fixtures.meta_audience_id, api=api)
    rows = [[_sha256(f"user{i}@example.com"), hashlib.sha256(b"us").hexdigest()] for i in range(2)]
    payload = {"schema": ["EMAIL", "COUNTRY"], "data": rows}
    added = audience.create_user(params={"payload": payload, "session": {"session_id": 7, "batch_seq": 1,
                                                                          "last_batch_flag": True}})
    assert added["num_received"] == 2 and added["num_invalid_entries"] == 0 and str(added["session_id"]) == "7"
    removed = audience.delete_users(params={"payload": {"schema": ["EMAIL", "COUNTRY"], "data": rows[:1]}})
    assert removed["num_received"] == 1


def test_audience_read_reports_approximate_counts(api, fixtures: DemoFixtures):
    """https://developers.facebook.com/docs/marketing-api/reference/custom-audience/ (approximate_count_lower_bound,
    approximate_count_upper_bound)"""
    audience = CustomAudience(fixtures.meta_audience_id, api=api)
    audience.create_user(params={"payload": {"schema": "EMAIL_SHA256", "data": [_sha256("a@example.com")]}})
    read = audience.api_get(fields=[CustomAudience.Field.name, CustomAudience.Field.approximate_count_lower_bound,
                                    CustomAudience.Field.approximate_count_upper_bound])
    assert read[CustomAudience.Field.name] == fixtures.meta_audience_name
    lower = read[CustomAudience.Field.approximate_count_lower_bound]
    upper = read[CustomAudience.Field.approximate_count_upper_bound]
    assert isinstance(lower, int) and isinstance(upper, int) and 0 <= lower <= upper


def test_create_an_audience_in_an_ad_account(api, fixtures: DemoFixtures):
    """https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences/#create"""
    account = AdAccount(f"act_{fixtures.meta_ad_account_id}", api=api)
    created = account.create_custom_audience(params={
        "name": "lapsed", "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY", "description": "x"})
    assert created["id"].isdigit()
    assert CustomAudience(created["id"], api=api).api_get(fields=["name"])["name"] == "lapsed"


def test_errors_are_graph_errors_the_sdk_raises(api, sandbox):
    """https://developers.facebook.com/docs/graph-api/guides/error-handling/ (``error.code``, ``error.type``)"""
    with pytest.raises(FacebookRequestError) as raised:
        CustomAudience("424242", api=api).api_get(fields=["name"])
    assert raised.value.api_error_code() == 100 and raised.value.api_error_type() == "GraphMethodException"
    bad = FacebookAdsApi(FacebookSession(access_token="wrong-token"), api_version=API_VERSION)
    with pytest.raises(FacebookRequestError) as raised:
        CustomAudience("23850000000000001", api=bad).api_get(fields=["name"])
    assert raised.value.api_error_code() == 190 and raised.value.api_error_type() == "OAuthException"


def test_business_use_case_usage_header_reports_throttling(api, sandbox, configure, fixtures: DemoFixtures):
    """https://developers.facebook.com/docs/graph-api/overview/rate-limiting/#business-use-case-rate-limits
    (``X-Business-Use-Case-Usage``: per business id, call_count, total_cputime, total_time as percentages,
    estimated_time_to_regain_access in minutes)"""
    configure(faults={"meta": {"rate_limit": {"max_requests": 4, "window_seconds": 60}}})
    usages = []
    for _ in range(2):
        response = api.call("GET", (fixtures.meta_audience_id,), params={"fields": "name"})
        usages.append(json.loads(response.headers()["X-Business-Use-Case-Usage"])[fixtures.meta_ad_account_id][0])
    assert [usage["call_count"] for usage in usages] == [25, 50]
    assert set(usages[0]) == {"type", "call_count", "total_cputime", "total_time", "estimated_time_to_regain_access"}
    for _ in range(2):
        api.call("GET", (fixtures.meta_audience_id,), params={"fields": "name"})
    with pytest.raises(FacebookRequestError) as raised:
        api.call("GET", (fixtures.meta_audience_id,), params={"fields": "name"})
    assert raised.value.http_status() == 429 and raised.value.api_error_code() == 80003
    usage = json.loads(raised.value.http_headers()["X-Business-Use-Case-Usage"])[fixtures.meta_ad_account_id][0]
    assert usage["call_count"] == 100 and usage["estimated_time_to_regain_access"] >= 1


def test_an_erasure_removes_the_hashes_from_the_audience(api, sandbox, fixtures: DemoFixtures):
    """https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences/#remove-users: removing
    the hashes is the deletion the Marketing API offers for a custom audience's people (what ``forget`` sends)"""
    audience = CustomAudience(fixtures.meta_audience_id, api=api)
    hashes = [_sha256("erase-me@example.com"), _sha256("stays@example.com")]
    audience.create_user(params={"payload": {"schema": "EMAIL_SHA256", "data": hashes}})
    removed = audience.delete_users(params={"payload": {"schema": "EMAIL_SHA256", "data": hashes[:1]}})
    assert removed["num_received"] == 1 and removed["num_invalid_entries"] == 0
    assert sandbox.state.meta_audience_hashes(fixtures.meta_audience_id) & set(hashes) == {hashes[1]}


def test_a_multi_key_upload_of_raw_values_hashed_by_the_sdk_is_what_the_connector_sends(api, sandbox, fixtures):
    """The SDK normalizes and hashes each key of a raw multi-key upload (``add_users(..., is_raw=True)``), as
    https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences#hash documents; the
    sandbox accepts the rows, and the connector's normalization gives the very same hashes for the same people."""
    from airflow_segprovider.destinations.meta import hashed_key

    keys = CustomAudience.Schema.MultiKeySchema
    schema = [keys.email, keys.phone, keys.fn, keys.ln, keys.zip, keys.ct, keys.st, keys.country, keys.extern_id]
    raw = [[" Ann.Lee@Example.com", "+1 (650) 555-1212", "Ann", "Lee", "94025-1234", "Menlo Park", "CA", "US",
            "crm-1"],
           ["bo@example.org", "44 20 7946 0958", "Bo", "O'Neil", "10115", "Berlin", "BE", "de", "crm-2"]]
    audience = CustomAudience(fixtures.meta_audience_id, api=api)
    added = audience.add_users(schema, raw, is_raw=True).json()
    assert added["num_received"] == 2 and added["num_invalid_entries"] == 0
    sdk_rows = CustomAudience.format_params(schema, raw, is_raw=True)["payload"]["data"]
    assert [[hashed_key(key, value) for key, value in zip(schema, row)] for row in raw] == sdk_rows
    assert sandbox.state.meta_audience_hashes(fixtures.meta_audience_id)
    removed = audience.remove_users(schema, raw, is_raw=True).json()
    assert removed["num_received"] == 2
    assert sandbox.state.meta_audience_hashes(fixtures.meta_audience_id) == set()

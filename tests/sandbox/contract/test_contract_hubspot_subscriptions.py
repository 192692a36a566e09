"""The sandbox's HubSpot subscription preferences, judged by HubSpot's official Python SDK (``hubspot-api-client``).

The SDK's ``communication_preferences`` client speaks the v3 API
(https://developers.hubspot.com/docs/api-reference/legacy/communication-preferences/v3/guide); with
``client_side_validation`` on, every answer must deserialize into its models (required fields, the ``status`` and
``sourceOfStatus`` enums), and errors come back as its ``ApiException`` carrying HubSpot's error body.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from hubspot import Client
from hubspot.communication_preferences import PublicUpdateSubscriptionStatusRequest
from hubspot.communication_preferences.exceptions import ApiException

from segprovider_sandbox import DEFAULT_HUBSPOT_TOKEN

if TYPE_CHECKING:
    from segprovider_sandbox import RunningSandbox


@pytest.fixture
def client(sandbox: RunningSandbox) -> Client:
    return Client.create(access_token=DEFAULT_HUBSPOT_TOKEN, host=sandbox.url, client_side_validation=True)


def statuses(client: Client, email: str) -> dict[str, str]:
    answer = client.communication_preferences.status_api.get_email_status(email)
    assert answer.recipient == email
    return {status.id: status.status for status in answer.subscription_statuses}


def test_definitions_list_the_accounts_subscription_types(client):
    """https://developers.hubspot.com/docs/api-reference/legacy/communication-preferences/v3/get-definitions"""
    answer = client.communication_preferences.definition_api.get_page()
    names = {d.name: d for d in answer.subscription_definitions}
    assert {"Marketing Information", "One to One"} <= set(names)
    assert names["Marketing Information"].is_default is True and names["Marketing Information"].is_active is True


def test_an_unsubscribe_opts_the_address_out_and_the_api_cannot_subscribe_it_again(client, sandbox):
    """https://developers.hubspot.com/docs/api-reference/legacy/communication-preferences/v3/unsubscribe-contact and
    .../subscribe-contact ("will not allow you to resubscribe contacts who have opted out")"""
    email = "ada@example.com"
    assert set(statuses(client, email).values()) == {"NOT_SUBSCRIBED"}  # never answered
    sandbox.state.set_hubspot_subscription(email, "1", "SUBSCRIBED")  # the person's own sign-up form
    assert statuses(client, email)["1"] == "SUBSCRIBED"

    answer = client.communication_preferences.status_api.unsubscribe(
        PublicUpdateSubscriptionStatusRequest(email_address=email, subscription_id="1"))

    assert (answer.id, answer.status, answer.source_of_status) == ("1", "NOT_SUBSCRIBED", "SUBSCRIPTION_STATUS")
    assert statuses(client, email)["1"] == "NOT_SUBSCRIBED"
    for send in (client.communication_preferences.status_api.subscribe,
                 client.communication_preferences.status_api.unsubscribe):
        with pytest.raises(ApiException) as refused:
            send(PublicUpdateSubscriptionStatusRequest(email_address=email, subscription_id="1"))
        assert refused.value.status == 400 and json.loads(refused.value.body)["category"] == "VALIDATION_ERROR"
    assert sandbox.state.hubspot_subscriptions(email) == {"1": "NOT_SUBSCRIBED"}


def test_an_unknown_subscription_type_is_a_validation_error(client):
    with pytest.raises(ApiException) as refused:
        client.communication_preferences.status_api.unsubscribe(
            PublicUpdateSubscriptionStatusRequest(email_address="ada@example.com", subscription_id="999"))
    assert refused.value.status == 400 and "999" in json.loads(refused.value.body)["message"]

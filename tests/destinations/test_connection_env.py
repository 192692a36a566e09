"""``AIRFLOW_CONN_<ID>`` read by the CLI: JSON or URI, and an unreadable one named, never a JSONDecodeError."""

from __future__ import annotations

import json

import pytest

from airflow_segprovider.core.destination import DestinationConfigError
from airflow_segprovider.destinations.connection import connection_from_env

VARIABLE = "AIRFLOW_CONN_SEGPROVIDER_MAILCHIMP"


def test_json_form_with_extra_as_text_or_object(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIABLE, json.dumps({"conn_type": "x", "host": "h", "extra": json.dumps({"a": 1})}))
    assert connection_from_env("segprovider_mailchimp")["extra"] == {"a": 1}
    monkeypatch.setenv(VARIABLE, json.dumps({"conn_type": "x", "host": "h", "extra": {"a": 2}}))
    assert connection_from_env("segprovider_mailchimp")["extra"] == {"a": 2}


def test_uri_form_with_extra_in_query_and_in___extra__(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VARIABLE, "http://user:p%40ss@example.com:8080/db?timeout=5")
    connection = connection_from_env("segprovider_mailchimp")
    assert connection["password"] == "p@ss" and connection["port"] == 8080 and connection["extra"] == {"timeout": "5"}
    monkeypatch.setenv(VARIABLE, 'http://example.com?__extra__={"timeout": 5}')
    assert connection_from_env("segprovider_mailchimp")["extra"] == {"timeout": 5}


@pytest.mark.parametrize("value", [
    json.dumps({"conn_type": "x", "extra": "{not json"}),
    json.dumps({"conn_type": "x", "extra": "[1, 2]"}),
    json.dumps({"conn_type": "x", "extra": 5}),
    json.dumps(["a", "list"]),
    "http://example.com?__extra__={not json",
    "http://example.com?__extra__=[1]",
    "http://example.com:99999999/",
    "http://[::1/",
])
def test_an_unreadable_connection_is_a_config_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                                         value: str) -> None:
    monkeypatch.setenv(VARIABLE, value)

    with pytest.raises(DestinationConfigError) as raised:
        connection_from_env("segprovider_mailchimp", destination="mailchimp_newsletter")

    assert VARIABLE in str(raised.value)
    assert raised.value.field == "connection_id"
    assert "not json" not in str(raised.value)  # the value may hold secrets: named, never echoed

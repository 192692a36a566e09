"""The factory, the connection field descriptions, and the no-Airflow rule."""

from __future__ import annotations

import subprocess
import sys

import pytest

from airflow_segprovider.core.destination import DestinationClient, DestinationConfigError
from airflow_segprovider.destinations import DESTINATION_KINDS, connection_fields, create_client

VALID = {
    "mailchimp": ({"list_id": "a1b2c3d4e5", "segment_id": "1"}, {"api_key": "k-us6"}),
    "hubspot": ({"list_id": "321"}, {"access_token": "pat"}),
    "meta": ({"audience_id": "238500"}, {"access_token": "EAA"}),
    "webhook": ({"url": "https://hooks.example.com/segments"}, {"signing_secret": "s"}),
}


def test_every_kind_builds_a_destination_client():
    assert set(DESTINATION_KINDS) == set(VALID)
    for kind, (config, credentials) in VALID.items():
        with create_client(kind, f"{kind}_dest", config, credentials) as client:
            assert isinstance(client, DestinationClient)
            assert client.kind == kind
            assert client.name == f"{kind}_dest"
            assert client.max_batch_size > 0


def test_unknown_kind_names_the_choices():
    with pytest.raises(DestinationConfigError) as caught:
        create_client("salesforce", "sf", {}, {})
    assert caught.value.field == "kind"
    assert "mailchimp" in str(caught.value)
    with pytest.raises(DestinationConfigError):
        connection_fields("salesforce")


def test_connection_fields_say_where_each_value_lives():
    for kind, (config, credentials) in VALID.items():
        fields = connection_fields(kind)
        for required in (f for f in fields if f.required):
            source = credentials if required.target == "credentials" else config
            assert required.name in source, (kind, required.name)
        # Every secret goes to credentials; the password field always holds one.
        assert all(f.target == "credentials" for f in fields if f.secret)
        assert any(f.conn_attr == "password" and f.secret for f in fields)


def test_wrong_types_are_reported_per_field():
    with pytest.raises(DestinationConfigError) as caught:
        create_client("hubspot", "h", {"list_id": "1", "read_timeout": "fast"}, {"access_token": "t"})
    assert caught.value.field == "read_timeout"
    assert "destinations.yml" in str(caught.value)


def test_the_destinations_package_does_not_import_airflow():
    code = (
        "import sys, airflow_segprovider.destinations as d, airflow_segprovider.destinations.registry; "
        "leaked = [m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')]; "
        "assert not leaked, leaked"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

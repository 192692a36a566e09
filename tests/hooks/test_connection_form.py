"""The connection forms Airflow shows for the destination connection types match the connectors' field specs."""

from __future__ import annotations

import pytest

from airflow_segprovider.destinations.registry import DESTINATION_KINDS, connection_fields
from airflow_segprovider.get_provider_info import get_provider_info
from airflow_segprovider.hooks.connection_form import (
    CONNECTION_TYPES,
    STANDARD_FIELDS,
    conn_fields,
    connection_type,
)
from airflow_segprovider.hooks.destination import HOOKS_BY_KIND, SegproviderDestinationHook

KINDS = sorted(DESTINATION_KINDS)


def provider_entry(conn_type: str) -> dict:
    entries = [e for e in get_provider_info()["connection-types"] if e["connection-type"] == conn_type]
    assert len(entries) == 1, entries
    return entries[0]


def test_every_destination_kind_has_a_hook_and_a_connection_type() -> None:
    assert sorted(HOOKS_BY_KIND) == KINDS
    assert sorted(CONNECTION_TYPES) == KINDS
    declared = {e["connection-type"]: e["hook-class-name"] for e in get_provider_info()["connection-types"]}
    assert declared == {
        hook.conn_type: f"{hook.__module__}.{hook.__qualname__}" for hook in HOOKS_BY_KIND.values()
    }


@pytest.mark.parametrize("kind", KINDS)
def test_hook_declares_airflows_hook_attributes(kind: str) -> None:
    hook = HOOKS_BY_KIND[kind]
    entry = provider_entry(hook.conn_type)

    assert issubclass(hook, SegproviderDestinationHook)
    assert hook.conn_type == f"segprovider_{kind}" == connection_type(kind).connection_type
    assert hook.hook_name == entry["hook-name"]
    assert hook.default_conn_name
    # Airflow's Connection.get_hook() passes the connection id under conn_name_attr
    assert hook(**{hook.conn_name_attr: "some_conn"}).conn_id == "some_conn"
    assert getattr(hook(**{hook.conn_name_attr: "some_conn"}), hook.conn_name_attr) == "some_conn"
    assert hook().conn_id == hook.default_conn_name


@pytest.mark.parametrize("kind", KINDS)
def test_standard_fields_are_relabeled_from_the_specs_and_the_unused_ones_hidden(kind: str) -> None:
    behaviour = HOOKS_BY_KIND[kind].get_ui_field_behaviour()
    on_standard_fields = {spec.conn_attr: spec for spec in connection_fields(kind) if spec.conn_attr != "extra"}

    assert set(behaviour["hidden_fields"]) == set(STANDARD_FIELDS) - set(on_standard_fields)
    for attr, spec in on_standard_fields.items():
        assert attr not in behaviour["hidden_fields"]
        assert behaviour["relabeling"][attr] == spec.label
        assert behaviour["placeholders"][attr] == spec.description
    # the extra stays visible: it names the target test_connection checks, and HTTP tuning
    assert "extra" not in behaviour["hidden_fields"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_secret_lands_in_a_masked_field(kind: str) -> None:
    behaviour = HOOKS_BY_KIND[kind].get_ui_field_behaviour()
    extra_fields = conn_fields(kind)

    for spec in connection_fields(kind):
        if spec.conn_attr == "extra":
            field = extra_fields[spec.name]
            assert field["label"] == spec.label
            assert field["description"] == spec.description
            assert (field["schema"].get("format") == "password") is spec.secret, spec.name
        elif spec.secret:
            # the password field is the one standard field Airflow always masks
            assert spec.conn_attr == "password", f"secret {spec.name} is kept in the visible {spec.conn_attr}"
            assert behaviour["relabeling"]["password"] == spec.label
    assert set(extra_fields) == {spec.name for spec in connection_fields(kind) if spec.conn_attr == "extra"}


@pytest.mark.parametrize("kind", KINDS)
def test_provider_metadata_carries_the_same_form(kind: str) -> None:
    hook = HOOKS_BY_KIND[kind]
    behaviour = hook.get_ui_field_behaviour()
    entry = provider_entry(hook.conn_type)

    assert entry["ui-field-behaviour"] == {
        "hidden-fields": behaviour["hidden_fields"],
        "relabeling": behaviour["relabeling"],
        "placeholders": behaviour["placeholders"],
    }
    assert entry.get("conn-fields", {}) == conn_fields(kind)


def test_meta_and_webhook_secrets_in_extra_are_password_fields() -> None:
    # spelled out, so a change of the specs that unmasks a secret fails here by name
    assert conn_fields("meta")["app_secret"]["schema"]["format"] == "password"
    assert "format" not in conn_fields("meta")["api_version"]["schema"]
    assert conn_fields("webhook")["auth_token"]["schema"]["format"] == "password"
    assert conn_fields("mailchimp") == {}
    assert list(conn_fields("hubspot")) == ["tier"] and "format" not in conn_fields("hubspot")["tier"]["schema"]


@pytest.mark.integration
def test_airflow_reads_the_forms_from_the_provider_metadata() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    behaviours = manager.field_behaviours

    for kind in KINDS:
        hook = HOOKS_BY_KIND[kind]
        assert behaviours[hook.conn_type]["hidden_fields"] == hook.get_ui_field_behaviour()["hidden_fields"]
        assert behaviours[hook.conn_type]["relabeling"] == hook.get_ui_field_behaviour()["relabeling"]
        for spec in connection_fields(kind):
            if spec.conn_attr != "extra":
                continue
            widget = widgets[f"extra__{hook.conn_type}__{spec.name}"]
            assert widget.hook_class_name == f"{hook.__module__}.{hook.__qualname__}"
            assert widget.is_sensitive is spec.secret, spec.name

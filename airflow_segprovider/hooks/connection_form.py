"""The destination connection types and their Airflow connection form, derived from the connectors' field specs.

Each connector declares its connection once, as
:class:`~airflow_segprovider.destinations.config.ConnectionField` specs (which
connection attribute holds what, and whether it is secret). Everything Airflow
shows or reads is derived from them here: the hooks' ``get_ui_field_behaviour()``
and the ``connection-types`` entries of ``get_provider_info()``.

Airflow 3.2+ renders the connection form from the provider metadata alone
(``conn-fields`` for extra fields and ``ui-field-behaviour`` for the standard
ones), without importing hooks or ``wtforms``; it deprecates the hook methods
``get_connection_form_widgets()`` / ``get_ui_field_behaviour()`` as a discovery
path. This module therefore imports nothing from Airflow: provider discovery
calls it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_segprovider.destinations import hubspot, mailchimp, meta, webhook
from airflow_segprovider.destinations.registry import connection_fields

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The standard connection attributes a connection form can hide, relabel or fill with a placeholder.
#: ``extra`` is never hidden: it holds the default target that ``test_connection`` checks, and HTTP tuning.
STANDARD_FIELDS = ("host", "schema", "login", "password", "port")

_HOOKS_MODULE = "airflow_segprovider.hooks.destination"


@dataclass(frozen=True)
class DestinationConnectionType:
    """One Airflow connection type: a destination kind and the hook that reads it.

    :param kind: the destination kind (``mailchimp``, ``hubspot``, ``meta``, ``webhook``).
    :param connection_type: the Airflow ``conn_type``.
    :param hook_name: the name shown in the connection type list.
    :param hook_class: the hook's class name in :mod:`airflow_segprovider.hooks.destination`.
    :param target_example: an example target in the connection's extra, the one ``test_connection`` checks.
    """

    kind: str
    connection_type: str
    hook_name: str
    hook_class: str
    target_example: Mapping[str, Any] = field(default_factory=dict)

    @property
    def hook_class_name(self) -> str:
        """The hook's import path, as ``get_provider_info()`` declares it."""
        return f"{_HOOKS_MODULE}.{self.hook_class}"


CONNECTION_TYPES: dict[str, DestinationConnectionType] = {
    spec.kind: spec
    for spec in (
        DestinationConnectionType(
            kind=mailchimp.KIND,
            connection_type="segprovider_mailchimp",
            hook_name="Segprovider: Mailchimp",
            hook_class="MailchimpHook",
            target_example={"list_id": "a1b2c3d4e5", "segment_id": "1001"},
        ),
        DestinationConnectionType(
            kind=hubspot.KIND,
            connection_type="segprovider_hubspot",
            hook_name="Segprovider: HubSpot",
            hook_class="HubSpotHook",
            target_example={"list_id": "101"},
        ),
        DestinationConnectionType(
            kind=meta.KIND,
            connection_type="segprovider_meta",
            hook_name="Segprovider: Meta Custom Audiences",
            hook_class="MetaAdsHook",
            target_example={"audience_id": "23850000000000001"},
        ),
        DestinationConnectionType(
            kind=webhook.KIND,
            connection_type="segprovider_webhook",
            hook_name="Segprovider: Webhook",
            hook_class="WebhookHook",
        ),
    )
}


def connection_type(kind: str) -> DestinationConnectionType:
    """The Airflow connection type of a destination kind.

    :raises DestinationConfigError: unknown kind (from the connector registry).
    """
    connection_fields(kind)  # one place that rejects unknown kinds, with the list of valid ones
    return CONNECTION_TYPES[kind]


def ui_field_behaviour(kind: str) -> dict[str, Any]:
    """Hidden, relabeled and pre-filled standard fields of a kind's connection form.

    In the shape of ``BaseHook.get_ui_field_behaviour()``: ``hidden_fields``, ``relabeling``, ``placeholders``.
    Secrets the connector reads from ``password`` are relabeled there, so the form masks them.
    """
    specs = [spec for spec in connection_fields(kind) if spec.conn_attr != "extra"]
    used = {spec.conn_attr for spec in specs}
    behaviour: dict[str, Any] = {
        "hidden_fields": [name for name in STANDARD_FIELDS if name not in used],
        "relabeling": {spec.conn_attr: spec.label for spec in specs},
        "placeholders": {spec.conn_attr: spec.description for spec in specs},
    }
    example = CONNECTION_TYPES[kind].target_example
    if example:
        behaviour["placeholders"]["extra"] = json.dumps(example)
    return behaviour


def conn_fields(kind: str) -> dict[str, Any]:
    """The extra fields of a kind's connection form, as Airflow's declarative ``conn-fields``.

    Secret fields carry ``format: password``: Airflow masks them in the form and treats them as sensitive.
    """
    fields: dict[str, Any] = {}
    for spec in connection_fields(kind):
        if spec.conn_attr != "extra":
            continue
        schema: dict[str, Any] = {"type": "string" if spec.required else ["string", "null"]}
        if spec.secret:
            schema["format"] = "password"
        fields[spec.name] = {"label": spec.label, "description": spec.description, "schema": schema}
    return fields


def provider_connection_types() -> list[dict[str, Any]]:
    """The ``connection-types`` entries of ``get_provider_info()``, one per destination kind."""
    entries = []
    for kind in sorted(CONNECTION_TYPES):
        spec = CONNECTION_TYPES[kind]
        behaviour = ui_field_behaviour(kind)
        entry: dict[str, Any] = {
            "hook-class-name": spec.hook_class_name,
            "hook-name": spec.hook_name,
            "connection-type": spec.connection_type,
            "ui-field-behaviour": {
                "hidden-fields": behaviour["hidden_fields"],
                "relabeling": behaviour["relabeling"],
                "placeholders": behaviour["placeholders"],
            },
        }
        extra_fields = conn_fields(kind)
        if extra_fields:
            entry["conn-fields"] = extra_fields
        entries.append(entry)
    return entries

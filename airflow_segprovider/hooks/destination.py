"""Hooks of the destination connection types: Mailchimp, HubSpot, Meta Custom Audiences and webhooks.

A hook owns one Airflow connection and turns it into the plain mapping the
connectors take (``host``, ``login``, ``password``, ``port``, ``schema`` and
``extra`` as a dict); which field becomes which credential or config key is
decided by the connectors' field specs, in
:func:`~airflow_segprovider.destinations.connection.split_connection`. The
connection is read when a client is first needed, never at construction, so a
DAG file that creates hooks parses without connection look-ups.

Every secret the connection holds is registered with Airflow's secrets masker
before a client is built, so it is redacted from task logs whatever logs it.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret

from airflow_segprovider.core.destination import DestinationConfigError, DestinationError
from airflow_segprovider.destinations import hubspot, mailchimp, meta, webhook
from airflow_segprovider.destinations.connection import client_settings
from airflow_segprovider.destinations.registry import connection_fields, create_client
from airflow_segprovider.hooks.connection_form import CONNECTION_TYPES, ui_field_behaviour

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from airflow.sdk import Connection

    from airflow_segprovider.core.destination import DestinationClient
    from airflow_segprovider.core.project.spec import Destination, Project, Sync

__all__ = [
    "HubSpotHook",
    "MailchimpHook",
    "MetaAdsHook",
    "SegproviderDestinationHook",
    "WebhookHook",
    "connection_dict",
    "connection_to_dict",
    "hook_for_destination",
]

#: ``test_connection`` answers quickly: one attempt per request and a bounded wait on rate limits,
#: whatever the connection's extra sets for syncs.
TEST_CONNECTION_SETTINGS: dict[str, Any] = {"max_attempts": 1, "max_rate_limit_wait_seconds": 30.0}


def connection_to_dict(connection: Connection, *, secret_extras: Iterable[str] = ()) -> dict[str, Any]:
    """The fields of an Airflow connection as the connectors take them, its secrets registered for masking.

    Extra fields saved by the connection form under their legacy prefixed name
    (``extra__<conn_type>__<name>``) are read under their plain name; a plain key wins.

    :param connection: the Airflow connection.
    :param secret_extras: extra fields that hold secrets (the password is always one).
    :returns: ``conn_type``, ``host``, ``login``, ``password``, ``port``, ``schema`` and ``extra`` (a dict).
    """
    extra = _plain_extra(connection.extra_dejson, connection.conn_type)
    if connection.password:
        mask_secret(connection.password)
    for name in secret_extras:
        if extra.get(name):
            mask_secret(extra[name])
    return {
        "conn_type": connection.conn_type,
        "host": connection.host,
        "login": connection.login,
        "password": connection.password,
        "port": connection.port,
        "schema": connection.schema,
        "extra": extra,
    }


def connection_dict(conn_id: str) -> dict[str, Any]:
    """Look up Airflow connection ``conn_id`` and return its fields (see :func:`connection_to_dict`).

    :raises AirflowNotFoundException: the connection is not defined.
    """
    return connection_to_dict(BaseHook.get_connection(conn_id))


def _plain_extra(extra: Mapping[str, Any], conn_type: str | None) -> dict[str, Any]:
    prefix = f"extra__{conn_type}__"
    plain = {key: value for key, value in extra.items() if not key.startswith(prefix)}
    for key, value in extra.items():
        if key.startswith(prefix) and value not in (None, ""):
            plain.setdefault(key[len(prefix):], value)
    return plain


class SegproviderDestinationHook(BaseHook):
    """Base of the destination hooks: reads one connection and builds the destination's connector from it.

    Subclasses set the destination ``kind`` and Airflow's hook attributes (``conn_type`` and ``hook_name``
    from :data:`~airflow_segprovider.hooks.connection_form.CONNECTION_TYPES`, as ``get_provider_info()``
    declares them), and name their connection id argument after ``conn_name_attr``: Airflow's
    ``Connection.get_hook()`` passes it by that name.

    :param conn_id: the Airflow connection; the class's ``default_conn_name`` when not given.
    """

    kind: ClassVar[str]
    conn_name_attr: ClassVar[str]
    default_conn_name: ClassVar[str]
    conn_type: ClassVar[str]
    hook_name: ClassVar[str]

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.default_conn_name
        # Airflow's convention: the connection id is also readable under conn_name_attr
        setattr(self, self.conn_name_attr, self.conn_id)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden, relabeled and pre-filled fields of the connection form, derived from the connector's specs."""
        return ui_field_behaviour(cls.kind)

    @cached_property
    def airflow_connection(self) -> Connection:
        """The Airflow connection, looked up on first use.

        :raises AirflowNotFoundException: it is not defined.
        """
        return self.get_connection(self.conn_id)

    def connection_dict(self) -> dict[str, Any]:
        """The connection's fields as the connectors take them; its secrets are registered for masking."""
        connection = self.airflow_connection
        if connection.conn_type and connection.conn_type != self.conn_type:
            self.log.warning("connection '%s' has conn_type '%s'; %s expects '%s'", self.conn_id,
                             connection.conn_type, type(self).__name__, self.conn_type)
        secret_extras = [spec.name for spec in connection_fields(self.kind)
                         if spec.conn_attr == "extra" and spec.secret]
        return connection_to_dict(connection, secret_extras=secret_extras)

    def get_client(self, project: Project, sync: Sync, overrides: Mapping[str, Any] | None = None
                   ) -> DestinationClient:
        """The connector for one sync: the project's destination config, the sync's target, then the connection.

        :param project: the loaded segments project.
        :param sync: the sync whose target the client writes to.
        :param overrides: config that wins over everything else (e.g. HTTP settings in tests).
        :raises DestinationConfigError: the sync's destination is not of this hook's kind, or a field is
            missing or invalid (named in the message).
        :raises AirflowNotFoundException: the connection is not defined.
        """
        from airflow_segprovider.destinations.connection import build_client

        destination = project.destinations[sync.destination]
        if destination.kind != self.kind:
            raise DestinationConfigError(
                f"{type(self).__name__} builds {self.kind} clients, but sync '{sync.id}' writes to a "
                f"{destination.kind} destination", destination=destination.name, field="kind",
                hint=f"use hook_for_destination(), or the {destination.kind} hook")
        # the hook's own connection id goes into the client's config, so its error hints name it
        return build_client(project, sync, self.connection_dict(),
                            {"connection_id": self.conn_id, **(overrides or {})})

    def get_conn(self) -> DestinationClient:
        """A connector configured from the connection alone: its extra names the target (list, audience).

        :raises DestinationConfigError: the connection does not name a target, or a field is invalid.
        """
        return self._client_from_connection()

    def test_connection(self) -> tuple[bool, str]:
        """Check the credentials against the target named in the connection's extra.

        :returns: ``(True, message)`` when the connector's ``check()`` passes, else ``(False, why)``;
            every message names the connection.
        """
        label = f"connection '{self.conn_id}' ({self.hook_name})"
        try:
            client = self._client_from_connection(TEST_CONNECTION_SETTINGS)
        except AirflowNotFoundException:
            return False, f"connection '{self.conn_id}' is not defined"
        except DestinationConfigError as exc:
            return False, f"{label}: {exc.message}; {self._config_fix(exc.field)}"
        try:
            client.check()
        except DestinationError as exc:
            return False, f"{label}: {str(exc).removeprefix(f'destination {self.conn_id!r}: ')}"
        finally:
            client.close()
        return True, f"{label}: credentials accepted and the target exists"

    def _client_from_connection(self, overrides: Mapping[str, Any] | None = None) -> DestinationClient:
        config, credentials = client_settings(self.kind, {}, {}, self.connection_dict(), self.conn_id, overrides)
        return create_client(self.kind, self.conn_id, config, credentials)

    def _config_fix(self, field_name: str) -> str:
        for spec in connection_fields(self.kind):
            if spec.name == field_name:
                where = "the connection's extra" if spec.conn_attr == "extra" else f"the connection's {spec.conn_attr}"
                return f"set {spec.label} in {where}"
        example = CONNECTION_TYPES[self.kind].target_example
        return (f"set \"{field_name}\" in the connection's extra: test_connection checks the target it names"
                + (f", e.g. {json.dumps(example)}" if example else ""))


class MailchimpHook(SegproviderDestinationHook):
    """A Mailchimp Marketing API connection: the API key in ``password``; ``host`` overrides the base URL.

    :param mailchimp_conn_id: the Airflow connection (``segprovider_mailchimp`` by default).
    """

    kind = mailchimp.KIND
    conn_name_attr = "mailchimp_conn_id"
    default_conn_name = "segprovider_mailchimp"
    conn_type = CONNECTION_TYPES[kind].connection_type
    hook_name = CONNECTION_TYPES[kind].hook_name

    def __init__(self, mailchimp_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(mailchimp_conn_id, **kwargs)


class HubSpotHook(SegproviderDestinationHook):
    """A HubSpot private app connection: the access token in ``password``; ``host`` overrides the base URL.

    :param hubspot_conn_id: the Airflow connection (``segprovider_hubspot`` by default).
    """

    kind = hubspot.KIND
    conn_name_attr = "hubspot_conn_id"
    default_conn_name = "segprovider_hubspot"
    conn_type = CONNECTION_TYPES[kind].connection_type
    hook_name = CONNECTION_TYPES[kind].hook_name

    def __init__(self, hubspot_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(hubspot_conn_id, **kwargs)


class MetaAdsHook(SegproviderDestinationHook):
    """A Meta Marketing API connection: the access token in ``password``, the app secret and API version in extra.

    :param meta_conn_id: the Airflow connection (``segprovider_meta`` by default).
    """

    kind = meta.KIND
    conn_name_attr = "meta_conn_id"
    default_conn_name = "segprovider_meta"
    conn_type = CONNECTION_TYPES[kind].connection_type
    hook_name = CONNECTION_TYPES[kind].hook_name

    def __init__(self, meta_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(meta_conn_id, **kwargs)


class WebhookHook(SegproviderDestinationHook):
    """A webhook receiver: its URL in ``host``, the signing secret in ``password``, a bearer token in extra.

    :param webhook_conn_id: the Airflow connection (``segprovider_webhook`` by default).
    """

    kind = webhook.KIND
    conn_name_attr = "webhook_conn_id"
    default_conn_name = "segprovider_webhook"
    conn_type = CONNECTION_TYPES[kind].connection_type
    hook_name = CONNECTION_TYPES[kind].hook_name

    def __init__(self, webhook_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(webhook_conn_id, **kwargs)


HOOKS_BY_KIND: dict[str, type[SegproviderDestinationHook]] = {
    hook.kind: hook for hook in (MailchimpHook, HubSpotHook, MetaAdsHook, WebhookHook)
}


def hook_for_destination(destination: Destination) -> SegproviderDestinationHook:
    """The hook of a project destination, on the destination's ``connection_id`` (not looked up yet).

    :raises DestinationConfigError: no hook exists for the destination's kind.
    """
    hook_class = HOOKS_BY_KIND.get(destination.kind)
    if hook_class is None:
        raise DestinationConfigError(
            f"no Airflow hook for destination kind {destination.kind!r}", destination=destination.name,
            field="kind", hint=f"use one of: {', '.join(sorted(HOOKS_BY_KIND))}")
    return hook_class(destination.connection_id)

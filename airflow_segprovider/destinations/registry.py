"""Which destination kinds exist, how to build a client for one, and what its connection holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.destination import DestinationConfigError
from airflow_segprovider.destinations import hubspot, mailchimp, meta, webhook

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow_segprovider.core.destination import DestinationClient
    from airflow_segprovider.destinations.config import ConnectionField

_FACTORIES: dict[str, Callable[[str, Mapping[str, Any], Mapping[str, Any]], DestinationClient]] = {
    hubspot.KIND: hubspot.HubSpotClient.from_config,
    mailchimp.KIND: mailchimp.MailchimpClient.from_config,
    meta.KIND: meta.MetaCustomAudienceClient.from_config,
    webhook.KIND: webhook.WebhookClient.from_config,
}

CONNECTION_FIELDS: dict[str, tuple[ConnectionField, ...]] = {
    hubspot.KIND: hubspot.CONNECTION_FIELDS,
    mailchimp.KIND: mailchimp.CONNECTION_FIELDS,
    meta.KIND: meta.CONNECTION_FIELDS,
    webhook.KIND: webhook.CONNECTION_FIELDS,
}

DESTINATION_KINDS: tuple[str, ...] = tuple(sorted(_FACTORIES))


def create_client(kind: str, name: str, config: Mapping[str, Any], credentials: Mapping[str, Any]) -> DestinationClient:
    """Build the client of one destination, validating its config and credentials first.

    :param kind: the destination kind (``mailchimp``, ``hubspot``, ``meta``, ``webhook``).
    :param name: the destination's name as declared in the project.
    :param config: the destination's config, plus HTTP overrides (``base_url``, timeouts, rates).
    :param credentials: secrets read from the Airflow connection (see :func:`connection_fields`).
    :raises DestinationConfigError: unknown kind, or a missing or invalid field (named in the message).
    """
    factory = _FACTORIES.get(kind)
    if factory is None:
        raise DestinationConfigError(
            f"unknown destination kind {kind!r}",
            destination=name,
            field="kind",
            hint=f"use one of: {', '.join(DESTINATION_KINDS)}",
        )
    return factory(name, config, credentials)


def connection_fields(kind: str) -> tuple[ConnectionField, ...]:
    """The Airflow connection fields of a destination kind: where each lives and where the hook passes it.

    :raises DestinationConfigError: unknown kind.
    """
    fields = CONNECTION_FIELDS.get(kind)
    if fields is None:
        raise DestinationConfigError(
            f"unknown destination kind {kind!r}", field="kind", hint=f"use one of: {', '.join(DESTINATION_KINDS)}"
        )
    return fields

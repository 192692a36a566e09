"""The HubSpot vendor: authentication, the route table, rate-limit headers and the errors the server asks for."""

from __future__ import annotations

import uuid
from functools import partial
from typing import TYPE_CHECKING

from segprovider_sandbox.hubspot import batch_writes, contacts, dynamic_lists, gdpr, subscriptions
from segprovider_sandbox.hubspot.responses import error_body
from segprovider_sandbox.wire import Routes, SandboxResponse, VendorError

if TYPE_CHECKING:
    from collections.abc import Callable

    from segprovider_sandbox.config import Credentials
    from segprovider_sandbox.faults import WindowUsage
    from segprovider_sandbox.store import SandboxState
    from segprovider_sandbox.wire import SandboxRequest


PREFIX = "/crm/v3"

_CONTACTS = r"/crm/v3/objects/contacts"
_LIST = r"/crm/v3/lists/(?P<list_id>[^/]+)"
_PREFERENCES = r"/communication-preferences/v3"


class HubSpotApi:
    """HubSpot CRM v3 contacts and lists over a :class:`SandboxState`.

    :param state: the store.
    :param credentials: the accepted tokens.
    :param window_usage: reports the rate-limit window, for the ``X-HubSpot-RateLimit-*`` headers.
    """

    vendor = "hubspot"
    max_concurrent_requests: int | None = None

    def __init__(
        self, state: SandboxState, credentials: Credentials, window_usage: Callable[[], WindowUsage | None]
    ) -> None:
        self._state = state
        self._tokens = frozenset(credentials.hubspot_tokens)
        self._window_usage = window_usage
        routes = Routes()
        routes.add("POST", _CONTACTS + "/batch/upsert", partial(contacts.batch_upsert, state))
        routes.add("POST", _CONTACTS + "/batch/read", partial(contacts.batch_read, state))
        routes.add("POST", _CONTACTS + "/batch/create", partial(batch_writes.batch_create, state))
        routes.add("POST", _CONTACTS + "/batch/update", partial(batch_writes.batch_update, state))
        routes.add("POST", _CONTACTS + "/gdpr-delete", partial(gdpr.gdpr_delete, state))
        routes.add("GET", _CONTACTS + r"/(?P<contact_id>[^/]+)", partial(contacts.get_contact, state))
        routes.add("GET", r"/crm/v3/properties/contacts/?", partial(contacts.contact_properties, state))
        routes.add("POST", r"/crm/v3/properties/contacts/?", partial(contacts.create_contact_property, state))
        routes.add("GET", r"/crm/v3/properties/contacts/(?P<name>[^/]+)", partial(contacts.get_contact_property, state))
        # DYNAMIC (filter-based) lists are served by .dynamic_lists, which hands static ones to .lists
        routes.add("POST", r"/crm/v3/lists/?", partial(dynamic_lists.hubspot_create_list, state))
        routes.add("GET", r"/crm/v3/lists/object-type-id/0-1/name/(?P<name>[^/]+)",
                   partial(dynamic_lists.hubspot_list_by_name, state))
        routes.add("GET", _LIST, partial(dynamic_lists.hubspot_get_list, state))
        routes.add("PUT", _LIST + "/update-list-filters", partial(dynamic_lists.hubspot_update_filters, state))
        routes.add("PUT", _LIST + "/memberships/add-and-remove", partial(dynamic_lists.hubspot_add_and_remove, state))
        routes.add("PUT", _LIST + "/memberships/add", partial(dynamic_lists.hubspot_add_and_remove, state, only="add"))
        routes.add("PUT", _LIST + "/memberships/remove",
                   partial(dynamic_lists.hubspot_add_and_remove, state, only="remove"))
        routes.add("GET", _LIST + "/memberships", partial(dynamic_lists.hubspot_memberships, state))
        # subscription preferences: who may receive marketing e-mail (.subscriptions)
        routes.add("GET", _PREFERENCES + "/definitions", partial(subscriptions.definitions, state))
        routes.add("GET", _PREFERENCES + r"/status/email/(?P<email>[^/]+)", partial(subscriptions.email_status, state))
        routes.add("POST", _PREFERENCES + "/unsubscribe", partial(subscriptions.unsubscribe, state))
        routes.add("POST", _PREFERENCES + "/subscribe", partial(subscriptions.subscribe, state))
        self._routes = routes

    def owns(self, path: str) -> bool:
        """Whether the path is under ``/crm/v3`` or ``/communication-preferences/v3``.

        :param path: the request path.
        """
        return path.startswith((PREFIX + "/", _PREFERENCES + "/"))

    def authenticate(self, request: SandboxRequest) -> str:
        """The bearer token; a 401 ``INVALID_AUTHENTICATION`` when missing or unknown.

        :param request: the request.
        """
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise VendorError(
                error_body(
                    401,
                    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION",
                )
            )
        if token not in self._tokens:
            raise VendorError(
                error_body(
                    401,
                    "The access token provided is invalid or has been revoked.",
                    "INVALID_AUTHENTICATION",
                )
            )
        return token

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Route and serve the request.

        :param request: an authenticated request.
        """
        resolved = self._routes.resolve(request.method, request.path)
        if resolved.handler is None:
            if resolved.allowed:
                return error_body(405, f"Method {request.method} is not supported on this path.", "VALIDATION_ERROR")
            return error_body(404, "Resource not found.", "OBJECT_NOT_FOUND")
        return resolved.handler(request, resolved.params)

    def rate_limited(self, retry_after: int, *, concurrency: bool) -> SandboxResponse:
        """HubSpot's 429 for the rolling window, or for the daily limit once today's requests are spent.

        HubSpot sends no ``Retry-After`` (https://developers.hubspot.com/docs/api/usage-details): the
        ``policyName`` says which limit was hit and the ``X-HubSpot-RateLimit-*`` headers
        (:meth:`finish`) say how the window and the day stand.

        :param retry_after: unused: HubSpot does not say when to come back.
        :param concurrency: unused: HubSpot limits requests per window, not simultaneous requests.
        """
        usage = self._window_usage()
        daily = usage is not None and usage.daily_remaining == 0
        policy = "DAILY" if daily else "TEN_SECONDLY_ROLLING"
        return SandboxResponse.json(
            429,
            {
                "status": "error",
                "message": f"You have reached your {policy.lower()} limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": str(uuid.uuid4()),
                "policyName": policy,
                "requestId": str(uuid.uuid4()),
            },
        )

    def server_error(self, status: int) -> SandboxResponse:
        """HubSpot's answer for a 5xx (the docs advise pausing a few seconds, then retrying).

        :param status: the 5xx status.
        """
        return error_body(status, "The request could not be completed in time. Pause, then retry.", "INTERNAL_ERROR")

    def finish(self, response: SandboxResponse) -> SandboxResponse:
        """Add the ``X-HubSpot-RateLimit-*`` headers.

        :param response: the response.
        """
        usage = self._window_usage()
        if usage is None:
            return response
        per_second = max(1, round(usage.max_requests / usage.window_seconds))
        daily = {} if usage.daily_max is None else {
            "X-HubSpot-RateLimit-Daily": str(usage.daily_max),
            "X-HubSpot-RateLimit-Daily-Remaining": str(usage.daily_remaining),
        }
        return response.with_headers(
            {
                "X-HubSpot-RateLimit-Max": str(usage.max_requests),
                "X-HubSpot-RateLimit-Remaining": str(usage.remaining),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(round(usage.window_seconds * 1000)),
                "X-HubSpot-RateLimit-Secondly": str(per_second),
                "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, per_second - usage.last_second)),
                **daily,
            }
        )

"""The Mailchimp vendor: authentication, the route table, and the errors the server asks for."""

from __future__ import annotations

import base64
import binascii
from functools import partial
from http import HTTPStatus
from typing import TYPE_CHECKING

from segprovider_sandbox.mailchimp import members, merge_fields, saved_segments, segments
from segprovider_sandbox.mailchimp.responses import problem, resource_not_found
from segprovider_sandbox.wire import Routes, VendorError

if TYPE_CHECKING:
    from segprovider_sandbox.config import Credentials
    from segprovider_sandbox.store import SandboxState
    from segprovider_sandbox.wire import SandboxRequest, SandboxResponse


PREFIX = "/3.0"

_LIST = r"/3\.0/lists/(?P<list_id>[^/]+)"
_MEMBER = _LIST + r"/members/(?P<member>[^/]+)"
_SEGMENT = _LIST + r"/segments/(?P<segment_id>[^/]+)"


class MailchimpApi:
    """The Mailchimp Marketing API v3 over a :class:`SandboxState`.

    :param state: the store.
    :param credentials: the accepted API keys.
    :param max_connections: simultaneous requests per API key before 429.
    """

    vendor = "mailchimp"

    def __init__(self, state: SandboxState, credentials: Credentials, max_connections: int) -> None:
        self._state = state
        self._api_keys = frozenset(credentials.mailchimp_api_keys)
        self.max_concurrent_requests: int | None = max_connections
        routes = Routes()
        routes.add("GET", r"/3\.0/ping", partial(members.ping, state))
        routes.add("GET", _LIST, partial(members.get_list, state))
        routes.add("POST", _LIST, partial(members.batch_subscribe, state))
        routes.add("GET", _LIST + "/members", partial(members.list_members, state))
        routes.add("GET", _MEMBER, partial(members.get_member, state))
        routes.add("PUT", _MEMBER, partial(members.put_member, state))
        routes.add("PATCH", _MEMBER, partial(members.patch_member, state))
        routes.add("DELETE", _MEMBER, partial(members.archive_member, state))
        routes.add("POST", _MEMBER + "/actions/delete-permanent", partial(members.delete_member_permanently, state))
        routes.add("GET", _MEMBER + "/tags", partial(segments.get_member_tags, state))
        routes.add("POST", _MEMBER + "/tags", partial(segments.post_member_tags, state))
        routes.add("GET", _LIST + "/merge-fields", partial(merge_fields.list_merge_fields, state))
        routes.add("POST", _LIST + "/merge-fields", partial(merge_fields.create_merge_field, state))
        routes.add("GET", _LIST + r"/merge-fields/(?P<merge_id>[^/]+)", partial(merge_fields.get_merge_field, state))
        routes.add("GET", _LIST + "/tag-search", partial(segments.tag_search, state))
        # saved (rule-based) segments are served by .saved_segments, which hands static ones to .segments
        routes.add("GET", _LIST + "/segments", partial(saved_segments.mailchimp_list_segments, state))
        routes.add("POST", _LIST + "/segments", partial(saved_segments.mailchimp_create_segment, state))
        routes.add("GET", _SEGMENT, partial(saved_segments.mailchimp_get_segment, state))
        routes.add("PATCH", _SEGMENT, partial(saved_segments.mailchimp_update_segment, state))
        routes.add("POST", _SEGMENT, partial(segments.change_segment, state))
        routes.add("GET", _SEGMENT + "/members", partial(saved_segments.mailchimp_segment_members, state))
        self._routes = routes

    def owns(self, path: str) -> bool:
        """Whether the path is under ``/3.0``.

        :param path: the request path.
        """
        return path == PREFIX or path.startswith(PREFIX + "/")

    def authenticate(self, request: SandboxRequest) -> str:
        """The API key from HTTP Basic auth; a 401 problem when missing or unknown.

        :param request: the request.
        """
        header = request.header("authorization") or ""
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "basic" or not credentials:
            raise VendorError(problem(401, "API Key Missing", "Your request did not include an API key."))
        try:
            _, _, api_key = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            api_key = ""
        if api_key not in self._api_keys:
            raise VendorError(
                problem(
                    401,
                    "API Key Invalid",
                    "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
                )
            )
        return api_key

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Route and serve the request.

        :param request: an authenticated request.
        """
        resolved = self._routes.resolve(request.method, request.path)
        if resolved.handler is None:
            if resolved.allowed:
                return problem(
                    405,
                    "Method Not Allowed",
                    "The requested method and resource are not compatible. See the Allow header for this "
                    "resource's available methods.",
                ).with_headers({"Allow": ", ".join(resolved.allowed)})
            return resource_not_found().response
        return resolved.handler(request, resolved.params)

    def rate_limited(self, retry_after: int, *, concurrency: bool) -> SandboxResponse:
        """Mailchimp's 429 ``Too Many Requests``.

        :param retry_after: seconds to advertise in ``Retry-After``.
        :param concurrency: whether the cause is too many simultaneous connections.
        """
        detail = (
            f"You have exceeded the limit of {self.max_concurrent_requests} simultaneous connections."
            if concurrency
            else "You have exceeded the sandbox's request-rate limit for this API key."
        )
        return problem(429, "Too Many Requests", detail).with_headers({"Retry-After": str(retry_after)})

    def server_error(self, status: int) -> SandboxResponse:
        """A Mailchimp 5xx problem document.

        :param status: the 5xx status.
        """
        return problem(
            status,
            HTTPStatus(status).phrase,
            "An unexpected internal error has occurred. Please contact Support for more information.",
        )

    def finish(self, response: SandboxResponse) -> SandboxResponse:
        """Mailchimp adds nothing to every response.

        :param response: the response.
        """
        return response

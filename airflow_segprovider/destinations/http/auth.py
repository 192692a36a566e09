"""How a request proves who we are, with every secret kept out of reprs and logs."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from airflow_segprovider.destinations.http.redaction import MASK

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Auth", "BasicAuth", "BearerAuth", "QueryTokenAuth"]


class Auth:
    """How a request proves who we are. Subclasses never show their secrets in ``repr``."""

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        """Add credentials to the outgoing headers or query parameters."""

    def secrets(self) -> tuple[str, ...]:
        """Every string that must never appear in a log line or an error message."""
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BasicAuth(Auth):
    """HTTP basic auth (Mailchimp: any user name, the API key as password).

    :param username: the user name; not treated as a secret.
    :param password: the password or API key.
    """

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self._password = password
        self._header = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Authorization"] = self._header

    def secrets(self) -> tuple[str, ...]:
        return (self._password, self._header.removeprefix("Basic "))

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password={MASK!r})"


class BearerAuth(Auth):
    """``Authorization: Bearer <token>`` (HubSpot private app tokens, webhook receivers).

    :param token: the access token.
    """

    def __init__(self, token: str) -> None:
        self._token = token

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        headers["Authorization"] = f"Bearer {self._token}"

    def secrets(self) -> tuple[str, ...]:
        return (self._token,)

    def __repr__(self) -> str:
        return f"BearerAuth(token={MASK!r})"


class QueryTokenAuth(Auth):
    """Token passed as query parameters (Meta's ``access_token`` and ``appsecret_proof``).

    :param params: parameter name to secret value; every value is masked.
    """

    def __init__(self, params: Mapping[str, str]) -> None:
        self._params = dict(params)

    def apply(self, headers: dict[str, str], params: dict[str, Any]) -> None:
        params.update(self._params)

    def secrets(self) -> tuple[str, ...]:
        return tuple(self._params.values())

    def __repr__(self) -> str:
        return f"QueryTokenAuth(params={ {name: MASK for name in self._params}!r})"

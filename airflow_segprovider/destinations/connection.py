"""Turn an Airflow-style connection into a connector's ``config`` and ``credentials``.

One mapping serves both worlds: the Airflow hook passes the fields of a real
``Connection``; the CLI reads the same connection from the ``AIRFLOW_CONN_<ID>``
environment variable (Airflow's own JSON or URI convention) without importing
Airflow. Precedence, as in Airflow providers: the project's destination config,
then the sync's target, then the connection (connection values fill only what
the project does not set), then explicit overrides.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from airflow_segprovider.core.destination import DestinationConfigError
from airflow_segprovider.destinations.registry import connection_fields, create_client

if TYPE_CHECKING:
    from airflow_segprovider.core.destination import DestinationClient
    from airflow_segprovider.core.project.spec import Project, Sync


def connection_from_env(conn_id: str, *, destination: str = "") -> dict[str, Any]:
    """Read connection ``conn_id`` from ``AIRFLOW_CONN_<CONN_ID>`` (JSON or URI form).

    :returns: a mapping with ``host``, ``login``, ``password``, ``port``, ``schema`` and ``extra`` (a dict).
    :raises DestinationConfigError: the variable is missing or unreadable, naming it.
    """
    variable = "AIRFLOW_CONN_" + conn_id.upper()
    raw = os.environ.get(variable)
    if not raw:
        raise DestinationConfigError(
            f"connection '{conn_id}' is not defined", destination=destination, field="connection_id",
            hint=f"create it in Airflow, or export {variable} as JSON, e.g. "
                 f"'{{\"conn_type\": \"...\", \"host\": \"https://...\", \"password\": \"...\"}}'")
    raw = raw.strip()

    def unreadable(problem: str) -> DestinationConfigError:
        # the value may hold a password: say what is wrong with it, never echo it
        return DestinationConfigError(
            f"{variable} cannot be read: {problem}", destination=destination, field="connection_id",
            hint="write it as Airflow does: JSON ('{\"conn_type\": ..., \"extra\": {...}}', extra an object "
                 "or the text of one) or a URI ('scheme://login:password@host:port/schema?key=value')")

    if raw.startswith("{"):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise unreadable(f"not valid JSON ({exc.msg} at {exc.pos})") from None
        return {**data, "extra": _extra(data.get("extra"), "its 'extra'", unreadable)}
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise unreadable(f"not a valid URI ({exc})") from None
    if not parts.scheme or "://" not in raw:
        raise unreadable("neither a JSON object nor a URI of the form scheme://host")
    extra: Any = dict(parse_qsl(parts.query))
    host = unquote(parts.hostname or "")
    if "__extra__" in extra:
        extra = _extra(extra.pop("__extra__"), "its '__extra__' parameter", unreadable)
    return {"conn_type": parts.scheme, "host": host, "port": port, "login": unquote(parts.username or ""),
            "password": unquote(parts.password or ""), "schema": parts.path.lstrip("/"), "extra": extra}


def _extra(value: Any, what: str, unreadable: Callable[[str], DestinationConfigError]) -> dict[str, Any]:
    """A connection's extra as a dict: given as an object, as the JSON text of one, or empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise unreadable(f"{what} is not valid JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(value, dict):
        raise unreadable(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def split_connection(kind: str, connection: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(config, credentials)`` for a connector of ``kind`` from a connection's fields."""
    config: dict[str, Any] = {}
    credentials: dict[str, Any] = {}
    extra = connection.get("extra") or {}
    for spec in connection_fields(kind):
        value = extra.get(spec.name) if spec.conn_attr == "extra" else connection.get(spec.conn_attr)
        if value in (None, ""):
            continue
        (credentials if spec.target == "credentials" else config)[spec.name] = value
    # HTTP tuning (timeouts, rates) may be set in the extra too
    for name, value in extra.items():
        if name not in credentials and name not in config:
            config[name] = value
    return config, credentials


def client_settings(kind: str, project_config: Mapping[str, Any], target: Mapping[str, Any],
                    connection: Mapping[str, Any], connection_id: str,
                    overrides: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Merge project config, sync target, connection and overrides into ``(config, credentials)``."""
    from_connection, credentials = split_connection(kind, connection)
    config = {**from_connection, **project_config, **target, "connection_id": connection_id, **(overrides or {})}
    return config, credentials


def build_client(project: Project, sync: Sync, connection: Mapping[str, Any],
                 overrides: Mapping[str, Any] | None = None) -> DestinationClient:
    """The connector for one sync: destination config, the sync's target, then the connection's fields.

    :param project: the loaded segments project.
    :param sync: the sync whose target the client writes to.
    :param connection: the connection's fields (see :func:`connection_from_env`).
    :param overrides: config that wins over everything else.
    """
    destination = project.destinations[sync.destination]
    config, credentials = client_settings(destination.kind, destination.config, sync.target, connection,
                                          destination.connection_id, overrides)
    return create_client(destination.kind, destination.name, config, credentials)

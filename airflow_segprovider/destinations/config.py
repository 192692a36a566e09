"""How a destination reads its connection: the fields a connection form shows, and one reader with clear precedence.

Connectors receive their configuration and credentials as plain mappings (an Airflow hook reads the
connection and passes them in); :class:`ConnectionField` lists say which connection field becomes which
key, and :class:`ConfigReader` reads them key by key (argument, then connection extra, then default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from airflow_segprovider.core.destination import DestinationConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["ConfigReader", "ConnectionField", "base_url_field", "config_readers"]


@dataclass(frozen=True)
class ConnectionField:
    """One field of a destination kind's Airflow connection, for the connection form and the hook.

    :param name: the key the hook passes on (in ``credentials`` or ``config``, per ``target``).
    :param label: the form label.
    :param conn_attr: where it lives on the Airflow connection: ``password``, ``login``, ``host`` or ``extra``.
    :param target: whether the hook passes it in ``credentials`` or in ``config``.
    :param required: whether the connector refuses to start without it.
    :param secret: whether it must be masked.
    :param description: help text for the form.
    """

    name: str
    label: str
    conn_attr: Literal["password", "login", "host", "extra"]
    target: Literal["credentials", "config"]
    required: bool
    secret: bool
    description: str


class ConfigReader:
    """Reads and validates one destination's config or credentials mapping.

    Errors name the destination and the field, as
    :class:`~airflow_segprovider.core.destination.DestinationConfigError`.

    :param destination: the destination's name.
    :param values: the mapping to read.
    :param source: what the mapping is, for messages ("config" or "credentials").
    :param connection_id: the Airflow connection holding credentials, for hints.
    """

    def __init__(
        self, destination: str, values: Mapping[str, Any], *, source: str = "config", connection_id: str = ""
    ) -> None:
        self.destination = destination
        self.values = values
        self.source = source
        self.connection_id = connection_id

    def fail(self, field_name: str, message: str) -> NoReturn:
        """Raise a config error about ``field_name``."""
        if self.source == "credentials" and self.connection_id:
            hint = f"set {field_name} in Airflow connection '{self.connection_id}'"
        elif self.source == "credentials":
            hint = f"set {field_name} in the destination's Airflow connection"
        else:
            hint = f"set {self.source}.{field_name} of destination '{self.destination}' in destinations.yml"
        raise DestinationConfigError(message, destination=self.destination, field=field_name, hint=hint)

    def required_str(self, name: str) -> str:
        """A non-empty string value."""
        value = self.optional_str(name)
        if value is None:
            self.fail(name, f"{self.source} field '{name}' is required")
        return value

    def optional_str(self, name: str) -> str | None:
        """A non-empty string value or ``None``; numbers are accepted (ids written unquoted in YAML)."""
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            self.fail(name, f"{self.source} field '{name}' must be a string, got {type(value).__name__}")
        text = str(value).strip()
        return text or None

    def optional_float(self, name: str, *, minimum: float | None = None, maximum: float | None = None) -> float | None:
        """A number within bounds, or ``None``."""
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(name, f"{self.source} field '{name}' must be a number, got {value!r}")
        number = float(value)
        if minimum is not None and number < minimum:
            self.fail(name, f"{self.source} field '{name}' must be at least {minimum}, got {value!r}")
        if maximum is not None and number > maximum:
            self.fail(name, f"{self.source} field '{name}' must be at most {maximum}, got {value!r}")
        return number

    def optional_int(self, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
        """An integer within bounds, or ``None``."""
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, f"{self.source} field '{name}' must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            self.fail(name, f"{self.source} field '{name}' must be at least {minimum}, got {value!r}")
        if maximum is not None and value > maximum:
            self.fail(name, f"{self.source} field '{name}' must be at most {maximum}, got {value!r}")
        return value

    def choice(self, name: str, allowed: Sequence[str], default: str) -> str:
        """One of ``allowed``; ``default`` when absent."""
        value = self.optional_str(name)
        if value is None:
            return default
        if value not in allowed:
            self.fail(name, f"{self.source} field '{name}' must be one of {', '.join(allowed)}; got {value!r}")
        return value


def base_url_field(default: str) -> ConnectionField:
    """The connection's host as ``config.base_url``: every vendor's API address, overridable (a local sandbox)."""
    return ConnectionField(name="base_url", label="Base URL", conn_attr="host", target="config", required=False,
                           secret=False, description=f"Override of {default}, e.g. a local sandbox.")


def config_readers(destination: str, config: Mapping[str, Any], credentials: Mapping[str, Any],
                   ) -> tuple[ConfigReader, ConfigReader, str | None]:
    """The readers of a connector's ``config`` and ``credentials``, and the Airflow connection id the config
    names (credentials errors then name that connection)."""
    reader = ConfigReader(destination, config)
    connection_id = reader.optional_str("connection_id")
    return reader, ConfigReader(destination, credentials, source="credentials",
                                connection_id=connection_id or ""), connection_id

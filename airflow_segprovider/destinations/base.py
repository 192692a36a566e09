"""The shape every destination connector fills in, and the small helpers they share.

The sync engine drives any destination through :class:`DestinationClient`:
it checks it, upserts attributes, adds and removes members in batches of at
most ``max_batch_size`` records, and reads members back where the vendor
allows. Connectors are pure library code: they never import Airflow, and
receive their configuration and credentials as plain mappings (an Airflow hook
reads the connection and passes them in; :data:`ConnectionField` lists say
which connection field becomes which key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NoReturn

from airflow_segprovider.core.destination import DestinationConfigError, Record, RejectedRecord

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from airflow_segprovider.destinations.http import DestinationHttpClient

__all__ = [
    "ConfigReader",
    "ConnectionField",
    "HttpDestination",
    "chunked",
    "connection_phrase",
    "group_by_identity",
    "missing_fields_error",
    "split_blank_identities",
]


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


def chunked(records: Sequence[Record], size: int) -> Iterator[Sequence[Record]]:
    """Split ``records`` into consecutive slices of at most ``size``."""
    for start in range(0, len(records), size):
        yield records[start : start + size]


def group_by_identity(
    records: Sequence[Record], normalize: Callable[[str], str] = str.lower
) -> dict[str, list[Record]]:
    """Group records by normalised identity, keeping first-seen order.

    Vendors reject a batch that names the same contact twice (HubSpot) or
    report the duplicate as an error (Mailchimp), so connectors send each
    identity once and report the outcome for every key that shares it.

    :param records: the records of one call.
    :param normalize: maps an identity to the vendor's notion of "the same contact".
    """
    groups: dict[str, list[Record]] = {}
    for record in records:
        groups.setdefault(normalize(record.identity), []).append(record)
    return groups


def split_blank_identities(records: Sequence[Record]) -> tuple[list[Record], list[RejectedRecord]]:
    """Separate records that have an identity from those that cannot be sent at all.

    A blank identity is a per-record problem, never a reason to fail the batch.
    """
    sendable: list[Record] = []
    rejected: list[RejectedRecord] = []
    for record in records:
        if record.identity and record.identity.strip():
            sendable.append(record)
        else:
            rejected.append(RejectedRecord(record.key, "missing_identity", "the record has no identity to send"))
    return sendable, rejected


def connection_phrase(destination: str, connection_id: str | None) -> str:
    """How to point a user at the Airflow connection holding a destination's credentials."""
    if connection_id:
        return f"connection '{connection_id}'"
    return f"the Airflow connection of destination '{destination}'"


def missing_fields_error(
    destination: str, missing: Sequence[str], *, what: tuple[str, str], where: str
) -> DestinationConfigError:
    """The error for a ``field_mapping`` that writes to fields the destination lacks.

    :param destination: the destination's name.
    :param missing: the field names the destination does not have.
    :param what: the vendor's word for a field, singular and plural, e.g. ``("merge field", "merge fields")``.
    :param where: where to create them, e.g. ``in audience a1b2c3d4e5``.
    """
    names = ", ".join(missing)
    noun = what[0] if len(missing) == 1 else what[1]
    return DestinationConfigError(
        f"field_mapping writes to {noun} the destination lacks: {names}",
        destination=destination,
        field="field_mapping",
        hint=f"create {noun} {names} {where}, "
        f"or change field_mapping of destination '{destination}' in destinations.yml",
    )


class HttpDestination:
    """Common plumbing of the HTTP connectors: a name, one HTTP client, and its lifecycle.

    :param name: the destination's name as declared in the project.
    :param http: the destination's HTTP client; owned (and closed) by this object.
    """

    kind: ClassVar[str]
    max_batch_size: int
    can_read_members: bool

    def __init__(self, name: str, http: DestinationHttpClient) -> None:
        self.name = name
        self.http = http

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, http={self.http!r})"

    def __enter__(self) -> HttpDestination:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the HTTP session."""
        self.http.close()

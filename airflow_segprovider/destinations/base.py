"""What the HTTP connectors share: :class:`HttpDestination` and the small batching helpers.

The sync engine drives any destination through
:class:`~airflow_segprovider.core.destination.DestinationClient`: it checks it, upserts attributes,
adds and removes members in batches of at most ``max_batch_size`` records, and reads members back
where the vendor allows. Connectors are pure library code: they never import Airflow, and receive
their configuration and credentials as plain mappings (see :mod:`.config`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from airflow_segprovider.core.destination import (
    BatchResult,
    DestinationConfigError,
    Record,
    RejectedRecord,
    ReportedCount,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from airflow_segprovider.destinations.http import DestinationHttpClient

__all__ = [
    "HttpDestination",
    "chunked",
    "connection_phrase",
    "group_by_identity",
    "missing_fields_error",
    "split_blank_identities",
]


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
    #: batches a sync keeps in flight by default (``SyncOptions.concurrency`` None): enough to keep the
    #: connector's connections busy, which its HTTP client caps
    batches_in_flight: ClassVar[int] = 4

    def __init__(self, name: str, http: DestinationHttpClient) -> None:
        self.name = name
        self.http = http

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, http={self.http!r})"

    def __enter__(self) -> HttpDestination:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def unsubscribe(self, records: Sequence[Record]) -> BatchResult:
        """Unsubscribe the records' contacts from e-mail (a consent removal on an e-mail destination).

        Default: nothing to change, every record acknowledged: the connector's removal is all the vendor
        offers the sync. Vendors with an e-mail subscription status override this: Mailchimp (the audience's
        member status) and HubSpot (its subscription preferences API).
        """
        return BatchResult(acknowledged=[record.key for record in records])

    def reported_count(self) -> ReportedCount:
        """The target's size as the vendor reports it: exact here; a connector with ranges overrides it."""
        return ReportedCount.exact(self.member_count())  # type: ignore[attr-defined]  (each connector has it)

    def close(self) -> None:
        """Release the HTTP session."""
        self.http.close()

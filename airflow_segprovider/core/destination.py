"""The destination contract: what the sync engine sends, what comes back, and how it fails.

The core drives every destination through :class:`DestinationClient`; connectors in
``airflow_segprovider.destinations`` implement it, and import this module (the arrow points
from destinations to the core, as dlt keeps its destination contract in ``common/``).

Errors raised by destination connectors are split by whether a retry can help.

The sync engine keys its retry logic on this split, as dlt's loader does:

* :class:`TerminalDestinationError` - retrying cannot fix it (bad request, bad
  credentials, a missing list, a malformed response, bad configuration). The
  message names the destination and says what to fix.
* :class:`TransientDestinationError` - retrying later may succeed (5xx after
  the client's own retries, timeouts, dropped connections, rate-limit budget
  exhausted).

Per-record failures inside an accepted batch are not exceptions at all: they
come back as :class:`RejectedRecord` entries in the batch result, so one bad
email never fails the other 499 in its batch.

Every exception carries its facts as attributes (``destination``, ``status``,
``path``, ``body_excerpt``, ``hint``) and pickles with them intact, because
Airflow moves exceptions across processes. None of them may hold a secret:
:class:`~airflow_segprovider.destinations.http.DestinationHttpClient` masks
credentials before it builds one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from airflow_segprovider.core.errors import SegproviderError, TerminalError, TransientError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from datetime import datetime


@dataclass(frozen=True)
class RejectedRecord:
    """One record the destination refused, with the destination's reason.

    :param key: our customer key of the refused record.
    :param code: a short, stable reason code (the vendor's error code where it gives one).
    :param message: the vendor's explanation, or ours when we refused before sending.
    :param retryable: False when no later attempt can succeed (the contact's own state forbids it, e.g.
        Mailchimp's compliance states): the engine then stops sending the record at once instead of
        after ``max_attempts`` runs.
    """

    key: str
    code: str
    message: str
    retryable: bool = True


class DestinationError(SegproviderError):
    """Base of every destination failure.

    :param message: what failed, in words a data engineer can act on.
    :param destination: the destination's name as declared in the project.
    :param status: the HTTP status of the failing response, if there was one.
    :param path: the endpoint's URL path (never the query string, which may hold a token).
    :param body_excerpt: the start of the response body, secrets masked.
    :param hint: how to fix it.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        destination: str = "",
        status: int | None = None,
        path: str | None = None,
        body_excerpt: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.destination = destination
        self.status = status
        self.path = path
        self.body_excerpt = body_excerpt
        self.hint = hint

    def __str__(self) -> str:
        text = f"destination '{self.destination}': {self.message}" if self.destination else self.message
        where = []
        if self.status is not None:
            where.append(f"HTTP {self.status}")
        if self.path:
            where.append(f"on {self.path}")
        if where:
            text += f" ({' '.join(where)})"
        if self.body_excerpt:
            text += f"\n    response: {self.body_excerpt}"
        if self.hint:
            text += f"\n    fix: {self.hint}"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, destination={self.destination!r}, status={self.status!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception pickling replays ``cls(*args)``; the keyword-only fields travel in the state dict.
        return (type(self), (self.message,), self.__dict__.copy())


class TerminalDestinationError(DestinationError, TerminalError):
    """Retrying cannot help: the request, the credentials or the configuration must change."""

    retryable = False


class DestinationAuthError(TerminalDestinationError):
    """The destination refused our credentials (401) or their permissions (403)."""


class DestinationConfigError(TerminalDestinationError):
    """The destination's configuration is incomplete or invalid; raised before any request.

    :param field: the configuration or credential field at fault.
    """

    def __init__(self, message: str, *, field: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.field = field


class MalformedResponseError(TerminalDestinationError):
    """The destination answered with a body we cannot read (e.g. not JSON where JSON is documented)."""


class UnsupportedOperationError(TerminalDestinationError):
    """The destination cannot do this at all (e.g. Meta cannot list the members of an audience)."""


class TransientDestinationError(DestinationError, TransientError):
    """Retrying later may succeed: 5xx, timeouts, dropped connections, rate limits.

    :param attempts: how many attempts the HTTP client made before giving up.
    """

    retryable = True

    def __init__(self, message: str, *, attempts: int = 0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.attempts = attempts


class RateLimitExhaustedError(TransientDestinationError):
    """The destination kept rate limiting us beyond the client's budget of waits.

    :param retry_after: the wait, in seconds, the destination last asked for, if it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class QuotaExhaustedError(TerminalDestinationError):
    """A quota no wait inside this run can refill is spent (HubSpot's daily limit): retrying today fails the
    same way, so it is terminal for today; what the destination acknowledged before stays committed.

    :param limit: the quota as the vendor names it (e.g. ``DAILY``).
    """

    def __init__(self, message: str, *, limit: str = "", **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.limit = limit


@dataclass(frozen=True)
class Record:
    """One customer as sent to a destination.

    :param key: our customer key.
    :param identity: the identifier the destination matches on, e.g. an email address.
    :param attributes: values already mapped to the destination's field names.
    """

    key: str
    identity: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class BatchResult:
    """What a destination did with one call's records.

    :param acknowledged: keys the destination accepted.
    :param rejected: records it refused, with reasons.
    :param destination_ids: key to the vendor's id of the contact (HubSpot contact ids, Mailchimp subscriber hashes).
    """

    acknowledged: list[str] = field(default_factory=list)
    rejected: list[RejectedRecord] = field(default_factory=list)
    destination_ids: dict[str, str] = field(default_factory=dict)

    def merge(self, other: BatchResult) -> None:
        """Fold the result of another chunk of the same call into this one."""
        self.acknowledged.extend(other.acknowledged)
        self.rejected.extend(other.rejected)
        self.destination_ids.update(other.destination_ids)


@dataclass(frozen=True)
class Member:
    """One member as read back from a destination.

    :param identity: the identifier as the destination stores it (e.g. the email address).
    :param destination_id: the vendor's id of the member, if it has one.
    :param last_changed: when the vendor last changed the member, if it reports it.
    """

    identity: str
    destination_id: str | None = None
    last_changed: datetime | None = None


@dataclass(frozen=True)
class FieldType:
    """A destination field as its API describes it.

    :param type: the vendor's type name (Mailchimp: ``text``, ``number``, ``date``...; HubSpot:
        ``string``, ``number``, ``date``, ``datetime``, ``bool``, ``enumeration``).
    :param date_format: Mailchimp date fields: ``MM/DD/YYYY`` or ``DD/MM/YYYY``.
    """

    name: str
    type: str
    date_format: str | None = None


@dataclass(frozen=True)
class ReportedCount:
    """A destination's own notion of its size: an exact count, or the range a vendor reports instead.

    Meta, for one, reports an audience's size only as ``approximate_count_lower_bound`` and
    ``..._upper_bound`` (two significant figures), so 2,199 members read as 2,100 to 2,200. And it
    counts only the people it *matched* to an account, often well under the number uploaded, so
    ``N`` people sent are consistent with any count from ``min_match_rate × N`` to ``N``. Every
    comparison of an expected count with a destination's goes through :meth:`drift_from`, so a
    count consistent with the expected one is never taken for drift.

    :param value: the count as the vendor shows it (for a range, its lower bound).
    :param lower: the fewest members consistent with the report.
    :param upper: the most members consistent with the report.
    :param min_match_rate: the lowest share of the people sent the destination may report (1.0: it
        reports everyone it was sent; an ad platform reports the matched share).
    :param pending: the destination says some changes are not applied yet (Meta applies an upload
        within up to 24 hours), so a count off what was sent is "not yet applied", not drift.
    :param match_rate: the share of the people sent that the destination reports matching, where it
        says (Meta's upload sessions), or None.
    """

    value: int
    lower: int
    upper: int
    min_match_rate: float = 1.0
    pending: bool = False
    match_rate: float | None = None

    @classmethod
    def exact(cls, value: int) -> ReportedCount:
        """An exact count."""
        return cls(value, value, value)

    @property
    def approximate(self) -> bool:
        return self.lower != self.upper

    @property
    def matched(self) -> bool:
        """Whether the count is of the people matched, below the number sent (an ad platform's)."""
        return self.min_match_rate < 1.0

    def expected_range(self, expected: int) -> tuple[int, int]:
        """The counts consistent with ``expected`` people sent: ``[⌊min_match_rate × expected⌋, expected]``."""
        return int(self.min_match_rate * expected), expected

    def drift_from(self, expected: int) -> float:
        """How far the reported range lies from the range ``expected`` allows, relative to ``expected``;
        0 when they overlap."""
        low, high = self.expected_range(expected)
        if self.upper < low:
            gap = low - self.upper
        elif self.lower > high:
            gap = self.lower - high
        else:
            return 0.0
        return gap / max(expected, 1)

    def observed_match_rate(self, expected: int) -> float | None:
        """The share matched: the destination's own figure, else the reported count over ``expected``
        (None for a destination that reports everyone it was sent)."""
        if self.match_rate is not None:
            return self.match_rate
        if not self.matched:
            return None
        return min(1.0, self.value / expected) if expected else None

    def __str__(self) -> str:
        return f"{self.value}" if not self.approximate else f"{self.lower} to {self.upper} (approximate)"


@runtime_checkable
class DestinationClient(Protocol):
    """The interface the sync engine drives; one instance per configured destination.

    Every method raises :class:`~airflow_segprovider.core.destination.TerminalDestinationError`
    or :class:`~airflow_segprovider.core.destination.TransientDestinationError`
    for failures of the whole call; per-record refusals come back in :class:`BatchResult`.
    """

    name: str
    kind: str
    max_batch_size: int
    can_read_members: bool

    def check(self) -> None:
        """Verify credentials and that the target list/segment/audience exists; say what to fix if not."""

    def check_fields(self, field_names: Sequence[str]) -> None:
        """Verify that the destination has every field ``field_mapping`` writes to.

        :param field_names: the destination field names, as keys of the destination's ``field_mapping``.
        :raises DestinationConfigError: naming the missing fields and how to fix the mapping or the destination.
        """

    def upsert(self, records: Sequence[Record]) -> BatchResult:
        """Create or update the records' attributes, without changing membership."""

    def add_members(self, records: Sequence[Record]) -> BatchResult:
        """Make sure each contact exists, then add it to the target list/segment/audience."""

    def remove_members(
        self, records: Sequence[Record], destination_ids: Mapping[str, str] | None = None
    ) -> BatchResult:
        """Remove the records from the target; ``destination_ids`` (key to vendor id) avoids look-ups."""

    def unsubscribe(self, records: Sequence[Record]) -> BatchResult:
        """Unsubscribe the records' contacts from e-mail: sent with a consent removal on an e-mail destination.

        The one status change a sync makes, carrying the person's own withdrawal. Optional: the engine
        only removes when a client lacks it; :class:`~airflow_segprovider.destinations.base.HttpDestination`
        acknowledges every record without a call (vendors whose subscription status is not the list's).
        """

    def erase(self, records: Sequence[Record], destination_ids: Mapping[str, str] | None = None) -> BatchResult:
        """Delete the records' contacts for good: the vendor's permanent-delete (GDPR) endpoint, not a removal.

        Sent by an erasure (``segprovider forget``) only, with every identity the person was sent under and,
        in ``destination_ids`` (key to vendor id, as :meth:`remove_members` takes them), the id the sync state
        keeps for them: the vendor's name for what it was sent (Meta: the hashed match keys of the upload).
        A contact the vendor does not hold is acknowledged: it is gone, which is the goal.
        """

    def iter_members(self, page_size: int = 500) -> Iterator[Member]:
        """Read the target's members back, page by page."""

    def member_count(self) -> int:
        """The target's size: exact, or the vendor's approximation where that is all it reports."""

    def reported_count(self) -> ReportedCount:
        """The target's size with the precision the vendor reports it (a range where it gives one)."""

    def close(self) -> None:
        """Release the HTTP session."""

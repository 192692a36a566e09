"""The distributed model's decisions: compare each system's list, resolve by policy, plan the fixes.

Pure functions over plain data, no warehouse and no Airflow: :mod:`airflow_segprovider.core.distributed.reconciler`
feeds them what it pulled and what it knows it wrote, and applies what they decide.

For one segment and one customer, each *readable* system gives an :class:`Observation` (is the
customer in that system's list now, and when did the system say it changed). What this project
last wrote to (or confirmed in) that system is a :class:`Written` value, from the sync engine's
state table; the value the last reconcile agreed on is an :class:`Agreed` value.

**No loops.** A system whose observed value equals the value last written to it has not been
edited, whatever timestamp it reports: our own writes come back on the next pull and are
recognised (by the state row's origin and value), never replayed to the other systems. A
difference is an *edit*, dated by the time the system reports for it. An edit dated before the
value we last wrote into that same system is *stale* (its source is older than its target) and is
skipped: the system is put back to the agreed value instead of spreading an older change.

**Policies** (per segment, declared in the project):

* ``authoritative``: the authority's current list is the truth; the others follow it.
* ``most_recent``: the newest dated change wins against the agreed value and the other edits;
  a tie between different values is broken by ``tie_break`` (``add``, ``remove`` or a system name).
* ``union``: a member of any system is a member of all (a removal sticks only where done everywhere).
* ``intersection``: a member of every system only (an addition sticks only where done everywhere).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from airflow_segprovider.core.project.distributed import TIE_BREAKS

Policy = Literal["authoritative", "most_recent", "union", "intersection"]
POLICIES: tuple[str, ...] = ("authoritative", "most_recent", "union", "intersection")
ClaimKind = Literal["first", "unchanged", "edit", "stale"]


@dataclass(frozen=True)
class ReconcileSettings:
    """A segment's declared policy, as the pure core needs it (see :class:`~airflow_segprovider.core.project.spec.ReconcilePolicy`).

    :param policy: one of :data:`POLICIES`.
    :param authority: the authoritative system (``authoritative`` only).
    :param tie_break: ``add``, ``remove`` or a system name (``most_recent`` only).
    """

    policy: Policy
    authority: str | None = None
    tie_break: str = "remove"


@dataclass(frozen=True)
class Observation:
    """One system's list as pulled.

    :param present: the customer is in the list.
    :param changed_at: when the system says the membership last changed (None where it does not say).
    :param exact: the system reports the membership's own time (HubSpot's ``membershipTimestamp``);
        False when the time is the member's (Mailchimp's ``last_changed``), which only bounds it.
    """

    present: bool
    changed_at: dt.datetime | None = None
    exact: bool = True


@dataclass(frozen=True)
class Written:
    """What this project last wrote to, or confirmed in, one system for one customer.

    :param present: the state row's ``in_destination``.
    :param at: when it was written or confirmed.
    :param origin: ``segprovider`` (written by this project), ``observed``/``baseline`` (read back).
    """

    present: bool
    at: dt.datetime
    origin: str = "segprovider"


@dataclass(frozen=True)
class Agreed:
    """The value the last reconcile decided, and the time of the change that decided it."""

    member: bool
    changed_at: dt.datetime | None


@dataclass(frozen=True)
class Claim:
    """What one system says, once own writes and stale edits are recognised."""

    system: str
    present: bool  # the value the system holds now
    effective: bool  # the value that counts for resolution (the written one for a stale edit)
    at: dt.datetime | None  # the time of the value that counts
    kind: ClaimKind
    origin: str = ""  # who put the value there, for an unchanged one: ``segprovider`` = our own write

    def describe(self) -> str:
        when = f" at {self.at.isoformat(timespec='seconds')}" if self.at else ""
        if self.kind == "unchanged":
            what = "holds our own write" if self.origin == "segprovider" else "is unchanged"
            return f"{self.system} {what}" + (f" of {self.at.isoformat(timespec='seconds')}" if self.at else "")
        verb = {"first": "holds" if self.present else "lacks",
                "edit": "added it" if self.present else "removed it",
                "stale": "stale " + ("add" if self.present else "removal")}[self.kind]
        return f"{self.system} {verb}{when}"


@dataclass(frozen=True)
class Decision:
    """The resolved membership of one customer in one segment.

    :param member: whether the customer belongs in every system's list.
    :param changed_at: the time of the change that decided it (kept as the agreed value's time).
    :param rule: the rule that decided, e.g. ``most_recent`` or ``authoritative:hubspot_crm``.
    :param reason: a sentence a person can check against the systems.
    :param source: the system whose value won (``agreed`` when no system changed it).
    :param conflict: the systems disagreed.
    """

    member: bool
    changed_at: dt.datetime | None
    rule: str
    reason: str
    source: str
    conflict: bool


def classify(system: str, observed: Observation, written: Written | None, pulled_at: dt.datetime) -> Claim:
    """Turn one system's observation into a claim, recognising own writes and stale edits.

    :param pulled_at: when the system was read; removals (which no vendor dates) are dated by it.
    """
    if written is None:  # never written nor seen before: whatever it holds is its claim
        return Claim(system, observed.present, observed.present,
                     observed.changed_at if observed.present else None, "first")
    if observed.present == written.present:  # includes our own writes coming back: not an edit
        return Claim(system, observed.present, observed.present, written.at, "unchanged", written.origin)
    reported = observed.changed_at if observed.present else None
    if reported is not None and reported > written.at:
        return Claim(system, observed.present, observed.present, reported, "edit")
    if reported is not None and observed.exact:
        # the system dates this membership before the value we last wrote there: a stale source
        return Claim(system, observed.present, written.present, written.at, "stale")
    # no membership time (a removal), or only the member's time: the change happened after the
    # last write and at the latest when we looked
    return Claim(system, observed.present, observed.present, pulled_at, "edit")


def resolve(settings: ReconcileSettings, claims: Mapping[str, Claim], agreed: Agreed | None,
            now: dt.datetime) -> Decision:
    """Decide one customer's membership from every readable system's claim.

    :param claims: system name to claim (every readable system of the segment).
    :param agreed: the last reconcile's decision, if any.
    :param now: the reconcile's time (used as the decision's time where no change dates it).
    """
    present = sorted(s for s, c in claims.items() if c.present)
    conflict = 0 < len(present) < len(claims)
    if settings.policy == "authoritative":
        authority = claims[str(settings.authority)]
        return Decision(authority.present, authority.at or now, f"authoritative:{authority.system}",
                        f"{authority.describe()}; {authority.system} is the source of truth", authority.system,
                        conflict)
    if settings.policy in ("union", "intersection"):
        values = {s: c.effective for s, c in claims.items()}
        member = any(values.values()) if settings.policy == "union" else all(values.values())
        deciding = [c for c in claims.values() if c.effective == member]
        source = max(deciding, key=lambda c: (c.at or dt.datetime.min, c.system)) if deciding else None
        holders = sorted(s for s, v in values.items() if v)
        reason = (f"in {', '.join(holders) or 'no system'} of {', '.join(sorted(claims))}"
                  + _skipped(claims))
        return Decision(member, (source.at if source else None) or now, settings.policy, reason,
                        source.system if source else "agreed", conflict)
    return _most_recent(settings, claims, agreed, now, conflict)


def _most_recent(settings: ReconcileSettings, claims: Mapping[str, Claim], agreed: Agreed | None,
                 now: dt.datetime, conflict: bool) -> Decision:
    candidates: list[tuple[dt.datetime, bool, str]] = [
        (c.at, c.present, c.system) for c in claims.values() if c.kind in ("edit", "first") and c.at is not None]
    if agreed is not None and agreed.changed_at is not None:
        candidates.append((agreed.changed_at, agreed.member, "agreed"))
    if not candidates:
        member = agreed.member if agreed is not None else any(c.effective for c in claims.values())
        return Decision(member, now, "most_recent", "no dated change; the agreed value stands" + _skipped(claims),
                        "agreed", conflict)
    newest = max(at for at, _, _ in candidates)
    tied = [(member, source) for at, member, source in candidates if at == newest]
    values = {member for member, _ in tied}
    if len(values) == 1:
        member = values.pop()
        source = next(s for m, s in sorted(tied, key=lambda t: t[1] == "agreed") if m == member)
        rule = "most_recent"
        reason = _newest_reason(claims, source, newest)
    else:
        member, source = _break_tie(settings.tie_break, tied)
        rule = f"most_recent:tie_break={settings.tie_break}"
        reason = (f"changes at the same time {newest.isoformat(timespec='seconds')} disagree "
                  f"({', '.join(f'{s}: {m}' for m, s in sorted(tied, key=lambda t: t[1]))}); "
                  f"tie_break {settings.tie_break} decides")
    return Decision(member, newest, rule, reason + _skipped(claims), source, conflict)


def _break_tie(tie_break: str, tied: list[tuple[bool, str]]) -> tuple[bool, str]:
    if tie_break in TIE_BREAKS:
        member = tie_break == "add"
        return member, min(s for m, s in tied if m == member)
    by_source = dict((s, m) for m, s in tied)
    if tie_break in by_source:
        return by_source[tie_break], tie_break
    if "agreed" in by_source:  # the named system did not change: keep what was agreed
        return by_source["agreed"], "agreed"
    return False, min(s for m, s in tied if not m)  # nothing names a winner: the conservative side


def _newest_reason(claims: Mapping[str, Claim], source: str, newest: dt.datetime) -> str:
    if source == "agreed":
        return f"no change newer than the agreed value of {newest.isoformat(timespec='seconds')}"
    others = [c.describe() for s, c in sorted(claims.items()) if s != source and c.kind in ("edit", "first")]
    return (f"{claims[source].describe()} is the newest change"
            + (f" (also: {'; '.join(others)})" if others else ""))


def _skipped(claims: Mapping[str, Claim]) -> str:
    stale = [c.describe() for _, c in sorted(claims.items()) if c.kind == "stale"]
    return f"; skipped as older than the value last written there: {'; '.join(stale)}" if stale else ""


@dataclass(frozen=True)
class Change:
    """One membership change planned for one system."""

    system: str
    customer_key: str
    before: bool
    after: bool
    rule: str
    reason: str


def plan_changes(decision: Decision, customer_key: str, holdings: Mapping[str, bool],
                 consent_ok: Mapping[str, bool], addable: Mapping[str, bool]) -> list[Change]:
    """The changes that make every system hold ``decision``, as the sync engine will send them.

    :param holdings: system to whether it holds the customer now (observed, or the state for a
        system that cannot be read back).
    :param consent_ok: system to whether the customer's consent allows that system's channel now;
        a member without it is removed, never added.
    :param addable: system to whether the customer can be added there (consent, an identity, and
        not refused by the system too often).
    """
    changes = []
    for system, before in sorted(holdings.items()):
        wanted = decision.member and consent_ok.get(system, False)
        if before and not wanted:
            rule, reason = ((decision.rule, decision.reason) if not decision.member else
                            ("consent", "the customer's consent for this system's channel is withdrawn"))
            changes.append(Change(system, customer_key, True, False, rule, reason))
        elif wanted and not before and addable.get(system, False):
            changes.append(Change(system, customer_key, False, True, decision.rule, decision.reason))
    return changes

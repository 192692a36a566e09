"""The ``reconcile:`` section of a segments project: the distributed model's policy per segment.

Checked after the syncs (a reconciled segment's systems are the destinations it is synced to);
every problem is reported where it is written, with a fix (SEG070-SEG074).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.project.spec import ReconcilePolicy

if TYPE_CHECKING:
    from airflow_segprovider.core.project.items import IssueList, ProjectItem
    from airflow_segprovider.core.project.spec import Destination, Sync

#: Tie breaks of policy ``most_recent`` besides a system name: additions win, or removals win.
TIE_BREAKS: tuple[str, ...] = ("add", "remove")
#: Destination kinds whose list can be read back, and what the time they report for a member means:
#: ``exact`` is the membership's own time (HubSpot's ``membershipTimestamp``), ``member`` the
#: member's last change (Mailchimp's ``last_changed``), which only bounds the membership's.
MEMBERSHIP_TIMES: dict[str, str] = {"hubspot": "exact", "mailchimp": "member"}
DEFAULT_MAX_CHANGE_FRACTION = 0.2


def reconcile_policies(items: Iterable[ProjectItem], segments: Iterable[str], syncs: Iterable[Sync],
                       destinations: Mapping[str, Destination], issues: IssueList,
                       did_you_mean: Callable[[str, Any, str], str], *, incomplete: bool = False,
                       declared_syncs: Iterable[str] = ()) -> dict[str, ReconcilePolicy]:
    """Valid reconcile policies by segment.

    :param items: the ``reconcile:`` entries of every project file.
    :param segments: every declared segment name.
    :param syncs: the valid syncs.
    :param destinations: the valid destinations.
    :param incomplete: a file that may declare segments, destinations or syncs was already reported
        as unusable: what depends on them is not checked (one mistake, one error).
    :param declared_syncs: the segment of every declared sync, valid or not: a segment with an invalid
        sync (reported where it is) is not checked again here.
    """
    declared = list(declared_syncs)
    if incomplete:
        return {}
    out: dict[str, ReconcilePolicy] = {}
    seen: dict[str, ProjectItem] = {}
    segment_names = set(segments)
    sync_list = list(syncs)
    for item in items:
        raw = item.data
        segment = raw["segment"]
        if segment not in segment_names:
            issues.add("SEG070", f"reconcile of unknown segment {segment!r}", item.loc("segment"),
                       did_you_mean(segment, segment_names, "segments"))
            continue
        if segment in seen:
            issues.add("SEG070", f"segment {segment!r} has two reconcile policies", item.loc("segment"),
                       f"already at {seen[segment].loc()}; keep one")
            continue
        seen[segment] = item
        own = [s for s in sync_list if s.segment == segment]
        if declared.count(segment) != len(own):
            continue  # a sync of the segment (or its destination) is invalid and already reported
        synced = {s.destination for s in own}
        readable = sorted(d for d in synced if destinations[d].kind in MEMBERSHIP_TIMES)
        ok = True
        systems = list(raw.get("systems") or readable)
        for index, name in enumerate(raw.get("systems") or []):
            if name not in synced:
                issues.add("SEG071", f"reconcile of {segment!r}: {name!r} is not a destination {segment!r} is "
                           "synced to", item.loc("systems", index),
                           f"sync {segment!r} to it in syncs:, or use one of: {', '.join(sorted(synced)) or 'none'}")
                ok = False
            elif name not in readable:
                issues.add("SEG071", f"reconcile of {segment!r}: {name!r} ({destinations[name].kind}) cannot be read "
                           "back, so it cannot be compared", item.loc("systems", index),
                           "leave it out: it still receives the resolved list; readable kinds: "
                           f"{', '.join(sorted(MEMBERSHIP_TIMES))}")
                ok = False
        if ok and len(systems) < 2:
            issues.add("SEG071", f"reconcile of {segment!r} needs at least two readable systems, found "
                       f"{len(systems)} ({', '.join(systems) or 'none'})", item.loc("segment"),
                       f"sync {segment!r} to two or more destinations of kinds {', '.join(sorted(MEMBERSHIP_TIMES))}")
            ok = False
        policy = raw["policy"]
        authority = raw.get("authority")
        if policy == "authoritative" and authority is None:
            issues.add("SEG072", f"reconcile of {segment!r}: policy authoritative needs an 'authority'",
                       item.loc("policy"), f"name the system that is the source of truth, one of: {', '.join(systems)}")
            ok = False
        elif authority is not None and policy != "authoritative":
            issues.add("SEG072", f"reconcile of {segment!r}: 'authority' applies to policy authoritative only",
                       item.loc("authority"), "remove it, or set policy: authoritative")
            ok = False
        elif authority is not None and authority not in systems:
            issues.add("SEG072", f"reconcile of {segment!r}: authority {authority!r} is not one of its systems",
                       item.loc("authority"), did_you_mean(authority, systems, "systems"))
            ok = False
        tie_break = raw.get("tie_break")
        if policy == "most_recent" and tie_break is None:
            issues.add("SEG073", f"reconcile of {segment!r}: policy most_recent needs a 'tie_break'",
                       item.loc("policy"), "name who wins changes made at the same time: add, remove, or a system "
                       f"({', '.join(systems)})")
            ok = False
        elif tie_break is not None and policy != "most_recent":
            issues.add("SEG073", f"reconcile of {segment!r}: 'tie_break' applies to policy most_recent only",
                       item.loc("tie_break"), "remove it, or set policy: most_recent")
            ok = False
        elif tie_break is not None and tie_break not in TIE_BREAKS and tie_break not in systems:
            issues.add("SEG073", f"reconcile of {segment!r}: tie_break {tie_break!r} is neither add, remove nor "
                       "one of its systems", item.loc("tie_break"),
                       f"use add, remove or one of: {', '.join(systems)}")
            ok = False
        for sync in own:
            if sync.arm is not None or sync.mode != "mirror":
                issues.add("SEG074", f"reconcile of {segment!r}: sync to {sync.destination!r} is "
                           + (f"of split arm {sync.arm!r}" if sync.arm else f"in mode {sync.mode}")
                           + "; reconciled lists must be mirrored whole", sync.loc,
                           "use mode: mirror without arm for every sync of a reconciled segment")
                ok = False
        if ok:
            out[segment] = ReconcilePolicy(
                segment=segment, policy=policy, systems=tuple(systems), authority=authority,
                tie_break=tie_break or "remove",
                max_change_fraction=float(raw.get("max_change_fraction", DEFAULT_MAX_CHANGE_FRACTION)),
                description=raw.get("description", ""), loc=item.loc())
    return out

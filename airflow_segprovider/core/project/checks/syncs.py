"""The ``syncs:`` section: which segment goes to which destination, and how (SEG042, SEG050)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_segprovider.core.project.items import did_you_mean
from airflow_segprovider.core.project.spec import Sync

if TYPE_CHECKING:
    from airflow_segprovider.core.project.items import IssueList, ProjectItem, UnusableFiles
    from airflow_segprovider.core.project.spec import Destination


def parse_syncs(items: list[ProjectItem], segments: dict[str, ProjectItem], destinations: dict[str, Destination],
                declared_destinations: set[str], unusable: UnusableFiles,
                issues: IssueList) -> list[tuple[Sync, ProjectItem]]:
    """Valid syncs; ``destinations`` holds the valid ones, ``declared_destinations`` every declared name.

    A sync of a segment or to a destination that is declared but invalid is dropped silently: the
    invalid definition is reported where it is, not once more per sync.
    """
    out: list[tuple[Sync, ProjectItem]] = []
    seen: dict[tuple[str, str | None, str], ProjectItem] = {}
    for item in items:
        raw, ok = item.data, True
        if raw["segment"] not in segments:
            if not unusable.may_declare("segments", raw["segment"]):
                issues.add("SEG042", f"sync of unknown segment {raw['segment']!r}", item.loc("segment"),
                           did_you_mean(raw["segment"], segments, "segments"))
            ok = False
        if raw["destination"] not in destinations:
            if raw["destination"] not in declared_destinations and not unusable.may_declare(
                    "destinations", raw["destination"]):
                issues.add("SEG042", f"sync to unknown destination {raw['destination']!r}", item.loc("destination"),
                           did_you_mean(raw["destination"], declared_destinations, "destinations"))
            ok = False
        key = (raw["segment"], raw.get("arm"), raw["destination"])
        if key in seen:
            issues.add("SEG042", f"segment {raw['segment']!r} is synced to {raw['destination']!r} twice",
                       item.loc(), f"already at {seen[key].loc()}; keep one")
            ok = False
        seen[key] = item
        if raw.get("min_size") is not None and raw.get("max_size") is not None and raw["min_size"] > raw["max_size"]:
            issues.add("SEG050", "min_size is greater than max_size", item.loc("min_size"), "swap them")
            ok = False
        if ok:
            out.append((Sync(raw["segment"], raw["destination"], raw["mode"], raw.get("schedule", "@daily"),
                             tuple(raw.get("gates", ())), raw.get("arm"), raw.get("max_remove_fraction", 0.2),
                             raw.get("max_size_change"), raw.get("min_size"), raw.get("max_size"),
                             dict(raw.get("target", {})), item.loc()),
                        item))
    return out

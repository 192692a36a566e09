"""What a segment takes from the rest of the project: priority groups, suppressed channels, split, cycles.

Its rule is built first (:class:`~airflow_segprovider.core.project.builder.RuleBuilder`); these checks
complete the :class:`~airflow_segprovider.core.project.rules.Segment` (SEG028-SEG031, SEG045).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_segprovider.core.project.items import did_you_mean
from airflow_segprovider.core.project.rules import Split, SplitArm, referenced_segments

if TYPE_CHECKING:
    from airflow_segprovider.core.project.items import IssueList, ProjectItem, UnusableFiles
    from airflow_segprovider.core.project.rules import Segment
    from airflow_segprovider.core.project.spec import DataModel, Destination, Sync


def parse_priority_groups(items: dict[str, ProjectItem], segments: dict[str, ProjectItem], unusable: UnusableFiles,
                          issues: IssueList) -> dict[str, tuple[str, tuple[str, ...]]]:
    """``segment -> (group, higher-priority segments)`` for every grouped segment."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name, item in items.items():
        members = item.data["segments"]
        for index, segment in enumerate(members):
            if segment not in segments and unusable.may_declare("segments", segment):
                continue  # possibly declared in a file already reported as unusable
            if segment not in segments:
                issues.add("SEG029", f"priority group {name!r} lists unknown segment {segment!r}",
                           item.loc("segments", index), did_you_mean(segment, segments, "segments"))
            elif segment in out:
                issues.add("SEG029", f"segment {segment!r} is in two priority groups ({out[segment][0]!r} and "
                           f"{name!r})", item.loc("segments", index), "a segment may belong to one group only")
            else:
                out[segment] = (name, tuple(s for s in members[:index] if s in segments))
    return out


def suppression_channels(segments: dict[str, ProjectItem], syncs: list[tuple[Sync, ProjectItem]],
                         destinations: dict[str, Destination], model: DataModel,
                         issues: IssueList) -> dict[str, set[str]]:
    """Channels each segment suppresses: those it declares and those of the destinations it syncs to (SEG045)."""
    channels: dict[str, set[str]] = {name: set(item.data.get("channels", [])) for name, item in segments.items()}
    for sync, _ in syncs:
        channels[sync.segment].add(destinations[sync.destination].channel)
    known = model.consent.channels if model.consent else {}
    for name, item in segments.items():
        for index, channel in enumerate(item.data.get("channels", [])):
            if channel not in known:
                issues.add("SEG045", f"segment {name!r}: channel {channel!r} is not a consent channel",
                           item.loc("channels", index), did_you_mean(channel, known, "consent channels"))
    return channels


def parse_split(item: ProjectItem, issues: IssueList) -> Split | None:
    raw = item.data["split"]
    arms = tuple(SplitArm(arm["name"], float(arm["percent"])) for arm in raw["arms"])
    names = [arm.name for arm in arms]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        issues.add("SEG031", f"split of {item.data['name']!r} repeats arm {duplicates[0]!r}", item.loc("split", "arms"),
                   "give every arm its own name")
        return None
    total = round(sum(arm.percent for arm in arms), 2)
    if total != 100:
        issues.add("SEG030", f"split arms of {item.data['name']!r} sum to {total:g}%, not 100%",
                   item.loc("split", "arms"), "adjust the percents so they add up to exactly 100")
        return None
    return Split(raw["salt"], arms)


def check_cycles(segments: dict[str, Segment], items: dict[str, ProjectItem], issues: IssueList) -> None:
    """Report each dependency cycle once, naming every segment in it."""
    graph = {name: sorted(referenced_segments(seg.rule) | set(seg.higher_priority)) for name, seg in segments.items()}
    state: dict[str, int] = {}
    reported: set[frozenset[str]] = set()

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        stack.append(name)
        for dependency in graph.get(name, []):
            if state.get(dependency) == 1:
                cycle = stack[stack.index(dependency):]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    path = " -> ".join([*cycle, dependency])
                    issues.add("SEG028", f"segment reference cycle: {path}", items[cycle[0]].loc("rule"),
                               "a segment cannot depend on itself through references or priority groups "
                               "(a segment depends on every higher-priority segment of its group); break the cycle")
            elif dependency not in state:
                visit(dependency, stack)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])

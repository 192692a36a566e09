"""What the semantic checks of a project work on: definitions taken out of files, and the issues found.

Every check (the loader's, :mod:`.hybrid`'s, :mod:`.distributed`'s) reads :class:`ProjectItem`
values, reports on one :class:`IssueList`, and asks :class:`UnusableFiles` whether a name it
cannot resolve may be declared in a file already reported as unusable.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.errors import SpecIssue

if TYPE_CHECKING:
    from airflow_segprovider.core.errors import Location
    from airflow_segprovider.core.project.yaml_source import DocPath, SourceDocument

LIST_SECTIONS = ("segments", "priority_groups", "destinations", "syncs", "sources", "spoke_segments")
SINGLE_SECTIONS = ("project", "model", "hub")


@dataclass
class ProjectItem:
    """A definition taken out of one file, with the means to locate its parts."""

    doc: SourceDocument
    path: DocPath
    data: Any

    def loc(self, *sub: str | int) -> Location:
        return self.doc.locate((*self.path, *sub))


class IssueList:
    def __init__(self) -> None:
        self.items: list[SpecIssue] = []

    def add(self, code: str, message: str, location: Location, hint: str = "") -> None:
        self.items.append(SpecIssue(code, message, location, hint))


class UnusableFiles:
    """What files left out of the semantic pass (already reported) declare or may declare.

    A file that failed the schema check still tells which sections and names it declares; a file
    that could not be read at all (syntax error, not UTF-8, too big) may declare anything. Neither
    is reported again as a missing section or an unknown name, so one mistake in a file gives one
    error, not one more per reference to what the file declares.
    """

    def __init__(self) -> None:
        self.unreadable = False
        self.names: dict[str, set[str]] = {section: set() for section in (*SINGLE_SECTIONS, *LIST_SECTIONS)}
        self.sections: set[str] = set()

    def add(self, doc: SourceDocument) -> None:
        self.sections.update(section for section in doc.data if isinstance(section, str))
        for section, value in doc.data.items():
            if section in SINGLE_SECTIONS:
                self.names[section].add(section)
            elif section in LIST_SECTIONS and isinstance(value, list):
                self.names[section].update(item["name"] for item in value
                                           if isinstance(item, dict) and isinstance(item.get("name"), str))

    def may_declare(self, section: str, name: str | None = None) -> bool:
        """Whether an unusable file declares (or, if unreadable, may declare) ``section`` or ``name`` in it."""
        if self.unreadable:
            return True
        return name in self.names[section] if name is not None else bool(self.names[section])


def did_you_mean(name: str, known: Any, what: str) -> str:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f"did you mean {close[0]!r}? (known {what}: {', '.join(names)})"
    return f"known {what}: {', '.join(names) if names else '(none)'}"

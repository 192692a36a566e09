"""The Docker build context as the Docker engine sees it, without an engine: ``.dockerignore`` and ``COPY``.

:class:`PatternMatcher` is a port of moby's ``patternmatcher`` (the matcher BuildKit and the classic builder use
for ``.dockerignore``): patterns are Go ``filepath.Match`` patterns plus ``**``, anchored at the context root
(``*.pyc`` matches ``a.pyc`` and not ``pkg/a.pyc``), a file is excluded when it or one of its parent folders
matches, ``!pattern`` re-includes, and the last matching pattern wins. :func:`read_dockerignore` reads the file
as moby's ``dockerignore.ReadAll`` does. :func:`copy_instructions` reads a Dockerfile's ``COPY`` lines, and
:func:`assemble` lays their sources out under a folder as they land in the image.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

#: Characters a regexp treats specially and ``filepath.Match`` does not (moby's ``shouldEscape``).
_REGEXP_ONLY = set(".+()|{}$")
_GLOB = re.compile(r"[*?\[\\]")


def clean(path: str) -> str:
    """Go's ``filepath.Clean`` on a slash-separated path."""
    cleaned = posixpath.normpath(path) if path else "."
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


@dataclass
class Pattern:
    """One ``.dockerignore`` pattern, compiled lazily the way moby's ``Pattern.compile`` does."""

    cleaned: str
    exclusion: bool = False
    _kind: str = field(default="", repr=False)
    _regexp: re.Pattern[str] | None = field(default=None, repr=False)

    def _compile(self) -> None:
        regexp, kind, text, i = "^", "exact", self.cleaned, 0
        position = 0
        while position < len(text):
            char = text[position]
            position += 1
            if char == "*":
                if position < len(text) and text[position] == "*":
                    position += 1
                    if position < len(text) and text[position] == "/":  # treat '**/' as '**'
                        position += 1
                    if position == len(text):
                        if kind == "exact":
                            kind = "prefix"
                        else:
                            regexp += ".*"
                            kind = "regexp"
                    else:
                        regexp += "(.*/)?"
                        kind = "regexp"
                    if i == 0:
                        kind = "suffix"
                else:
                    regexp += "[^/]*"
                    kind = "regexp"
            elif char == "?":
                regexp += "[^/]"
                kind = "regexp"
            elif char in _REGEXP_ONLY:
                regexp += "\\" + char
            elif char == "\\":
                if position < len(text):
                    regexp += "\\" + text[position]
                    position += 1
                    kind = "regexp"
                else:
                    regexp += "\\"
            elif char in "[]":
                regexp += char
                kind = "regexp"
            else:
                regexp += char
            i += 1
        if kind == "regexp":
            self._regexp = re.compile(regexp + "$")
        self._kind = kind

    def match(self, path: str) -> bool:
        """Whether ``path`` (slash-separated, relative to the context) matches this pattern itself."""
        if not self._kind:
            self._compile()
        if self._kind == "exact":
            return path == self.cleaned
        if self._kind == "prefix":
            return path.startswith(self.cleaned[:-2])
        if self._kind == "suffix":
            suffix = self.cleaned[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self._regexp is not None
        return self._regexp.match(path) is not None


class PatternMatcher:
    """moby's ``PatternMatcher`` with ``MatchesOrParentMatches``, the rule the builders apply.

    :param patterns: the patterns, in file order, as :func:`read_dockerignore` returns them.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: list[Pattern] = []
        for raw in patterns:
            text = raw.strip()
            if not text:
                continue
            text = clean(text)
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise ValueError('illegal exclusion pattern: "!"')
                text = text[1:]
            self.patterns.append(Pattern(text, exclusion))

    @property
    def has_exclusions(self) -> bool:
        """Whether some pattern re-includes (``!``): then no folder can be skipped whole."""
        return any(pattern.exclusion for pattern in self.patterns)

    def excludes(self, path: str) -> bool:
        """Whether the file or folder ``path`` (relative to the context, slash-separated) is left out."""
        path = clean(path)
        if path == ".":
            return False
        parent = posixpath.dirname(path) or "."
        parents = parent.split("/")
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            match = pattern.match(path)
            if not match and parent != ".":
                match = any(pattern.match("/".join(parents[:i + 1])) for i in range(len(parents)))
            if match:
                matched = not pattern.exclusion
        return matched


def read_dockerignore(path: Path) -> list[str]:
    """The patterns of a ``.dockerignore`` file, normalized as moby's ``dockerignore.ReadAll`` does."""
    patterns = []
    text = path.read_text(encoding="utf-8").removeprefix("\ufeff") if path.exists() else ""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


def context_files(root: Path, matcher: PatternMatcher) -> list[str]:
    """Every file the build context holds: paths relative to ``root``, slash-separated, sorted."""
    files = []
    for folder, dirs, names in os.walk(root):
        relative = Path(folder).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        if not matcher.has_exclusions:  # a left-out folder cannot hold a re-included file: skip it whole
            dirs[:] = [name for name in dirs if not matcher.excludes(prefix + name)]
        files += [prefix + name for name in names if not matcher.excludes(prefix + name)]
    return sorted(files)


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction: its keyword (upper case), its arguments (continuations joined), its line."""

    keyword: str
    arguments: str
    line: int


@dataclass(frozen=True)
class Copy:
    """A ``COPY`` from the build context: its sources, its destination in the image, its flags."""

    sources: tuple[str, ...]
    destination: str
    flags: dict[str, str]
    line: int


def read_dockerfile(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile; comments dropped, lines ending in ``\\`` joined."""
    instructions: list[Instruction] = []
    pending, start = "", 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, arguments = text.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
    return instructions


def copy_instructions(dockerfile: Path) -> list[Copy]:
    """The Dockerfile's ``COPY`` instructions that read the build context (``--from`` ones are not)."""
    copies = []
    for instruction in read_dockerfile(dockerfile):
        if instruction.keyword not in ("COPY", "ADD"):
            continue
        words = instruction.arguments.split()
        flags = {}
        while words and words[0].startswith("--"):
            name, _, value = words.pop(0)[2:].partition("=")
            flags[name] = value
        rest = " ".join(words)
        paths = json.loads(rest) if rest.startswith("[") else rest.split()
        if instruction.keyword == "ADD" or "from" in flags:
            assert instruction.keyword == "COPY", f"line {instruction.line}: ADD is not modelled; use COPY"
            continue
        copies.append(Copy(tuple(paths[:-1]), paths[-1], flags, instruction.line))
    return copies


def copied_files(copies: Sequence[Copy], files: Sequence[str]) -> dict[str, str]:
    """Where each context file a ``COPY`` takes lands in the image: image path -> context path.

    :param files: the build context's files (:func:`context_files`).
    :raises AssertionError: a source is missing from the context (the build would fail), or uses a wildcard.
    """
    present = set(files)
    placed: dict[str, str] = {}
    for copy in copies:
        into_folder = copy.destination.endswith("/") or len(copy.sources) > 1
        assert copy.destination.startswith("/"), f"line {copy.line}: relative COPY destinations are not modelled"
        for source in copy.sources:
            assert not _GLOB.search(source), f"line {copy.line}: wildcard COPY sources are not modelled"
            source = clean(source)
            assert not source.startswith(".."), f"line {copy.line}: {source} is outside the build context"
            if source in present:
                target = posixpath.join(copy.destination, posixpath.basename(source)) if into_folder \
                    else copy.destination
                placed[clean(target)] = source
                continue
            below = [path for path in files if path.startswith(source + "/")]
            assert below, (f"Dockerfile line {copy.line}: COPY {source}: not in the build context "
                           "(missing, or left out by .dockerignore): the build would fail")
            for path in below:
                placed[clean(posixpath.join(copy.destination, path[len(source) + 1:]))] = path
    return placed


def assemble(placed: dict[str, str], context: Path, image_root: Path) -> None:
    """Copy each placed file from the context to ``image_root`` + its image path."""
    for image_path, source in placed.items():
        target = image_root / image_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(context / source, target)

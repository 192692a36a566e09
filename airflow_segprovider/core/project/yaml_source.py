"""Load YAML into plain data while remembering where every value came from.

PyYAML's constructors drop source positions, silently keep the last of two
duplicate keys and expand alias bombs without limit. This loader walks the
composed node graph itself so that it can report all three as located errors,
and so that validation can point at the file, line and column of any value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from airflow_segprovider.core.errors import Location, SpecIssue

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_NODES = 200_000

DocPath = tuple[str | int, ...]

_PLAIN_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})

try:  # the C loader is an order of magnitude faster on large projects
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[attr-defined]
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


def format_path(path: DocPath) -> str:
    """Render ``("segments", 2, "rule")`` as ``segments[2].rule``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass
class SourceDocument:
    """One YAML file as plain data, with the position of every value in it."""

    file: str
    data: Any
    positions: dict[DocPath, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[DocPath, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: DocPath) -> Location:
        """Location of ``path``, or of its nearest enclosing value that has a position."""
        probe = tuple(path)
        while probe not in self.positions and probe:
            probe = probe[:-1]
        line, column = self.positions.get(probe, (None, None))
        return Location(self.file, line, column, format_path(path))

    def locate_key(self, path: DocPath) -> Location:
        """Location of the mapping key that ends ``path`` (where an unknown key is written)."""
        if path in self.key_positions:
            line, column = self.key_positions[path]
            return Location(self.file, line, column, format_path(path))
        return self.locate(path)


class _TooManyNodes(Exception):
    pass


class _Walker:
    def __init__(self, doc: SourceDocument, issues: list[SpecIssue]) -> None:
        self.doc = doc
        self.issues = issues
        self.count = 0
        self.broken = False
        self.constructor = yaml.constructor.SafeConstructor()

    def walk(self, node: yaml.Node, path: DocPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooManyNodes
        self.doc.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _PLAIN_COLLECTION_TAGS:
            self._unreadable(node, path, ValueError(f"unsupported tag {node.tag!r}"))
            return None
        if isinstance(node, yaml.MappingNode):
            try:
                self.constructor.flatten_mapping(node)  # resolves YAML merge keys (<<)
            except yaml.YAMLError as exc:
                self._unreadable(node, path, exc)
                return {}
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    self._issue("SEG005", "a mapping key must be a plain scalar", key_node, path,
                                "write keys as plain words, e.g. 'name:'")
                    continue
                key = str(key)
                self.doc.key_positions[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                if key in out:
                    self._issue("SEG005", f"duplicate key {key!r}", key_node, (*path, key),
                                "remove one of the two; YAML would silently keep only the last")
                out[key] = self.walk(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, (*path, index)) for index, item in enumerate(node.value)]
        value = self._scalar(node, path)
        # YAML turns 2024-01-01 into a date object; the project language keeps literals as text.
        if isinstance(value, (dt.date, dt.datetime)):
            return value.isoformat()
        return value

    def _scalar(self, node: yaml.Node, path: DocPath) -> Any:
        try:
            return self.constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            if node.tag == "tag:yaml.org,2002:timestamp":
                # An impossible date such as 2024-13-45 looks like a timestamp to YAML; keep the text so the
                # semantic pass reports it where the value's type is known.
                return node.value
            self._unreadable(node, path, exc)
            return None

    def _unreadable(self, node: yaml.Node, path: DocPath, exc: Exception) -> None:
        # Unknown tags (!custom, !!python/...) and malformed typed scalars (!!int abc) make the file unusable.
        self.broken = True
        problem = getattr(exc, "problem", None) or str(exc)
        self._issue("SEG001", f"YAML value cannot be read: {problem}", node, path,
                    "write plain values without '!' tags; project files use plain YAML")

    def _issue(self, code: str, message: str, node: yaml.Node, path: DocPath, hint: str) -> None:
        location = Location(self.doc.file, node.start_mark.line + 1, node.start_mark.column + 1, format_path(path))
        self.issues.append(SpecIssue(code, message, location, hint))


def load_yaml_file(path: Path, display_name: str, issues: list[SpecIssue]) -> SourceDocument | None:
    """Read one YAML file; append located issues and return None when it cannot be used.

    :param path: file to read.
    :param display_name: how the file is named in messages (usually relative to the project).
    :param issues: list that receives every problem found.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        issues.append(SpecIssue("SEG004", f"cannot read file: {exc.strerror}", Location(display_name)))
        return None
    if size > MAX_FILE_BYTES:
        issues.append(SpecIssue(
            "SEG004", f"file is {size:,} bytes, more than the {MAX_FILE_BYTES:,} a project file may have",
            Location(display_name), "split the definitions into several smaller files in the project folder"))
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        issues.append(SpecIssue("SEG004", f"file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                                Location(display_name), "save the file as UTF-8"))
        return None
    doc = SourceDocument(display_name, None)
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        problem = exc.problem or exc.context or "invalid YAML"
        issues.append(SpecIssue("SEG001", f"YAML syntax error: {problem}", Location(display_name, line, column),
                                "check indentation, colons and quoting around this line"))
        return None
    except yaml.YAMLError as exc:
        issues.append(SpecIssue("SEG001", f"YAML syntax error: {exc}", Location(display_name)))
        return None
    if root is None:
        doc.data = None
        return doc
    walker = _Walker(doc, issues)
    try:
        doc.data = walker.walk(root, ())
    except _TooManyNodes:
        issues.append(SpecIssue(
            "SEG006", f"file expands to more than {MAX_NODES:,} values (YAML aliases nested too deep?)",
            Location(display_name), "remove the nested anchors/aliases"))
        return None
    except RecursionError:
        issues.append(SpecIssue("SEG006", "file is nested too deeply (or contains a recursive alias)",
                                Location(display_name), "flatten the nesting"))
        return None
    if walker.broken:
        return None
    return doc

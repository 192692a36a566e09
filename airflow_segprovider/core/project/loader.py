"""Load a segments project folder, validate it completely, and build the :class:`Project`.

Loading is three passes, each reporting every problem it finds with its location:

1. read each ``*.yml``/``*.yaml`` file with positions (:mod:`.yaml_source`);
2. validate each file against the JSON Schema shipped in ``schema/project.schema.json``
   (:mod:`.schema_check`), after checking that its rules nest at most :data:`MAX_RULE_DEPTH` levels
   (the schema check recurses per level), and that every number outside a rule is finite and a whole
   number fits 64 bits (JSON Schema lets ``.nan`` through every ``minimum``/``maximum``);
3. semantic checks on the merged project: names resolve, operators fit types,
   values have the right type, references have no cycle, splits sum to 100%
   (:mod:`.builder` for the rules, :mod:`.checks` for each section).

Nothing is returned unless all three passes are clean; otherwise a single
:class:`~airflow_segprovider.core.errors.ProjectValidationError` lists every issue.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from airflow_segprovider.core.errors import Location, ProjectValidationError
from airflow_segprovider.core.project.builder import RuleBuilder
from airflow_segprovider.core.project.checks.destinations import parse_destinations
from airflow_segprovider.core.project.checks.model import parse_model
from airflow_segprovider.core.project.checks.segments import (
    check_cycles,
    parse_priority_groups,
    parse_split,
    suppression_channels,
)
from airflow_segprovider.core.project.checks.sources import parse_sources
from airflow_segprovider.core.project.checks.syncs import parse_syncs
from airflow_segprovider.core.project.distributed import reconcile_policies
from airflow_segprovider.core.project.hybrid import parse_hybrid
from airflow_segprovider.core.project.items import (
    LIST_SECTIONS,
    SINGLE_SECTIONS,
    IssueList,
    ProjectItem,
    UnusableFiles,
    did_you_mean,
)
from airflow_segprovider.core.project.rules import Condition, PriorityGroup, Segment
from airflow_segprovider.core.project.schema_check import schema_check
from airflow_segprovider.core.project.spec import Project, WarehouseSettings
from airflow_segprovider.core.project.yaml_source import DocPath, SourceDocument, load_yaml_file

PROJECT_FILE_SUFFIXES = (".yml", ".yaml")
#: Levels of ``all``/``any``/``not`` a rule may nest; real rules nest two or three.
MAX_RULE_DEPTH = 32
#: Sections whose items have a ``rule``; the numbers in a rule are its values, typed by the rule builder.
RULE_SECTIONS = ("segments", "spoke_segments")
INT64_MAX = 2**63 - 1


def _project_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in PROJECT_FILE_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def load_project(root: str | Path) -> Project:
    """Load and validate the segments project in folder ``root``.

    :param root: folder holding the project's YAML files (searched recursively).
    :raises ProjectValidationError: listing every issue found, each with file, line and path.
    """
    root_path = Path(root)
    issues = IssueList()
    if not root_path.is_dir():
        issues.add("SEG003", f"project folder {str(root_path)!r} does not exist", Location(str(root_path)),
                   "pass the folder that holds segprovider_project.yml")
        raise ProjectValidationError(issues.items)
    docs: list[SourceDocument] = []
    unusable = UnusableFiles()
    for file in _project_files(root_path):
        doc = load_yaml_file(file, _display_name(file), issues.items)
        if doc is None:
            unusable.unreadable = True
            continue
        if doc.data is None:
            continue
        if not isinstance(doc.data, dict):
            issues.add("SEG002", f"a project file must be a mapping of sections, got a {type(doc.data).__name__}",
                       doc.locate(()), f"start the file with one of: {', '.join(SINGLE_SECTIONS + LIST_SECTIONS)}")
            continue
        if not check_rule_depth(doc, issues):
            unusable.add(doc)
            continue
        numbers_ok, before = check_numbers(doc, issues), len(issues.items)
        schema_ok = schema_check(doc, issues)
        # an .inf above a maximum is reported once, as not finite
        reported = {issue.location.path for issue in issues.items[:before]}
        issues.items[before:] = [issue for issue in issues.items[before:] if issue.location.path not in reported]
        if numbers_ok and schema_ok:
            docs.append(doc)
        else:
            unusable.add(doc)
    if not docs and not issues.items:
        issues.add("SEG003", f"project folder {str(root_path)!r} holds no project definitions",
                   Location(str(root_path)), "add segprovider_project.yml with a 'project:' section and "
                   "YAML files declaring 'model:' and 'segments:'")
        raise ProjectValidationError(issues.items)  # missing sections would only repeat it
    project = _assemble(root_path, docs, issues, unusable)
    if issues.items:
        raise ProjectValidationError(issues.items)
    assert project is not None
    return project


def check_rule_depth(doc: SourceDocument, issues: IssueList) -> bool:
    """Report each rule nesting more than :data:`MAX_RULE_DEPTH` levels (SEG006); True when none does."""
    ok = True
    for section, index, rule in _rules(doc.data):
        depth, deepest = 0, (section, index, "rule")
        stack: list[tuple[Any, int, DocPath]] = [(rule, 0, (section, index, "rule"))]
        while stack:
            node, level, path = stack.pop()
            if not isinstance(node, dict):
                continue
            if level > depth:
                depth, deepest = level, path
            for key in ("all", "any"):
                if isinstance(node.get(key), list):
                    stack.extend((child, level + 1, (*path, key, i)) for i, child in enumerate(node[key]))
            if "not" in node:
                stack.append((node["not"], level + 1, (*path, "not")))
        if depth > MAX_RULE_DEPTH:  # (depth: the all/any/not around the deepest condition)
            issues.add("SEG006", f"rule nests {depth} levels of all/any/not; at most {MAX_RULE_DEPTH} are allowed",
                       doc.locate(deepest[:3]), "flatten it: all of all is one all, not of not is the rule itself; "
                       "or name a part as its own segment and refer to it with 'segment:'")
            ok = False
    return ok


def _rules(data: Any) -> list[tuple[str, int, Any]]:
    if not isinstance(data, dict):
        return []
    return [(section, index, item["rule"]) for section in RULE_SECTIONS if isinstance(data.get(section), list)
            for index, item in enumerate(data[section]) if isinstance(item, dict) and "rule" in item]


def check_numbers(doc: SourceDocument, issues: IssueList) -> bool:
    """Report each number outside a rule that is not finite or does not fit 64 bits (SEG010); True when none."""
    ok = True
    stack: list[tuple[DocPath, Any]] = [((), doc.data)]
    while stack:
        path, value = stack.pop()
        if len(path) == 3 and path[0] in RULE_SECTIONS and path[2] == "rule":
            continue  # rule values: typed (and checked) by the rule builder
        if isinstance(value, dict):  # (children pushed last first: reported in the order they are written)
            stack.extend(reversed([((*path, key), child) for key, child in value.items()]))
        elif isinstance(value, list):
            stack.extend(reversed([((*path, index), child) for index, child in enumerate(value)]))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, float) and not math.isfinite(value):
            field = next((part for part in reversed(path) if isinstance(part, str)), "value")
            written = ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
            issues.add("SEG010", f"{field} is {written}, not a finite number", doc.locate(path),
                       "write a number; .nan and .inf are refused (every comparison with .nan is false, "
                       "which would switch off the check this setting controls)")
            ok = False
        elif isinstance(value, int) and abs(value) > INT64_MAX:
            field = next((part for part in reversed(path) if isinstance(part, str)), "value")
            issues.add("SEG010", f"{field} is {len(str(abs(value)))} digits long, more than a 64-bit whole number "
                       f"holds (at most {INT64_MAX:,})", doc.locate(path), "write a smaller number")
            ok = False
    return ok


def _display_name(file: Path) -> str:
    """A file name as an editor or terminal can open it: relative to the working directory when inside it."""
    try:
        return str(file.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(file)


def _single(section: str, docs: list[SourceDocument], issues: IssueList, root: Path,
            unusable: UnusableFiles) -> ProjectItem | None:
    found = [ProjectItem(doc, (section,), doc.data[section]) for doc in docs if section in doc.data]
    if not found and unusable.may_declare(section):
        return None  # possibly declared in a file already reported as unusable
    if not found:
        issues.add("SEG011", f"the project has no '{section}:' section", Location(str(root)),
                   f"declare '{section}:' once, in any file of the project")
        return None
    for extra in found[1:]:
        issues.add("SEG011", f"'{section}:' is declared more than once", extra.doc.locate_key((section,)),
                   f"it is already declared at {found[0].doc.locate_key((section,))}; keep one")
    return found[0]


def _collect(section: str, docs: list[SourceDocument]) -> list[ProjectItem]:
    return [ProjectItem(doc, (section, index), data)
            for doc in docs for index, data in enumerate(doc.data.get(section, []))]


def _unique(items: list[ProjectItem], what: str, issues: IssueList, code: str = "SEG020") -> dict[str, ProjectItem]:
    by_name: dict[str, ProjectItem] = {}
    for item in items:
        name = item.data["name"]
        if name in by_name:
            issues.add(code, f"duplicate {what} name {name!r}", item.loc("name"),
                       f"already defined at {by_name[name].loc('name')}; names must be unique in a project")
        else:
            by_name[name] = item
    return by_name


def _assemble(root: Path, docs: list[SourceDocument], issues: IssueList, unusable: UnusableFiles) -> Project | None:
    builder = RuleBuilder(issues, unusable)
    project_item = _single("project", docs, issues, root, unusable)
    model_item = _single("model", docs, issues, root, unusable)
    segment_items = _unique(_collect("segments", docs), "segment", issues)
    group_items = _unique(_collect("priority_groups", docs), "priority group", issues)
    destination_items = _unique(_collect("destinations", docs), "destination", issues)
    sync_items = _collect("syncs", docs)
    source_items = _unique(_collect("sources", docs), "source", issues, code="SEG060")
    if docs and not segment_items and not unusable.may_declare("segments"):
        issues.add("SEG003", "the project declares no segments", Location(str(root)),
                   "add a file with a 'segments:' list")
    if model_item is None or project_item is None:
        return None
    model = parse_model(model_item, issues)

    # rules first: every other check reads them
    rules: dict[str, Condition] = {}
    for name, item in segment_items.items():
        rule = builder.condition(item, ("rule",), model, set(segment_items))
        if rule is not None:
            rules[name] = rule

    destinations = parse_destinations(destination_items, model, issues)
    syncs = parse_syncs(sync_items, segment_items, destinations, set(destination_items), unusable, issues)
    priority = parse_priority_groups(group_items, segment_items, unusable, issues)
    channels = suppression_channels(segment_items, syncs, destinations, model, issues)
    splits = {name: parse_split(item, issues) for name, item in segment_items.items() if "split" in item.data}
    for sync, item in syncs:
        if sync.arm is not None and not (sync.segment in splits and splits[sync.segment] is None):
            # (an invalid split is reported once where it is declared, not again per sync of an arm)
            split = splits.get(sync.segment)
            arms = [arm.name for arm in split.arms] if split else []
            if sync.arm not in arms:
                issues.add("SEG043", f"segment {sync.segment!r} has no split arm {sync.arm!r}", item.loc("arm"),
                           f"arms of {sync.segment!r}: {', '.join(arms)}" if arms else
                           f"{sync.segment!r} has no split; remove 'arm'")
    segments = {
        name: Segment(
            name=name, rule=rules[name], description=item.data.get("description", ""),
            owner=item.data.get("owner", ""), tags=tuple(item.data.get("tags", [])), split=splits.get(name),
            suppress_channels=tuple(sorted(channels.get(name, ()))),
            priority_group=priority.get(name, (None, ()))[0], higher_priority=priority.get(name, (None, ()))[1],
            loc=item.loc(),
        )
        for name, item in segment_items.items() if name in rules
    }
    check_cycles(segments, segment_items, issues)
    sources = parse_sources(source_items, model, issues)
    history = model.customer.history
    if history is not None and history.managed and not any(s.table == model.customer.table
                                                           for s in sources.values()):
        issues.add("SEG087", f"model.customer.history: true, but no source loads the customer table "
                   f"{model.customer.table!r}: ingest writes the history when it loads that table",
                   model_item.loc("customer", "history"),
                   "declare a source of the customer table under 'sources:', or declare the history table "
                   "another tool keeps: 'history: {table: ..., valid_from: ..., valid_to: ...}'")
    # a file left out (already reported) may declare the syncs a reconcile entry is checked against
    incomplete = unusable.unreadable or bool({"segments", "destinations", "syncs"} & unusable.sections)
    reconcile = reconcile_policies(_collect("reconcile", docs), segment_items, [s for s, _ in syncs], destinations,
                                   issues, did_you_mean, incomplete=incomplete,
                                   declared_syncs=[item.data["segment"] for item in sync_items])
    # the hybrid model (hub and spoke segments) is parsed in its own module
    hub_item = next((ProjectItem(doc, ("hub",), doc.data["hub"]) for doc in docs if "hub" in doc.data), None)
    spoke_items = _unique(_collect("spoke_segments", docs), "spoke segment", issues, code="SEG084")
    hub, spoke_segments = parse_hybrid(builder, hub_item, spoke_items, model, destinations,
                                       declared_destinations=set(destination_items))
    if issues.items:
        return None
    settings = project_item.data.get("warehouse", {})
    return Project(
        name=project_item.data["name"], root=str(root), model=model, segments=segments,
        priority_groups={name: PriorityGroup(name, tuple(item.data["segments"]), item.data.get("description", ""))
                         for name, item in group_items.items()},
        destinations={d.name: d for d in destinations.values()},
        syncs=tuple(sync for sync, _ in syncs),
        warehouse=WarehouseSettings(**settings), description=project_item.data.get("description", ""),
        sources=sources, reconcile=reconcile, hub=hub, spoke_segments=spoke_segments,
        on_gate_failure=project_item.data.get("on_gate_failure", "hold_segment"),
        on_count_drift=project_item.data.get("on_count_drift", "fail"),
    )

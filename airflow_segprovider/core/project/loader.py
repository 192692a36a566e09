"""Load a segments project folder, validate it completely, and build the :class:`Project`.

Loading is three passes, each reporting every problem it finds with its location:

1. read each ``*.yml``/``*.yaml`` file with positions (:mod:`.yaml_source`);
2. validate each file against the JSON Schema shipped in ``schema/project.schema.json``;
3. semantic checks on the merged project: names resolve, operators fit types,
   values have the right type, references have no cycle, splits sum to 100%.

Nothing is returned unless all three passes are clean; otherwise a single
:class:`~airflow_segprovider.core.errors.ProjectValidationError` lists every issue.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from airflow_segprovider.core.project.durations import parse_duration
from airflow_segprovider.core.errors import Location, ProjectValidationError, SpecIssue
from airflow_segprovider.core.project.distributed import reconcile_policies
from airflow_segprovider.core.project.regex import check_portable_regex
from airflow_segprovider.core.project.spec import (
    LIST_OPS,
    NULL_OPS,
    NUMERIC_AGGREGATES,
    OPERATORS_BY_TYPE,
    RELATIVE_OPS,
    TIME_AGGREGATES,
    AllOf,
    AnyOf,
    Attribute,
    AttributeCondition,
    ChannelPolicy,
    Condition,
    ConsentModel,
    CustomerEntity,
    DataModel,
    Destination,
    EventCondition,
    EventSource,
    Incremental,
    Not,
    Pagination,
    Predicate,
    PriorityGroup,
    Project,
    PropertyFilter,
    Segment,
    SegmentCondition,
    Source,
    Split,
    SplitArm,
    Sync,
    WarehouseSettings,
    referenced_segments,
)
from airflow_segprovider.core.project.yaml_source import DocPath, SourceDocument, load_yaml_file

PROJECT_FILE_SUFFIXES = (".yml", ".yaml")
LIST_SECTIONS = ("segments", "priority_groups", "destinations", "syncs", "sources", "spoke_segments")
SINGLE_SECTIONS = ("project", "model", "hub")


@lru_cache(maxsize=1)
def project_file_schema() -> dict[str, Any]:
    """The JSON Schema every project file is validated against."""
    text = resources.files("airflow_segprovider.core.project").joinpath("schema/project.schema.json").read_text()
    return json.loads(text)


@dataclass
class _Item:
    """A definition taken out of one file, with the means to locate its parts."""

    doc: SourceDocument
    path: DocPath
    data: Any

    def loc(self, *sub: str | int) -> Location:
        return self.doc.locate((*self.path, *sub))


class _Issues:
    def __init__(self) -> None:
        self.items: list[SpecIssue] = []

    def add(self, code: str, message: str, location: Location, hint: str = "") -> None:
        self.items.append(SpecIssue(code, message, location, hint))


# --- pass 1 and 2: files and schema ------------------------------------------------------------


def _project_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in PROJECT_FILE_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def _schema_message(error: jsonschema.ValidationError) -> tuple[str, str]:
    """A readable message and fix for one schema violation."""
    validator = error.validator
    if validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = _unknown_keys(error) or [error.message]
        hint = f"allowed keys here: {', '.join(allowed)}" if allowed else "remove it"
        return f"unknown key {', '.join(repr(e) for e in extra)}", hint
    if validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        return f"missing required key {missing[0]!r}" if missing else error.message, "add it"
    if validator == "oneOf" and "all" in json.dumps(error.validator_value):
        return ("a rule must be exactly one of: all, any, not, attribute, event, segment",
                "write one condition per list item; combine several with 'all:' or 'any:'")
    if validator == "enum":
        return (f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}",
                "use one of the listed values")
    if validator == "pattern":
        return (f"{error.instance!r} is not a valid name",
                "names are lowercase letters, digits and underscores, starting with a letter")
    if validator == "type":
        return f"{error.instance!r} should be of type {error.validator_value}", ""
    if validator == "const":
        return f"{error.instance!r} must be {error.validator_value!r}", ""
    if validator in ("minItems", "minProperties"):
        count = error.validator_value
        return (f"needs at least {count} {'item' if validator == 'minItems' else 'entry'}{'s' if count != 1 else ''}, "
                f"has {len(error.instance)}", "add the missing entries")
    if validator == "multipleOf":
        return (f"{error.instance!r} is not a multiple of {error.validator_value}",
                f"round it to steps of {error.validator_value}")
    return error.message, ""


def _decimal_multiple_of(validator: Any, step: Any, instance: Any, schema: Any) -> Any:
    """``multipleOf`` on the number as written; jsonschema divides floats and rejects 33.33 as a multiple of 0.01."""
    if not validator.is_type(instance, "number"):
        return
    quotient = Decimal(str(instance)) / Decimal(str(step))
    if quotient != quotient.to_integral_value():
        yield jsonschema.ValidationError(f"{instance!r} is not a multiple of {step}")


_ProjectFileValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"multipleOf": _decimal_multiple_of})


def _unknown_keys(error: jsonschema.ValidationError) -> list[str]:
    """Keys an ``additionalProperties: false`` object does not allow, in the order they were written."""
    if not isinstance(error.instance, dict):
        return []
    allowed = error.schema.get("properties", {})
    return [key for key in error.instance if key not in allowed]


def _schema_check(doc: SourceDocument, issues: _Issues) -> bool:
    validator = _ProjectFileValidator(project_file_schema())
    errors = sorted(validator.iter_errors(doc.data), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        path = tuple(error.absolute_path)
        message, hint = _schema_message(error)
        unknown = _unknown_keys(error) if error.validator == "additionalProperties" else []
        # point at the offending key itself, not at the start of the mapping holding it
        location = doc.locate_key((*path, unknown[0])) if unknown else doc.locate(path)
        issues.add("SEG010", message, location, hint)
    return not errors


# --- pass 3: semantics -------------------------------------------------------------------------


def _parse_timestamp(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


def _parse_scalar(value_type: str, value: Any) -> Any:
    """Typed value for ``value_type`` or ValueError saying what was expected."""
    if value_type == "string":
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {value!r}")
        return value
    if value_type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        return value
    if value_type == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if value_type == "date":
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(f"expected a date as YYYY-MM-DD, got {value!r}")
        try:
            return dt.date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a calendar date ({exc})") from None
    if value_type == "timestamp":
        if not isinstance(value, str):
            raise ValueError(f"expected an ISO 8601 timestamp, got {value!r}")
        try:
            return _parse_timestamp(value)
        except ValueError:
            raise ValueError(f"expected an ISO 8601 timestamp such as 2026-01-31T08:00:00Z, got {value!r}") from None
    raise AssertionError(value_type)


def parse_predicate(value_type: str, op: str, raw: Any, has_value: bool) -> Predicate:
    """Check ``op`` and ``raw`` against ``value_type`` and return a typed :class:`Predicate`.

    :raises ValueError: with a message naming what is wrong; the caller adds the location.
    """
    if op not in OPERATORS_BY_TYPE[value_type]:
        valid = ", ".join(sorted(OPERATORS_BY_TYPE[value_type]))
        raise _OperatorError(f"operator {op!r} is not valid for a {value_type} value", f"use one of: {valid}")
    if op in NULL_OPS:
        if has_value:
            raise ValueError(f"operator {op!r} takes no value")
        return Predicate(op)
    if not has_value:
        raise ValueError(f"operator {op!r} needs a value")
    if op in RELATIVE_OPS:
        return Predicate(op, parse_duration(raw))
    if op in LIST_OPS:
        if not isinstance(raw, list) or not raw:
            raise ValueError(f"operator {op!r} needs a non-empty list of values")
        return Predicate(op, tuple(_parse_scalar(value_type, item) for item in raw))
    if op == "between":
        if not isinstance(raw, list) or len(raw) != 2:
            raise ValueError("operator 'between' needs a list of two values: [low, high]")
        low, high = (_parse_scalar(value_type, item) for item in raw)
        if low > high:
            raise ValueError(f"'between' bounds are reversed: {raw[0]!r} is greater than {raw[1]!r}")
        return Predicate(op, (low, high))
    if isinstance(raw, list):
        raise ValueError(f"operator {op!r} takes one value, not a list")
    if op == "matches":
        if not isinstance(raw, str):
            raise ValueError(f"expected a regular expression as text, got {raw!r}")
        check_portable_regex(raw)
    return Predicate(op, _parse_scalar(value_type, raw))


class _OperatorError(ValueError):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


class _Builder:
    """Turns schema-valid documents into the spec, collecting every semantic issue."""

    def __init__(self, issues: _Issues, unusable: _Unusable | None = None) -> None:
        self.issues = issues
        self.unusable = unusable or _Unusable()

    # data model ---------------------------------------------------------------------------
    def model(self, item: _Item) -> DataModel:
        raw = item.data
        customer_raw = raw["customer"]
        attributes = {
            name: Attribute(name, spec["type"], spec.get("column", name), spec.get("description", ""))
            for name, spec in customer_raw["attributes"].items()
        }
        customer = CustomerEntity(customer_raw["table"], customer_raw["key"], attributes)
        events: dict[str, EventSource] = {}
        origin: dict[str, Location] = {}

        def register(source: EventSource, location: Location) -> None:
            if source.name in events:
                self.issues.add("SEG022", f"event name {source.name!r} is declared twice", location,
                                f"it is already declared at {origin[source.name]}; event types and order "
                                "table names share one namespace, rename one")
                return
            events[source.name] = source
            origin[source.name] = location

        for table_name, table in raw.get("event_tables", {}).items():
            for index, event_type in enumerate(table["event_types"]):
                register(EventSource(event_type, table["table"], table["customer_key"], table["timestamp"],
                                     dict(table.get("properties", {})), table["type_column"], event_type, table_name),
                         item.loc("event_tables", table_name, "event_types", index))
        for table_name, table in raw.get("order_tables", {}).items():
            register(EventSource(table_name, table["table"], table["customer_key"], table["timestamp"],
                                 dict(table.get("properties", {})), None, None, table_name),
                     item.loc("order_tables", table_name))
        consent = None
        if "consent" in raw:
            c = raw["consent"]
            channels = {name: ChannelPolicy(name, bool(policy.get("require_opt_in", True)))
                        for name, policy in c["channels"].items()}
            consent = ConsentModel(c["table"], c["customer_key"], c["channel_column"], c["opted_in_column"],
                                   c["updated_at_column"], channels)
        return DataModel(customer, events, consent)

    # rules ---------------------------------------------------------------------------------
    def condition(self, item: _Item, path: DocPath, model: DataModel, segments: set[str]) -> Condition | None:
        raw = _get(item.data, path)
        loc = item.loc(*path)
        if "all" in raw or "any" in raw:
            key = "all" if "all" in raw else "any"
            children = [self.condition(item, (*path, key, i), model, segments) for i in range(len(raw[key]))]
            if any(child is None for child in children):
                return None
            return (AllOf if key == "all" else AnyOf)(tuple(children), loc)  # type: ignore[arg-type]
        if "not" in raw:
            child = self.condition(item, (*path, "not"), model, segments)
            return None if child is None else Not(child, loc)
        if "segment" in raw:
            name = raw["segment"]
            if name not in segments:
                if self.unusable.may_declare("segments", name):
                    return None  # possibly declared in a file already reported as unusable
                self.issues.add("SEG027", f"unknown segment {name!r} referenced", item.loc(*path, "segment"),
                                _did_you_mean(name, segments, "segments"))
                return None
            return SegmentCondition(name, raw.get("op", "in") == "not_in", loc)
        if "attribute" in raw:
            name = raw["attribute"]
            attribute = model.customer.attributes.get(name)
            if attribute is None:
                self.issues.add("SEG021", f"unknown attribute {name!r}", item.loc(*path, "attribute"),
                                _did_you_mean(name, model.customer.attributes, "customer attributes"))
                return None
            predicate = self._predicate(item, path, attribute.type, f"attribute {name!r}")
            return None if predicate is None else AttributeCondition(name, predicate, loc)
        return self._event(item, path, raw, model, loc)

    def _event(self, item: _Item, path: DocPath, raw: dict, model: DataModel, loc: Location) -> Condition | None:
        name, aggregate = raw["event"], raw["aggregate"]
        source = model.events.get(name)
        if source is None:
            self.issues.add("SEG022", f"unknown event {name!r}", item.loc(*path, "event"),
                            _did_you_mean(name, model.events, "event types and order tables"))
            return None
        ok = True
        prop = raw.get("property")
        if aggregate in NUMERIC_AGGREGATES:
            if prop is None:
                self.issues.add("SEG026", f"aggregate {aggregate!r} needs a 'property' to aggregate",
                                loc, f"add e.g. 'property: {next(iter(source.properties), 'amount')}'")
                ok = False
            elif prop not in source.properties:
                self.issues.add("SEG025", f"event {name!r} has no property {prop!r}", item.loc(*path, "property"),
                                _did_you_mean(prop, source.properties, f"properties of {name!r}"))
                ok = False
            elif source.properties[prop] != "number":
                self.issues.add("SEG026", f"aggregate {aggregate!r} needs a number property; "
                                f"{prop!r} is {source.properties[prop]}", item.loc(*path, "property"),
                                "aggregate a number property, or use count")
                ok = False
        elif prop is not None:
            self.issues.add("SEG026", f"aggregate {aggregate!r} takes no 'property'", item.loc(*path, "property"),
                            "remove 'property' (count counts occurrences, first/last are timestamps)")
            ok = False
        within = None
        if "within" in raw:
            try:
                within = parse_duration(raw["within"])
            except ValueError as exc:
                self.issues.add("SEG048", str(exc), item.loc(*path, "within"))
                ok = False
        filters: list[PropertyFilter] = []
        for index, flt in enumerate(raw.get("where", [])):
            fpath = (*path, "where", index)
            prop_type = source.properties.get(flt["property"])
            if prop_type is None:
                self.issues.add("SEG025", f"event {name!r} has no property {flt['property']!r}",
                                item.loc(*fpath, "property"),
                                _did_you_mean(flt["property"], source.properties, f"properties of {name!r}"))
                ok = False
                continue
            predicate = self._predicate(item, fpath, prop_type, f"property {flt['property']!r}")
            if predicate is None:
                ok = False
            else:
                filters.append(PropertyFilter(flt["property"], predicate))
        result_type = "timestamp" if aggregate in TIME_AGGREGATES else "number"
        predicate = self._predicate(item, path, result_type, f"{aggregate} of {name!r}")
        if predicate is None or not ok:
            return None
        return EventCondition(name, aggregate, predicate, prop, within, tuple(filters), loc)

    def _predicate(self, item: _Item, path: DocPath, value_type: str, subject: str) -> Predicate | None:
        raw = _get(item.data, path)
        try:
            return parse_predicate(value_type, raw["op"], raw.get("value"), "value" in raw)
        except _OperatorError as exc:
            self.issues.add("SEG023", f"{exc} ({subject} is {value_type})", item.loc(*path, "op"), exc.hint)
        except ValueError as exc:
            code = "SEG048" if raw["op"] in RELATIVE_OPS else "SEG024"
            where = item.loc(*path, "value") if "value" in raw else item.loc(*path, "op")
            self.issues.add(code, f"{subject}: {exc}", where)
        return None


def _get(data: Any, path: DocPath) -> Any:
    for part in path:
        data = data[part]
    return data


def _did_you_mean(name: str, known: Any, what: str) -> str:
    import difflib

    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f"did you mean {close[0]!r}? (known {what}: {', '.join(names)})"
    return f"known {what}: {', '.join(names) if names else '(none)'}"


# --- the whole project ----------------------------------------------------------------------


def load_project(root: str | Path) -> Project:
    """Load and validate the segments project in folder ``root``.

    :param root: folder holding the project's YAML files (searched recursively).
    :raises ProjectValidationError: listing every issue found, each with file, line and path.
    """
    root_path = Path(root)
    issues = _Issues()
    if not root_path.is_dir():
        issues.add("SEG003", f"project folder {str(root_path)!r} does not exist", Location(str(root_path)),
                   "pass the folder that holds segprovider_project.yml")
        raise ProjectValidationError(issues.items)
    docs: list[SourceDocument] = []
    unusable = _Unusable()
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
        if _schema_check(doc, issues):
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


def _display_name(file: Path) -> str:
    """A file name as an editor or terminal can open it: relative to the working directory when inside it."""
    try:
        return str(file.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(file)


class _Unusable:
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


def _single(section: str, docs: list[SourceDocument], issues: _Issues, root: Path,
            unusable: _Unusable) -> _Item | None:
    found = [_Item(doc, (section,), doc.data[section]) for doc in docs if section in doc.data]
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


def _collect(section: str, docs: list[SourceDocument]) -> list[_Item]:
    return [_Item(doc, (section, index), data) for doc in docs for index, data in enumerate(doc.data.get(section, []))]


def _unique(items: list[_Item], what: str, issues: _Issues, code: str = "SEG020") -> dict[str, _Item]:
    by_name: dict[str, _Item] = {}
    for item in items:
        name = item.data["name"]
        if name in by_name:
            issues.add(code, f"duplicate {what} name {name!r}", item.loc("name"),
                       f"already defined at {by_name[name].loc('name')}; names must be unique in a project")
        else:
            by_name[name] = item
    return by_name


def _assemble(root: Path, docs: list[SourceDocument], issues: _Issues, unusable: _Unusable) -> Project | None:
    builder = _Builder(issues, unusable)
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
    model = builder.model(model_item)

    # rules first: every other check reads them
    rules: dict[str, Condition] = {}
    for name, item in segment_items.items():
        rule = builder.condition(item, ("rule",), model, set(segment_items))
        if rule is not None:
            rules[name] = rule

    destinations = _destinations(destination_items, model, issues)
    syncs = _syncs(sync_items, segment_items, destinations, set(destination_items), unusable, issues)
    priority = _priority_groups(group_items, segment_items, unusable, issues)
    channels = _suppression_channels(segment_items, syncs, destinations, model, issues)
    splits = {name: _split(item, issues) for name, item in segment_items.items() if "split" in item.data}
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
    _check_cycles(segments, segment_items, issues)
    sources = _sources(source_items, model, issues)
    # a file left out (already reported) may declare the syncs a reconcile entry is checked against
    incomplete = unusable.unreadable or bool({"segments", "destinations", "syncs"} & unusable.sections)
    reconcile = reconcile_policies(_collect("reconcile", docs), segment_items, [s for s, _ in syncs], destinations,
                                   issues, _did_you_mean, incomplete=incomplete,
                                   declared_syncs=[item.data["segment"] for item in sync_items])
    # the hybrid model (hub and spoke segments) is parsed in its own module
    from airflow_segprovider.core.project.hybrid import parse_hybrid

    hub_item = next((_Item(doc, ("hub",), doc.data["hub"]) for doc in docs if "hub" in doc.data), None)
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
    )


def _destinations(items: dict[str, _Item], model: DataModel, issues: _Issues) -> dict[str, Destination]:
    out: dict[str, Destination] = {}
    attributes = model.customer.attributes
    for name, item in items.items():
        raw, ok = item.data, True
        if not raw["connection_id"].strip():
            issues.add("SEG040", f"destination {name!r} has no connection", item.loc("connection_id"),
                       "set connection_id to the Airflow connection holding its credentials")
            ok = False
        if raw["identity"] not in attributes:
            issues.add("SEG046", f"destination {name!r}: identity {raw['identity']!r} is not a customer attribute",
                       item.loc("identity"), _did_you_mean(raw["identity"], attributes, "customer attributes"))
            ok = False
        for field_name, attribute in raw.get("field_mapping", {}).items():
            if attribute not in attributes:
                issues.add("SEG044", f"destination {name!r}: field {field_name!r} maps unknown attribute "
                           f"{attribute!r}", item.loc("field_mapping", field_name),
                           _did_you_mean(attribute, attributes, "customer attributes"))
                ok = False
        if model.consent is None:
            issues.add("SEG045", f"destination {name!r} reaches channel {raw['channel']!r}, but the model declares "
                       "no consent table", item.loc("channel"),
                       "declare model.consent with this channel; use require_opt_in: false to allow customers "
                       "who never answered (consent is checked before anything is sent)")
            ok = False
        elif raw["channel"] not in model.consent.channels:
            issues.add("SEG045", f"destination {name!r}: channel {raw['channel']!r} is not a consent channel",
                       item.loc("channel"), _did_you_mean(raw["channel"], model.consent.channels, "consent channels"))
            ok = False
        if ok:
            out[name] = Destination(name, raw["kind"], raw["connection_id"], raw["channel"], raw["identity"],
                                    dict(raw.get("config", {})), dict(raw.get("field_mapping", {})),
                                    raw.get("description", ""), item.loc())
    return out


def _model_tables(model: DataModel) -> dict[str, str]:
    """Warehouse table -> its role in the model (``customer``, ``event``, ``order`` or ``consent``)."""
    tables = {model.customer.table: "customer"}
    for source in model.events.values():
        tables.setdefault(source.table, "event" if source.type_column else "order")
    if model.consent is not None:
        tables.setdefault(model.consent.table, "consent")
    return tables


_SOURCE_KIND_KEYS = {
    "file": ("format", "path", "delimiter"),
    "warehouse_table": ("query", "from_table"),
    "rest_api": ("url", "connection_id", "records", "params", "pagination"),
}
_PAGINATION_STYLE_KEYS = {
    "none": (),
    "cursor": ("page_size", "page_size_param", "cursor_param", "cursor_path"),
    "offset": ("page_size", "page_size_param", "offset_param"),
    "link_header": ("page_size", "page_size_param"),
}


def _sources(items: dict[str, _Item], model: DataModel, issues: _Issues) -> dict[str, Source]:
    """Valid sources; each problem is reported where it is written (SEG060-SEG067)."""
    out: dict[str, Source] = {}
    tables = _model_tables(model)
    by_table: dict[str, list[_Item]] = {}
    for name, item in items.items():
        raw, kind, before = item.data, item.data["kind"], len(issues.items)
        role = tables.get(raw["table"])
        if role is None:
            issues.add("SEG061", f"source {name!r} loads table {raw['table']!r}, which is not a table of the data model",
                       item.loc("table"), _did_you_mean(raw["table"], tables, "model tables"))
        by_table.setdefault(raw["table"], []).append(item)
        for other_kind, keys in _SOURCE_KIND_KEYS.items():
            for key in keys:
                if other_kind != kind and key in raw:
                    issues.add("SEG062", f"source {name!r}: {key!r} does not apply to a {kind} source",
                               item.loc(key), f"remove it ({key!r} is a setting of {other_kind} sources)")
        if "delimiter" in raw and raw.get("format") != "csv":
            issues.add("SEG062", f"source {name!r}: 'delimiter' applies to csv files only", item.loc("delimiter"),
                       "remove it")
        if kind == "warehouse_table" and ("query" in raw) == ("from_table" in raw):
            issues.add("SEG062", f"source {name!r}: a warehouse_table source needs exactly one of 'query' and "
                       "'from_table'", item.loc(), "name the table to copy, or write the SELECT that reads it")
        if kind == "warehouse_table" and raw.get("from_table") == raw["table"]:
            issues.add("SEG066", f"source {name!r} reads the table it loads ({raw['table']!r})",
                       item.loc("from_table"), "read the raw or staging table the data arrives in")
        incremental = raw.get("incremental")
        if incremental is not None and kind == "file":
            issues.add("SEG062", f"source {name!r}: 'incremental' does not apply to a file source",
                       item.loc("incremental"), "file sources reload their files idempotently; remove it")
        elif incremental is not None and kind == "warehouse_table" and "param" in incremental:
            issues.add("SEG062", f"source {name!r}: incremental 'param' applies to rest_api sources only",
                       item.loc("incremental", "param"), "remove it; the watermark filters the query itself")
        elif incremental is not None and kind == "rest_api" and "param" not in incremental:
            issues.add("SEG065", f"source {name!r}: incremental REST source without 'param'",
                       item.loc("incremental"), "name the query parameter that sends the watermark, "
                       "e.g. 'param: updated_since'")
        if kind == "rest_api":
            url = raw["url"]
            absolute = url.startswith(("http://", "https://"))
            if "://" in url and not absolute:
                issues.add("SEG065", f"source {name!r}: url {url!r} is not an http(s) URL", item.loc("url"),
                           "use http:// or https://, or a path under the connection's base URL")
            elif not absolute and "connection_id" not in raw:
                issues.add("SEG065", f"source {name!r}: url {url!r} is relative but the source names no connection",
                           item.loc("url"), "set connection_id (its host is the base URL), or write an absolute URL")
            pagination = raw.get("pagination", {"style": "none"})
            style = pagination["style"]
            for key in pagination:
                if key != "style" and key not in _PAGINATION_STYLE_KEYS[style]:
                    issues.add("SEG065", f"source {name!r}: {key!r} does not apply to {style} pagination",
                               item.loc("pagination", key), "remove it")
            if style == "offset" and "page_size" not in pagination:
                issues.add("SEG065", f"source {name!r}: offset pagination needs a page_size",
                           item.loc("pagination"), "add 'page_size: 100' (the offset advances by it)")
        mode = raw.get("mode", "upsert" if role == "customer" else "append")
        key = tuple(raw.get("key", (model.customer.key,) if role == "customer" else ()))
        if role == "customer" and mode == "append":
            issues.add("SEG063", f"source {name!r}: the customer table cannot be loaded in append mode",
                       item.loc("mode"), "use upsert (one row per customer, by its key) or replace")
        elif mode == "upsert" and not key:
            issues.add("SEG063", f"source {name!r}: upsert into {raw['table']!r} needs a 'key'", item.loc(),
                       "name the columns that identify a row, e.g. 'key: [order_id]', or use mode: append")
        elif mode != "upsert" and "key" in raw:
            issues.add("SEG063", f"source {name!r}: 'key' applies to upsert mode only", item.loc("key"),
                       "remove it, or use mode: upsert")
        if role == "customer" and mode == "upsert" and key != (model.customer.key,):
            issues.add("SEG064", f"source {name!r}: the customer table is upserted by the model's key "
                       f"{model.customer.key!r}, not by {list(key)}", item.loc("key"),
                       f"write 'key: [{model.customer.key}]' or leave 'key' out")
        if len(issues.items) == before and role is not None:
            pagination = raw.get("pagination", {"style": "none"})
            out[name] = Source(
                name=name, table=raw["table"], kind=kind, mode=mode, key=key if mode == "upsert" else (),
                format=raw.get("format"), path=raw.get("path"), delimiter=raw.get("delimiter"),
                query=raw.get("query"), from_table=raw.get("from_table"), url=raw.get("url"),
                connection_id=raw.get("connection_id"), records=raw.get("records", ""),
                params=dict(raw.get("params", {})), pagination=Pagination(**pagination),
                incremental=Incremental(**incremental) if incremental else None,
                description=raw.get("description", ""), loc=item.loc())
    for table, loaders in by_table.items():
        replacing = [item for item in loaders if item.data.get("mode") == "replace"]
        if replacing and len(loaders) > 1:
            others = ", ".join(repr(item.data["name"]) for item in loaders if item is not replacing[0])
            issues.add("SEG067", f"source {replacing[0].data['name']!r} replaces table {table!r}, which source(s) "
                       f"{others} also load", replacing[0].loc("mode"),
                       "a replace load deletes the other sources' rows; use upsert or append, or one source")
    return out


def _syncs(items: list[_Item], segments: dict[str, _Item], destinations: dict[str, Destination],
           declared_destinations: set[str], unusable: _Unusable, issues: _Issues) -> list[tuple[Sync, _Item]]:
    """Valid syncs; ``destinations`` holds the valid ones, ``declared_destinations`` every declared name.

    A sync of a segment or to a destination that is declared but invalid is dropped silently: the
    invalid definition is reported where it is, not once more per sync.
    """
    out: list[tuple[Sync, _Item]] = []
    seen: dict[tuple[str, str | None, str], _Item] = {}
    for item in items:
        raw, ok = item.data, True
        if raw["segment"] not in segments:
            if not unusable.may_declare("segments", raw["segment"]):
                issues.add("SEG042", f"sync of unknown segment {raw['segment']!r}", item.loc("segment"),
                           _did_you_mean(raw["segment"], segments, "segments"))
            ok = False
        if raw["destination"] not in destinations:
            if raw["destination"] not in declared_destinations and not unusable.may_declare(
                    "destinations", raw["destination"]):
                issues.add("SEG042", f"sync to unknown destination {raw['destination']!r}", item.loc("destination"),
                           _did_you_mean(raw["destination"], declared_destinations, "destinations"))
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


def _priority_groups(items: dict[str, _Item], segments: dict[str, _Item], unusable: _Unusable,
                     issues: _Issues) -> dict[str, tuple[str, tuple[str, ...]]]:
    """``segment -> (group, higher-priority segments)`` for every grouped segment."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for name, item in items.items():
        members = item.data["segments"]
        for index, segment in enumerate(members):
            if segment not in segments and unusable.may_declare("segments", segment):
                continue  # possibly declared in a file already reported as unusable
            if segment not in segments:
                issues.add("SEG029", f"priority group {name!r} lists unknown segment {segment!r}",
                           item.loc("segments", index), _did_you_mean(segment, segments, "segments"))
            elif segment in out:
                issues.add("SEG029", f"segment {segment!r} is in two priority groups ({out[segment][0]!r} and "
                           f"{name!r})", item.loc("segments", index), "a segment may belong to one group only")
            else:
                out[segment] = (name, tuple(s for s in members[:index] if s in segments))
    return out


def _suppression_channels(segments: dict[str, _Item], syncs: list[tuple[Sync, _Item]],
                          destinations: dict[str, Destination], model: DataModel,
                          issues: _Issues) -> dict[str, set[str]]:
    channels: dict[str, set[str]] = {name: set(item.data.get("channels", [])) for name, item in segments.items()}
    for sync, _ in syncs:
        channels[sync.segment].add(destinations[sync.destination].channel)
    known = model.consent.channels if model.consent else {}
    for name, item in segments.items():
        for index, channel in enumerate(item.data.get("channels", [])):
            if channel not in known:
                issues.add("SEG045", f"segment {name!r}: channel {channel!r} is not a consent channel",
                           item.loc("channels", index), _did_you_mean(channel, known, "consent channels"))
    return channels


def _split(item: _Item, issues: _Issues) -> Split | None:
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


def _check_cycles(segments: dict[str, Segment], items: dict[str, _Item], issues: _Issues) -> None:
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

"""Rule trees from the rules written in segment files (SEG021-SEG027, SEG048).

The schema has already checked each rule's shape; the builder resolves its names against the
data model and the declared segments, and types its values (:mod:`.predicates`). The hybrid
model parses spoke segments' rules with the same builder (:func:`.hybrid.parse_hybrid`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.project.durations import parse_duration
from airflow_segprovider.core.project.items import UnusableFiles, did_you_mean
from airflow_segprovider.core.project.predicates import OperatorError, parse_predicate
from airflow_segprovider.core.project.rules import (
    NUMERIC_AGGREGATES,
    RELATIVE_OPS,
    TIME_AGGREGATES,
    AllOf,
    AnyOf,
    AttributeCondition,
    Condition,
    EventCondition,
    Not,
    Predicate,
    PropertyFilter,
    SegmentCondition,
)

if TYPE_CHECKING:
    from airflow_segprovider.core.errors import Location
    from airflow_segprovider.core.project.items import IssueList, ProjectItem
    from airflow_segprovider.core.project.spec import DataModel
    from airflow_segprovider.core.project.yaml_source import DocPath


class RuleBuilder:
    """Turns the schema-valid rules of segments into rule trees, collecting every semantic issue.

    :param issues: where every problem is reported.
    :param unusable: what files already reported as unusable may declare (a reference to it is not reported).
    """

    def __init__(self, issues: IssueList, unusable: UnusableFiles | None = None) -> None:
        self.issues = issues
        self.unusable = unusable or UnusableFiles()

    def condition(self, item: ProjectItem, path: DocPath, model: DataModel, segments: set[str]) -> Condition | None:
        """The rule at ``path`` of ``item`` as a typed tree, or None when it has a problem (reported).

        :param model: the data model its attributes and events are resolved against.
        :param segments: every declared segment name (a reference may name any of them).
        """
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
                                did_you_mean(name, segments, "segments"))
                return None
            return SegmentCondition(name, raw.get("op", "in") == "not_in", loc)
        if "attribute" in raw:
            name = raw["attribute"]
            attribute = model.customer.attributes.get(name)
            if attribute is None:
                self.issues.add("SEG021", f"unknown attribute {name!r}", item.loc(*path, "attribute"),
                                did_you_mean(name, model.customer.attributes, "customer attributes"))
                return None
            predicate = self._predicate(item, path, attribute.type, f"attribute {name!r}")
            return None if predicate is None else AttributeCondition(name, predicate, loc)
        return self._event(item, path, raw, model, loc)

    def _event(self, item: ProjectItem, path: DocPath, raw: dict, model: DataModel, loc: Location) -> Condition | None:
        name, aggregate = raw["event"], raw["aggregate"]
        source = model.events.get(name)
        if source is None:
            self.issues.add("SEG022", f"unknown event {name!r}", item.loc(*path, "event"),
                            did_you_mean(name, model.events, "event types and order tables"))
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
                                did_you_mean(prop, source.properties, f"properties of {name!r}"))
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
                                did_you_mean(flt["property"], source.properties, f"properties of {name!r}"))
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

    def _predicate(self, item: ProjectItem, path: DocPath, value_type: str, subject: str) -> Predicate | None:
        raw = _get(item.data, path)
        try:
            return parse_predicate(value_type, raw["op"], raw.get("value"), "value" in raw)
        except OperatorError as exc:
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


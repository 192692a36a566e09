"""The hybrid (hub-and-spoke) model in the segments project: the attribute hub and spoke-side segments.

``hub:`` declares the canonical profile the hub builds from the ingested tables (customer
attributes, aggregates of events, the latest consent of a channel) and which destination
field each attribute is pushed to. ``spoke_segments:`` declares rules a spoke evaluates
itself, over the attributes pushed to it (a Mailchimp saved segment, a HubSpot DYNAMIC
list); the hub evaluates the same rule centrally to measure drift.

Problems are reported where they are written, with codes SEG080-SEG086:

======  ==========================================================================
SEG080  a hub attribute names an unknown attribute, event, property or channel
SEG081  a push names an unknown destination or maps a field to an unknown hub attribute
SEG082  a spoke rule uses what a spoke cannot evaluate (events, segments, ``not``, nesting)
SEG083  a spoke rule reads an attribute not pushed to its destination, or an operator it lacks
SEG084  a spoke segment's destination is unknown or receives no attribute push
SEG085  the destination kind has no rule-based segments (only Mailchimp and HubSpot do)
SEG086  ``max_source_age`` is not a duration
======  ==========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.errors import Location
from airflow_segprovider.core.project.durations import parse_duration
from airflow_segprovider.core.project.rules import AllOf, AnyOf, AttributeCondition
from airflow_segprovider.core.project.spec import Attribute, CustomerEntity, DataModel
from airflow_segprovider.core.state.hybrid import HUB_PROFILES

if TYPE_CHECKING:
    from airflow_segprovider.core.project.builder import RuleBuilder
    from airflow_segprovider.core.project.items import IssueList, ProjectItem
    from airflow_segprovider.core.project.rules import Condition
    from airflow_segprovider.core.project.spec import Destination

DEFAULT_HUB_TABLE = HUB_PROFILES
DEFAULT_DRIFT_TOLERANCE = 0.01
#: Destination kinds whose API evaluates rule-based segments on stored attributes.
SPOKE_KINDS = ("mailchimp", "hubspot")
#: Operators each spoke evaluates, per attribute type: Mailchimp merge-field conditions (TextMerge for
#: text and number fields: is, not, contains, starts, greater, less, blank, blank_not; DateMerge: is,
#: not, greater, less, blank, blank_not) and HubSpot list filters (NUMBER, STRING, BOOL, TIME_POINT
#: and ALL_PROPERTY operations).
SPOKE_OPERATORS: dict[str, dict[str, frozenset[str]]] = {
    "mailchimp": {
        "string": frozenset({"eq", "ne", "contains", "starts_with", "is_null", "is_not_null"}),
        "number": frozenset({"eq", "ne", "gt", "lt", "is_null", "is_not_null"}),
        "date": frozenset({"eq", "ne", "gt", "lt", "is_null", "is_not_null"}),
        "timestamp": frozenset(),
        "boolean": frozenset({"eq", "ne"}),
    },
    "hubspot": {
        "string": frozenset({"eq", "ne", "contains", "starts_with", "is_null", "is_not_null"}),
        "number": frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "is_null", "is_not_null"}),
        "date": frozenset({"gt", "lt", "is_null", "is_not_null"}),
        "timestamp": frozenset({"gt", "lt", "is_null", "is_not_null"}),
        "boolean": frozenset({"eq", "ne", "is_null", "is_not_null"}),
    },
}


@dataclass(frozen=True)
class HubAttribute:
    """One attribute of the hub's profile.

    Exactly one origin applies: ``column`` (a column of the customer table), ``event`` with
    ``aggregate`` (and ``property`` for sums and averages), or ``consent_channel``.

    :param name: the attribute's name in the hub (a column of the profile table).
    :param type: its value type.
    :param source_table: the model table it is read from (its sources' loads date its freshness).
    """

    name: str
    type: str
    source_table: str
    column: str | None = None
    event: str | None = None
    aggregate: str | None = None
    property: str | None = None
    consent_channel: str | None = None
    description: str = ""


@dataclass(frozen=True)
class AttributePush:
    """Which hub attributes go to which fields of one destination.

    :param fields: destination field (Mailchimp merge tag, HubSpot property) -> hub attribute.
    """

    destination: str
    fields: dict[str, str]
    loc: Location = field(compare=False, default=Location(""))

    @property
    def sync_id(self) -> str:
        """The key of this push's acknowledged state (row hashes) in ``segprovider_sync_state``."""
        return push_sync_id(self.destination)


def push_sync_id(destination: str) -> str:
    """``hub__<destination>``: the sync id of the hub's push to ``destination``."""
    return f"hub__{destination}"


@dataclass(frozen=True)
class Hub:
    table: str
    attributes: dict[str, HubAttribute]
    push: dict[str, AttributePush]
    max_source_age: timedelta | None = None
    description: str = ""


@dataclass(frozen=True)
class SpokeSegment:
    """A rule a spoke evaluates itself on the attributes pushed to it.

    :param rule: one attribute condition, or ``all``/``any`` of them, over hub attribute names.
    :param drift_tolerance: largest accepted relative difference between the spoke's count and the hub's.
    :param target: where the segment lives in the spoke (``segment_name`` / ``list_name``).
    """

    name: str
    destination: str
    rule: Condition
    drift_tolerance: float = DEFAULT_DRIFT_TOLERANCE
    target: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    loc: Location = field(compare=False, default=Location(""))

    @property
    def spoke_name(self) -> str:
        return str(self.target.get("segment_name") or self.target.get("list_name") or self.name)

    def conditions(self) -> tuple[str, tuple[AttributeCondition, ...]]:
        """The rule as Mailchimp and HubSpot hold it: a match (``all``/``any``) and flat conditions."""
        if isinstance(self.rule, AttributeCondition):
            return "all", (self.rule,)
        assert isinstance(self.rule, (AllOf, AnyOf))
        return ("all" if isinstance(self.rule, AllOf) else "any"), tuple(self.rule.children)  # type: ignore[arg-type]


def parse_hybrid(builder: RuleBuilder, hub_item: ProjectItem | None, spoke_items: dict[str, ProjectItem],
                 model: DataModel, destinations: dict[str, Destination], declared_destinations: set[str] | None = None,
                 ) -> tuple[Hub | None, dict[str, SpokeSegment]]:
    """The hub and spoke segments of a project, every problem reported on ``builder.issues``.

    :param builder: the project loader's rule builder (its ``issues``, ``unusable`` and ``condition``).
    :param hub_item: the ``hub:`` section, or None.
    :param spoke_items: the ``spoke_segments:`` entries by name.
    :param destinations: the valid destinations.
    :param declared_destinations: every destination name declared, valid or not: a push to a
        destination already reported as invalid (or declared in a file that could not be used)
        is not reported again.
    """
    issues = builder.issues
    declared = set(declared_destinations or ()) | set(destinations)
    unusable = getattr(builder, "unusable", None)

    def reported_elsewhere(name: str) -> bool:
        return name not in destinations and (
            name in declared or (unusable is not None and unusable.may_declare("destinations", name)))
    if hub_item is None:
        for item in spoke_items.values():
            issues.add("SEG084", f"spoke segment {item.data['name']!r} needs a hub: no 'hub:' section pushes "
                       "attributes to any destination", item.loc("destination"),
                       "declare 'hub:' with the attributes and a 'push:' to this destination")
        return None, {}
    raw = hub_item.data
    attributes: dict[str, HubAttribute] = {}
    customer = model.customer
    for name, spec in raw["attributes"].items():
        attribute = _hub_attribute(name, spec or {}, model, hub_item, issues)
        if attribute is not None:
            attributes[name] = attribute
    max_age = None
    if "max_source_age" in raw:
        try:
            max_age = parse_duration(raw["max_source_age"])
        except ValueError as exc:
            issues.add("SEG086", str(exc), hub_item.loc("max_source_age"))
    pushes: dict[str, AttributePush] = {}
    for index, push in enumerate(raw.get("push", [])):
        name = push["destination"]
        loc = hub_item.loc("push", index)
        if reported_elsewhere(name):
            continue
        if name not in destinations:
            issues.add("SEG081", f"push to unknown destination {name!r}", hub_item.loc("push", index, "destination"),
                       f"destinations: {', '.join(sorted(destinations)) or 'none declared'}")
            continue
        if name in pushes:
            issues.add("SEG081", f"attributes are pushed to {name!r} twice", loc, "merge the two 'fields' mappings")
            continue
        bad = [attr for attr in push["fields"].values() if attr not in raw["attributes"]]
        for field_name, attr in push["fields"].items():
            if attr in bad:
                issues.add("SEG081", f"push to {name!r}: field {field_name!r} maps unknown hub attribute {attr!r}",
                           hub_item.loc("push", index, "fields", field_name),
                           f"hub attributes: {', '.join(sorted(raw['attributes']))}")
        identity = destinations[name].identity
        if identity not in attributes and identity in customer.attributes:
            # the identity is always carried: it is how the spoke finds the contact
            attributes[identity] = HubAttribute(identity, customer.attributes[identity].type, customer.table,
                                                column=customer.attributes[identity].column)
        if not bad:
            pushes[name] = AttributePush(name, dict(push["fields"]), loc)
    hub = Hub(raw.get("table", DEFAULT_HUB_TABLE), attributes, pushes, max_age, raw.get("description", ""))

    spokes: dict[str, SpokeSegment] = {}
    for name, item in spoke_items.items():
        if reported_elsewhere(item.data["destination"]):
            continue
        if item.data["destination"] not in hub.push and item.data["destination"] in {
                p["destination"] for p in raw.get("push", [])}:
            continue  # its push is invalid and already reported
        spoke = _spoke_segment(builder, item, hub, destinations)
        if spoke is not None:
            spokes[name] = spoke
    return hub, spokes


def _hub_attribute(name: str, spec: dict[str, Any], model: DataModel, item: ProjectItem,
                   issues: IssueList) -> HubAttribute | None:
    customer = model.customer
    loc = item.loc("attributes", name)
    origins = [key for key in ("attribute", "event", "consent") if key in spec]
    if len(origins) > 1:
        issues.add("SEG080", f"hub attribute {name!r} names more than one origin ({', '.join(origins)})", loc,
                   "give one of 'attribute', 'event' (with 'aggregate') or 'consent'")
        return None
    if "consent" in spec:
        channel = spec["consent"]
        if model.consent is None or channel not in model.consent.channels:
            channels = sorted(model.consent.channels) if model.consent else []
            issues.add("SEG080", f"hub attribute {name!r}: {channel!r} is not a consent channel of the model",
                       item.loc("attributes", name, "consent"),
                       f"consent channels: {', '.join(channels)}" if channels else "declare 'consent:' in the model")
            return None
        return HubAttribute(name, "boolean", model.consent.table, consent_channel=channel,
                            description=spec.get("description", ""))
    if "event" in spec:
        event = model.events.get(spec["event"])
        if event is None:
            issues.add("SEG080", f"hub attribute {name!r}: unknown event {spec['event']!r}",
                       item.loc("attributes", name, "event"), f"events: {', '.join(sorted(model.events))}")
            return None
        aggregate = spec.get("aggregate")
        if aggregate is None:
            issues.add("SEG080", f"hub attribute {name!r}: an event attribute needs an 'aggregate'", loc,
                       "e.g. aggregate: last (the date of the latest event) or sum with a property")
            return None
        prop = spec.get("property")
        if aggregate in ("sum", "avg", "min", "max"):
            if prop is None or event.properties.get(prop) != "number":
                issues.add("SEG080", f"hub attribute {name!r}: aggregate {aggregate!r} needs a number property of "
                           f"{event.name!r}", item.loc("attributes", name, "property" if prop else "aggregate"),
                           f"number properties: {', '.join(p for p, t in event.properties.items() if t == 'number')}")
                return None
            value_type = "number"
        elif aggregate == "count":
            value_type = "number"
        else:  # first / last: when it happened
            value_type = spec.get("type", "timestamp")
            if value_type not in ("date", "timestamp"):
                issues.add("SEG080", f"hub attribute {name!r}: aggregate {aggregate!r} is a date or timestamp, "
                           f"not {value_type!r}", item.loc("attributes", name, "type"), "use type: date or timestamp")
                return None
        return HubAttribute(name, value_type, event.table, event=event.name, aggregate=aggregate, property=prop,
                            description=spec.get("description", ""))
    source_name = spec.get("attribute", name)
    attribute: Attribute | None = customer.attributes.get(source_name)
    if attribute is None:
        issues.add("SEG080", f"hub attribute {name!r}: {source_name!r} is not a customer attribute",
                   item.loc("attributes", name, "attribute") if "attribute" in spec else loc,
                   f"customer attributes: {', '.join(sorted(customer.attributes))}; or derive it with 'event' "
                   "and 'aggregate', or 'consent'")
        return None
    if "type" in spec and spec["type"] != attribute.type:
        issues.add("SEG080", f"hub attribute {name!r} is declared {spec['type']!r} but customer attribute "
                   f"{source_name!r} is {attribute.type!r}", item.loc("attributes", name, "type"),
                   "drop 'type' (it is taken from the model) or fix the model")
        return None
    return HubAttribute(name, attribute.type, customer.table, column=attribute.column,
                        description=spec.get("description", "") or attribute.description)


def _spoke_segment(builder: RuleBuilder, item: ProjectItem, hub: Hub,
                   destinations: dict[str, Destination]) -> SpokeSegment | None:
    issues = builder.issues
    raw = item.data
    name, destination = raw["name"], raw["destination"]
    if destination not in destinations:
        issues.add("SEG084", f"spoke segment {name!r}: unknown destination {destination!r}", item.loc("destination"),
                   f"destinations: {', '.join(sorted(destinations))}")
        return None
    kind = destinations[destination].kind
    if kind not in SPOKE_KINDS:
        issues.add("SEG085", f"spoke segment {name!r}: a {kind} destination has no rule-based segments",
                   item.loc("destination"), "spoke segments live in Mailchimp (saved segments) or HubSpot "
                   "(DYNAMIC lists); sync a central segment to this destination instead")
        return None
    push = hub.push.get(destination)
    if push is None:
        issues.add("SEG084", f"spoke segment {name!r}: the hub pushes no attributes to {destination!r}",
                   item.loc("destination"), f"add a 'push:' entry for {destination!r} under 'hub:'")
        return None
    rule = raw["rule"]
    shape_ok = True
    if "attribute" not in rule:
        key = "all" if "all" in rule else "any" if "any" in rule else None
        if key is None:
            shape_ok = False
        else:
            for index, child in enumerate(rule[key]):
                if "attribute" not in child:
                    issues.add("SEG082", f"spoke segment {name!r}: a spoke evaluates only conditions on pushed "
                               "attributes", item.loc("rule", key, index),
                               "write 'all:' or 'any:' of attribute conditions; events, segment references, "
                               "'not' and nesting are evaluated centrally (sync a central segment instead)")
                    return None
    if not shape_ok:
        issues.add("SEG082", f"spoke segment {name!r}: a spoke evaluates only conditions on pushed attributes",
                   item.loc("rule"), "write one attribute condition, or 'all:'/'any:' of attribute conditions")
        return None
    # the rule is parsed against the hub's attributes, as if they were the customer's
    hub_model = DataModel(CustomerEntity(hub.table, "customer_key", {
        attr.name: Attribute(attr.name, attr.type, attr.name) for attr in hub.attributes.values()}), {}, None)
    condition = builder.condition(item, ("rule",), hub_model, set())
    if condition is None:
        return None
    pushed = set(push.fields.values())
    ok = True
    for node in (condition.children if isinstance(condition, (AllOf, AnyOf)) else (condition,)):
        assert isinstance(node, AttributeCondition)
        if node.attribute not in pushed:
            issues.add("SEG083", f"spoke segment {name!r}: attribute {node.attribute!r} is not pushed to "
                       f"{destination!r}, so the spoke cannot evaluate it", node.loc,
                       f"add a field for {node.attribute!r} to the push to {destination!r}")
            ok = False
            continue
        value_type = hub.attributes[node.attribute].type
        allowed = SPOKE_OPERATORS[kind][value_type]
        if node.predicate.op not in allowed:
            issues.add("SEG083", f"spoke segment {name!r}: {kind} cannot evaluate op {node.predicate.op!r} on a "
                       f"{value_type} attribute", node.loc,
                       f"operators {kind} evaluates on {value_type}: {', '.join(sorted(allowed)) or 'none'}")
            ok = False
    if not ok:
        return None
    return SpokeSegment(name, destination, condition, float(raw.get("drift_tolerance", DEFAULT_DRIFT_TOLERANCE)),
                        dict(raw.get("target", {})), raw.get("description", ""), item.loc())

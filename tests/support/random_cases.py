"""Random projects and data for the differential tests (engine vs reference, warehouse vs warehouse).

Hypothesis strategies: rules nested a few levels deep over every operator of every type, event
aggregates with windows and filters, segment references, consent channels, priority groups, splits;
small tables full of nulls, timestamps sitting exactly on window bounds, events after ``as_of``,
customers without events and consent histories with ties.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from airflow_segprovider.core.project.durations import parse_duration
from airflow_segprovider.core.project.rules import OPERATORS_BY_TYPE
from support.engine_harness import DESTINATIONS, MODEL, write_project

US = dt.timedelta(microseconds=1)
DAY_US = 86_400 * 10**6

AS_OFS = [
    dt.datetime(2026, 3, 15, 12, 0),
    dt.datetime(2026, 3, 15, 0, 0),  # midnight: date bounds of hour windows fall on the previous day
    dt.datetime(2025, 12, 31, 23, 59, 59, 999_999),
    dt.datetime(2024, 2, 29, 0, 30),
]
DURATIONS = ["1m", "90m", "1h", "12h", "1d", "2d", "7d", "30d", "2w", "365d"]
DURATION_DELTAS = [parse_duration(d) for d in DURATIONS]

STRINGS = ["", "a", "ab", "abc", "b", "B", "ba", "x.y", "xay", "a%c", "a_c", "it's", "héllo", " a", "Zed", "ab\n"]
SUBSTRINGS = ["", "a", "b", "B", "ab", "%", "_", "a%", "a_", "'", "é", "x.", " "]
REGEXES = ["^a", "b$", "a.c", "^$", "[ab]+", r"x\.y", "é", "A|b", "^.{2}$", r"\s", "'", "%", "_",
           "^(ab|ba)$", "c", "^[^a]", "(?:a|b){2}", "^a?b", "[a-c]{2,3}$", "b.$", r"\$|%"]
NUMBERS = [-3, -1.5, 0, 0.25, 1, 2, 2.5, 10, 1_000_000]  # exact in binary: sums and averages agree

SEGMENT_NAMES = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"]
CHANNELS = ["email", "sms", "ads"]
SPLITS = [[50, 50], [90, 10], [33.33, 33.33, 33.34], [0.01, 99.99], [12.34, 87.66], [20.05, 45.45, 34.5]]

ATTRIBUTES = {name: spec["type"] for name, spec in MODEL["customer"]["attributes"].items()}
EVENT_TABLE_OF = {name: table for table, spec in MODEL["event_tables"].items() for name in spec["event_types"]}
PROPERTIES = {
    **{name: MODEL["event_tables"][table]["properties"] for name, table in EVENT_TABLE_OF.items()},
    **{name: spec["properties"] for name, spec in MODEL["order_tables"].items()},
}
NUMBER_PROPERTY = {name: next(p for p, t in props.items() if t == "number") for name, props in PROPERTIES.items()}


# --- values ------------------------------------------------------------------------------------


def timestamps(as_of: dt.datetime, focus: tuple[dt.timedelta, ...] = ()) -> st.SearchStrategy[dt.datetime]:
    """Anywhere in the last 400 days or just after ``as_of``, often exactly on a window bound.

    :param focus: windows the project uses; their bounds (and one microsecond either side) are drawn most often.
    """
    bounds = sorted({as_of - d + e for d in DURATION_DELTAS for e in (-US, dt.timedelta(0), US)}
                    | {as_of - US, as_of, as_of + US, as_of + dt.timedelta(days=1)})
    choices = [
        st.sampled_from(bounds),
        st.integers(-400 * DAY_US, 3 * DAY_US).map(lambda us: as_of + dt.timedelta(microseconds=us)),
        st.integers(-400 * 24, 3 * 24).map(lambda hours: as_of.replace(minute=0, second=0, microsecond=0)
                                           + dt.timedelta(hours=hours)),
    ]
    if focus:
        on_focus = st.sampled_from(sorted({as_of - d + e for d in focus for e in (-US, dt.timedelta(0), US)}))
        choices += [on_focus, on_focus]
    return st.one_of(choices)


def dates(as_of: dt.datetime, focus: tuple[dt.timedelta, ...] = ()) -> st.SearchStrategy[dt.date]:
    """Calendar dates around ``as_of``, including those of every window's lower bound and their neighbours."""
    pool = {as_of.date() + dt.timedelta(days=k) for k in (-800, -400, -31, -8, -1, 0, 1, 2)}
    pool |= {(as_of - d).date() + dt.timedelta(days=k) for d in DURATION_DELTAS for k in (-1, 0, 1)}
    if not focus:
        return st.sampled_from(sorted(pool))
    on_focus = sorted({(as_of - d).date() + dt.timedelta(days=k) for d in focus for k in (-1, 0, 1)})
    return st.one_of(st.sampled_from(sorted(pool)), st.sampled_from(on_focus))


def scalars(value_type: str, as_of: dt.datetime, focus: tuple[dt.timedelta, ...] = ()) -> st.SearchStrategy[Any]:
    if value_type == "string":
        return st.sampled_from(STRINGS)
    if value_type == "number":
        return st.sampled_from(NUMBERS)
    if value_type == "boolean":
        return st.booleans()
    if value_type == "date":
        return dates(as_of, focus)
    return timestamps(as_of, focus)


def windows_of(documents: Any) -> tuple[dt.timedelta, ...]:
    """Every duration a project's rules use (``within`` and relative-time values)."""
    found: set[dt.timedelta] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "within" in node:
                found.add(parse_duration(node["within"]))
            if node.get("op") in ("within_last", "more_than_ago"):
                found.add(parse_duration(node["value"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(documents)
    return tuple(sorted(found))


def nullable(strategy: st.SearchStrategy[Any], null_one_in: int = 4) -> st.SearchStrategy[Any]:
    return st.tuples(st.integers(1, null_one_in), strategy).map(lambda pair: None if pair[0] == 1 else pair[1])


@st.composite
def yaml_scalar(draw: st.DrawFn, value_type: str, value: Any) -> Any:
    """``value`` as written in a project file; timestamps with no offset, ``Z`` or ``+02:00``."""
    if value_type == "date":
        return value.isoformat()
    if value_type == "timestamp":
        form = draw(st.sampled_from(["naive", "z", "plus2"]))
        if form == "plus2":
            return (value + dt.timedelta(hours=2)).isoformat() + "+02:00"
        return value.isoformat() + ("Z" if form == "z" else "")
    return value


# --- rules -------------------------------------------------------------------------------------


@st.composite
def predicates(draw: st.DrawFn, value_type: str, as_of: dt.datetime, *, counting: bool = False) -> dict[str, Any]:
    """``{op, value}`` for any operator valid on ``value_type``."""
    ops = sorted(OPERATORS_BY_TYPE[value_type])
    if "within_last" in ops:  # relative time is where dates and timestamps differ most: draw it often
        ops += ["within_last", "more_than_ago"] * 3
    op = draw(st.sampled_from(ops))
    values = st.one_of(st.integers(0, 3), scalars(value_type, as_of)) if counting else scalars(value_type, as_of)
    if op in ("is_null", "is_not_null"):
        return {"op": op}
    if op in ("within_last", "more_than_ago"):
        return {"op": op, "value": draw(st.sampled_from(DURATIONS))}
    if op in ("contains", "starts_with"):
        return {"op": op, "value": draw(st.sampled_from(SUBSTRINGS))}
    if op == "matches":
        return {"op": op, "value": draw(st.sampled_from(REGEXES))}
    if op in ("in", "not_in"):
        items = draw(st.lists(values, min_size=1, max_size=3))
        return {"op": op, "value": [draw(yaml_scalar(value_type, item)) for item in items]}
    if op == "between":
        low, high = sorted([draw(values), draw(values)])
        return {"op": op, "value": [draw(yaml_scalar(value_type, low)), draw(yaml_scalar(value_type, high))]}
    return {"op": op, "value": draw(yaml_scalar(value_type, draw(values)))}


@st.composite
def event_conditions(draw: st.DrawFn, as_of: dt.datetime) -> dict[str, Any]:
    source = draw(st.sampled_from(sorted(PROPERTIES)))
    aggregate = draw(st.sampled_from(["count", "sum", "min", "max", "avg", "first", "last"]))
    node: dict[str, Any] = {"event": source, "aggregate": aggregate}
    if aggregate in ("sum", "min", "max", "avg"):
        node["property"] = NUMBER_PROPERTY[source]
    if draw(st.booleans()):
        node["within"] = draw(st.sampled_from(DURATIONS))
    filters = []
    for prop in draw(st.lists(st.sampled_from(sorted(PROPERTIES[source])), max_size=2)):
        filters.append({"property": prop, **draw(predicates(PROPERTIES[source][prop], as_of))})
    if filters:
        node["where"] = filters
    result_type = "timestamp" if aggregate in ("first", "last") else "number"
    node.update(draw(predicates(result_type, as_of, counting=aggregate == "count")))
    return node


@st.composite
def conditions(draw: st.DrawFn, as_of: dt.datetime, references: list[str], depth: int) -> dict[str, Any]:
    kinds = ["attribute", "attribute", "event", "event"]
    kinds += ["segment"] if references else []
    kinds += ["all", "any", "not"] if depth > 0 else []
    kind = draw(st.sampled_from(kinds))
    if kind == "attribute":
        attribute = draw(st.sampled_from(sorted(ATTRIBUTES)))
        return {"attribute": attribute, **draw(predicates(ATTRIBUTES[attribute], as_of))}
    if kind == "event":
        return draw(event_conditions(as_of))
    if kind == "segment":
        node: dict[str, Any] = {"segment": draw(st.sampled_from(references))}
        op = draw(st.sampled_from([None, "in", "not_in"]))
        return node if op is None else {**node, "op": op}
    if kind == "not":
        return {"not": draw(conditions(as_of, references, depth - 1))}
    return {kind: draw(st.lists(conditions(as_of, references, depth - 1), min_size=1, max_size=3))}


@st.composite
def projects(draw: st.DrawFn, as_of: dt.datetime, *, min_segments: int = 1, max_segments: int = 5,
             max_depth: int = 3) -> dict[str, Any]:
    """The YAML documents of a random project.

    Segments may reference only segments drawn before them, and priority groups list
    segments in that same order, so the dependency graph never has a cycle; the names
    are shuffled so that the order is not the alphabetical one.

    :param min_segments: at least this many segments (two or more make references and priority groups
        possible), ``max_segments`` at most; ``max_depth``: rules nest at most this deep.
    """
    names = draw(st.permutations(SEGMENT_NAMES))[: draw(st.integers(min_segments, max_segments))]
    segments = []
    for index, name in enumerate(names):
        rule = draw(conditions(as_of, names[:index], depth=draw(st.integers(0, max_depth))))
        segment: dict[str, Any] = {"name": name, "rule": rule}
        channels = draw(st.lists(st.sampled_from(CHANNELS), unique=True, max_size=2)) if draw(st.booleans()) else []
        if channels:
            segment["channels"] = channels
        if draw(st.integers(0, 3)) == 0:
            percents = draw(st.sampled_from(SPLITS))
            segment["split"] = {"salt": draw(st.sampled_from(["s", "spring-2026", "ünï", "a:b"])),
                                "arms": [{"name": f"arm{i}", "percent": p} for i, p in enumerate(percents)]}
        segments.append(segment)

    groups, free = [], list(range(len(names)))
    for group_index in range(draw(st.integers(0, 2))):
        members = sorted(draw(st.lists(st.sampled_from(free), unique=True, max_size=4))) if free else []
        if len(members) >= 2:
            groups.append({"name": f"group{group_index}", "segments": [names[i] for i in members]})
            free = [i for i in free if i not in members]

    syncs = []
    for segment in segments:
        chosen = draw(st.lists(st.sampled_from(DESTINATIONS), unique_by=lambda d: d["name"], max_size=2))
        for destination in chosen if draw(st.booleans()) else []:
            sync = {"segment": segment["name"], "destination": destination["name"], "mode": "mirror"}
            if "split" in segment and draw(st.booleans()):
                sync["arm"] = segment["split"]["arms"][0]["name"]
            syncs.append(sync)

    model = {**MODEL, "consent": {**MODEL["consent"], "channels": {
        "email": {"require_opt_in": draw(st.booleans())},
        "sms": draw(st.sampled_from([{}, {"require_opt_in": True}, {"require_opt_in": False}])),
        "ads": {"require_opt_in": draw(st.booleans())},
    }}}
    return {"model": model, "segments": segments, "priority_groups": groups,
            "destinations": DESTINATIONS, "syncs": syncs}


# --- data --------------------------------------------------------------------------------------


@st.composite
def rows(draw: st.DrawFn, max_rows: int, make: st.SearchStrategy[dict[str, Any]]) -> list[dict[str, Any]]:
    count = draw(st.integers(0, max_rows))
    return draw(st.lists(make, min_size=count, max_size=count))


@st.composite
def datasets(draw: st.DrawFn, as_of: dt.datetime, focus: tuple[dt.timedelta, ...] = (), *,
             key_pool: int = 60, max_customers: int = 40, max_events: int = 150, max_app_log: int = 50,
             max_orders: int = 100, max_answers: int = 3, max_stray: int = 10) -> dict[str, list[dict[str, Any]]]:
    """At most 40 customers and 300 events and orders; nulls everywhere; keys like ``c7``.

    :param focus: the project's windows, whose bounds timestamps and dates land on most often.
    :param key_pool: customer keys are drawn from ``c0`` .. ``c{key_pool - 1}`` (a small pool makes two
        datasets share customers); the ``max_*`` bound each table's rows (``max_answers``: consent
        answers per customer and channel, ``max_stray``: answers of unknown customers or channels).
    """
    keys = [f"c{i}" for i in draw(st.permutations(range(key_pool)))[: draw(st.integers(0, max_customers))]]
    customers = []
    for key in keys:
        row = {"customer_id": key}
        for attribute, spec in MODEL["customer"]["attributes"].items():
            row[spec.get("column", attribute)] = draw(nullable(scalars(spec["type"], as_of, focus)))
        customers.append(row)

    # Rows of customers not in the customer table, or with no key at all, must not matter.
    owner = nullable(st.sampled_from(keys + ["c99"]) if keys else st.just("c99"), null_one_in=20)
    when = nullable(timestamps(as_of, focus), null_one_in=20)
    events_spec = MODEL["event_tables"]["events"]["properties"]
    events = st.fixed_dictionaries({
        "customer_id": owner, "occurred_at": when,
        "event_type": st.sampled_from(["view", "click", "buy", "buy", "other", None]),
        **{prop: nullable(scalars(value_type, as_of, focus)) for prop, value_type in events_spec.items()},
    })
    app_log = st.fixed_dictionaries({
        "cid": owner, "ts": when, "kind": st.sampled_from(["app_open", "app_open", "app_close", None]),
        "screen": nullable(scalars("string", as_of)), "ms": nullable(scalars("number", as_of)),
    })
    orders = st.fixed_dictionaries({
        "customer_id": owner, "ordered_at": when,
        "amount": nullable(scalars("number", as_of)), "status": nullable(scalars("string", as_of)),
    })
    # Few distinct answer times, so that several answers of one channel often tie.
    answer_times = st.sampled_from([as_of - dt.timedelta(days=30), as_of - dt.timedelta(days=1), as_of,
                                    as_of + US, as_of - dt.timedelta(days=1, microseconds=1)])
    answer = st.fixed_dictionaries({
        "opted_in": nullable(st.booleans(), null_one_in=5), "updated_at": nullable(answer_times, null_one_in=20),
    })
    consents = [{"customer_id": key, "channel": channel, **item}
                for key in keys for channel in CHANNELS
                for item in draw(st.lists(answer, max_size=max_answers))]
    stray = st.fixed_dictionaries({
        "customer_id": owner, "channel": st.sampled_from(["email", "sms", "ads", "push", None]),
        "opted_in": nullable(st.booleans(), null_one_in=5), "updated_at": nullable(answer_times, null_one_in=20),
    })
    return {
        "customers": customers,
        "events": draw(rows(max_events, events)),
        "app_log": draw(rows(max_app_log, app_log)),
        "orders": draw(rows(max_orders, orders)),
        "consents": consents + draw(rows(max_stray, stray)),
    }


@st.composite
def as_of_inputs(draw: st.DrawFn) -> tuple[Any, dt.datetime]:
    """An ``as_of`` in one of the forms callers pass, and the UTC instant it means."""
    instant = draw(st.sampled_from(AS_OFS))
    form = draw(st.sampled_from(["datetime", "aware", "iso", "iso_z", "iso_plus2"]))
    plus2 = dt.timezone(dt.timedelta(hours=2))
    given_as = {
        "datetime": instant,
        "aware": instant.replace(tzinfo=dt.timezone.utc).astimezone(plus2),
        "iso": instant.isoformat(),
        "iso_z": instant.isoformat() + "Z",
        "iso_plus2": instant.replace(tzinfo=dt.timezone.utc).astimezone(plus2).isoformat(),
    }[form]
    return given_as, instant


# --- the property ------------------------------------------------------------------------------


def draw_random_case(data: st.DataObject) -> tuple[Any, dt.datetime, dict[str, Any], dict[str, list[dict[str, Any]]], Any]:
    """One random case: ``as_of`` (as given and as parsed), the project's documents, the data, the loaded project."""
    as_of_given, as_of = data.draw(as_of_inputs(), label="as_of")
    documents = data.draw(projects(as_of), label="project")
    tables = data.draw(datasets(as_of, windows_of(documents["segments"])), label="tables")
    with tempfile.TemporaryDirectory() as folder:
        project = write_project(Path(folder), documents["segments"], model=documents["model"],
                                priority_groups=documents["priority_groups"],
                                destinations=documents["destinations"], syncs=documents["syncs"])
    return as_of_given, as_of, documents, tables, project



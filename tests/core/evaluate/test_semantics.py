"""Named edge cases of the segments language, each evaluated by the SQL engine with exact member sets.

Every case is also run through the reference evaluator, so these tests pin down
the oracle the differential tests rely on as much as the engine.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from collections import Counter
from typing import TYPE_CHECKING, Any

import duckdb
import pytest

from airflow_segprovider.core.errors import EvaluationError, ProjectValidationError
from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.state.membership import BITS, MEMBERSHIPS, SNAPSHOTS, WORDS, MembershipStore
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from support.engine_harness import (
    COLUMN_TYPES,
    DESTINATIONS,
    MODEL,
    create_tables,
    engine_members,
    stored_arms,
    warehouse_with,
    write_project,
)
from support.membership import to_row_per_member_layout
from support.reference_evaluator import reference_members, split_arm, split_bucket

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_segprovider.core.project.spec import Project

AS_OF = dt.datetime(2026, 3, 15, 12, 0)
US = dt.timedelta(microseconds=1)
HALVES = {"salt": "exp-1", "arms": [{"name": "treatment", "percent": 50}, {"name": "holdout", "percent": 50}]}


def customer(key: str | int, **values: Any) -> dict[str, Any]:
    return {"customer_id": key, **values}


def event(key: str | None, at: dt.datetime | None, event_type: str | None = "buy", **properties: Any) -> dict[str, Any]:
    return {"customer_id": key, "occurred_at": at, "event_type": event_type, **properties}


def order(key: str | int, at: dt.datetime, amount: float | None = None, status: str | None = None) -> dict[str, Any]:
    return {"customer_id": key, "ordered_at": at, "amount": amount, "status": status}


def answer(key: str, channel: str, opted_in: bool | None, at: dt.datetime) -> dict[str, Any]:
    return {"customer_id": key, "channel": channel, "opted_in": opted_in, "updated_at": at}


def segments_of(rules: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": name, "rule": rule} for name, rule in rules.items()]


def assert_members(project: Project, tables: dict[str, list[dict]], expected: dict[str, set[str]], *,
                   as_of: dt.datetime | str = AS_OF, utc_as_of: dt.datetime = AS_OF,
                   column_types: dict[str, dict[str, str]] = COLUMN_TYPES) -> None:
    """The reference and the engine both give exactly ``expected`` (segments not named there are not checked)."""
    reference = {name: set(keys) for name, keys in reference_members(project, tables, utc_as_of).items()}
    assert {name: reference[name] for name in expected} == expected, "the reference evaluator is off"
    engine = engine_members(project, tables, as_of, column_types=column_types)
    assert {name: set(engine[name]) for name in expected} == expected


def check(tmp_path: Path, rules: dict[str, dict[str, Any]], tables: dict[str, list[dict]],
          expected: dict[str, set[str]], **kwargs: Any) -> None:
    assert_members(write_project(tmp_path / "project", segments_of(rules)), tables, expected, **kwargs)


# --- missing values ---------------------------------------------------------------------------

#: (attribute, op, value) that ``c_val`` satisfies; ``c_null`` has every attribute missing.
NULL_CASES = [
    ("name", "eq", "abc"), ("name", "ne", "x"), ("name", "in", ["abc", "x"]), ("name", "not_in", ["x"]),
    ("name", "lt", "b"), ("name", "lte", "abc"), ("name", "gt", "a"), ("name", "gte", "abc"),
    ("name", "between", ["a", "b"]), ("name", "contains", "b"), ("name", "starts_with", "ab"),
    ("name", "matches", "c$"),
    ("score", "eq", 5), ("score", "ne", 4), ("score", "in", [5, 6]), ("score", "not_in", [4]), ("score", "lt", 6),
    ("score", "lte", 5), ("score", "gt", 4), ("score", "gte", 5), ("score", "between", [0, 10]),
    ("active", "eq", True), ("active", "ne", False),
    ("birthday", "eq", "2026-03-10"), ("birthday", "ne", "2026-01-01"), ("birthday", "in", ["2026-03-10"]),
    ("birthday", "not_in", ["2026-01-01"]), ("birthday", "lt", "2026-03-11"), ("birthday", "lte", "2026-03-10"),
    ("birthday", "gt", "2026-03-09"), ("birthday", "gte", "2026-03-10"),
    ("birthday", "between", ["2026-03-01", "2026-03-31"]), ("birthday", "within_last", "30d"),
    ("birthday", "more_than_ago", "1d"),
    ("signup_at", "eq", "2026-03-14T12:00:00Z"), ("signup_at", "ne", "2020-01-01T00:00:00Z"),
    ("signup_at", "in", ["2026-03-14T12:00:00Z"]), ("signup_at", "not_in", ["2020-01-01T00:00:00Z"]),
    ("signup_at", "lt", "2026-03-15T00:00:00Z"), ("signup_at", "lte", "2026-03-14T12:00:00Z"),
    ("signup_at", "gt", "2026-03-14T00:00:00Z"), ("signup_at", "gte", "2026-03-14T12:00:00Z"),
    ("signup_at", "between", ["2026-03-14T00:00:00Z", "2026-03-15T00:00:00Z"]),
    ("signup_at", "within_last", "2d"), ("signup_at", "more_than_ago", "12h"),
]
NULL_ROWS = {"customers": [
    customer("c_val", name="abc", score=5, active=True, birthday=dt.date(2026, 3, 10),
             signup_at=dt.datetime(2026, 3, 14, 12)),
    customer("c_null"),
]}


def _case_name(case: tuple[str, str, Any]) -> str:
    return f"{case[0]}_{case[1]}"


@pytest.fixture(scope="module")
def null_members(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Reference and engine members of one project holding every comparison of NULL_CASES, plain and under ``not``."""
    rules: dict[str, dict[str, Any]] = {}
    for case in NULL_CASES:
        attribute, op, value = case
        rules[f"cmp_{_case_name(case)}"] = {"attribute": attribute, "op": op, "value": value}
        rules[f"not_{_case_name(case)}"] = {"not": {"attribute": attribute, "op": op, "value": value}}
    for attribute in ("name", "score", "active", "birthday", "signup_at"):
        rules[f"isnull_{attribute}"] = {"attribute": attribute, "op": "is_null"}
        rules[f"notnull_{attribute}"] = {"attribute": attribute, "op": "is_not_null"}
    project = write_project(tmp_path_factory.mktemp("nulls"), segments_of(rules))
    reference = reference_members(project, NULL_ROWS, AS_OF)
    engine = engine_members(project, NULL_ROWS, AS_OF)
    return ({name: set(keys) for name, keys in reference.items()}, {name: set(keys) for name, keys in engine.items()})


@pytest.mark.parametrize("case", NULL_CASES, ids=_case_name)
def test_comparison_with_missing_value_is_false_and_its_negation_true(
        null_members: tuple[dict[str, set[str]], dict[str, set[str]]], case: tuple[str, str, Any]) -> None:
    for members in null_members:  # the reference first, then the engine
        assert members[f"cmp_{_case_name(case)}"] == {"c_val"}
        assert members[f"not_{_case_name(case)}"] == {"c_null"}


@pytest.mark.parametrize("attribute", ["name", "score", "active", "birthday", "signup_at"])
def test_is_null_and_is_not_null_are_the_only_operators_true_for_missing(
        null_members: tuple[dict[str, set[str]], dict[str, set[str]]], attribute: str) -> None:
    for members in null_members:
        assert members[f"isnull_{attribute}"] == {"c_null"}
        assert members[f"notnull_{attribute}"] == {"c_val"}


def test_where_filter_drops_events_whose_property_is_missing(tmp_path: Path) -> None:
    rules = {
        "ne_filter": {"event": "buy", "aggregate": "count", "op": "gte", "value": 1,
                      "where": [{"property": "channel", "op": "ne", "value": "x"}]},
        "not_in_filter": {"event": "buy", "aggregate": "count", "op": "gte", "value": 1,
                          "where": [{"property": "channel", "op": "not_in", "value": ["x"]}]},
        "is_null_filter": {"event": "buy", "aggregate": "count", "op": "gte", "value": 1,
                           "where": [{"property": "channel", "op": "is_null"}]},
        "not_ne_filter": {"not": {"event": "buy", "aggregate": "count", "op": "gte", "value": 1,
                                  "where": [{"property": "channel", "op": "ne", "value": "x"}]}},
    }
    tables = {"customers": [customer("c_web"), customer("c_unknown")],
              "events": [event("c_web", AS_OF - dt.timedelta(days=1), channel="web"),
                         event("c_unknown", AS_OF - dt.timedelta(days=1), channel=None)]}
    check(tmp_path, rules, tables, {"ne_filter": {"c_web"}, "not_in_filter": {"c_web"},
                                    "is_null_filter": {"c_unknown"}, "not_ne_filter": {"c_unknown"}})


# --- strings ------------------------------------------------------------------------------------


def test_contains_and_starts_with_take_percent_underscore_and_quote_literally(tmp_path: Path) -> None:
    tables = {"customers": [customer("c_pct", name="a%c"), customer("c_abc", name="abc"),
                            customer("c_under", name="a_c"), customer("c_quote", name="it's")]}
    rules = {
        "has_percent": {"attribute": "name", "op": "contains", "value": "%"},
        "starts_a_under": {"attribute": "name", "op": "starts_with", "value": "a_"},
        "has_quote": {"attribute": "name", "op": "contains", "value": "'"},
        "eq_quote": {"attribute": "name", "op": "eq", "value": "it's"},
        "starts_upper": {"attribute": "name", "op": "starts_with", "value": "A"},
    }
    check(tmp_path, rules, tables, {"has_percent": {"c_pct"}, "starts_a_under": {"c_under"},
                                    "has_quote": {"c_quote"}, "eq_quote": {"c_quote"}, "starts_upper": set()})


def test_matches_searches_anywhere_and_is_case_sensitive(tmp_path: Path) -> None:
    tables = {"customers": [customer("c1", name="xxabyy"), customer("c2", name="AB"), customer("c3", name="ab"),
                            customer("c4", name="")]}
    rules = {
        "anywhere": {"attribute": "name", "op": "matches", "value": "ab"},
        "anchored": {"attribute": "name", "op": "matches", "value": "^ab$"},
        "empty": {"attribute": "name", "op": "matches", "value": "^$"},
    }
    check(tmp_path, rules, tables, {"anywhere": {"c1", "c3"}, "anchored": {"c3"}, "empty": {"c4"}})


def test_matches_dollar_is_the_end_of_the_text_even_before_a_trailing_newline(tmp_path: Path) -> None:
    tables = {"customers": [customer("c_newline", name="ab\n"), customer("c_plain", name="ab"),
                            customer("c_dollar", name="a$b")]}
    rules = {"ends_b": {"attribute": "name", "op": "matches", "value": "b$"},
             "literal_dollar": {"attribute": "name", "op": "matches", "value": r"a\$"},
             "dot_skips_newline": {"attribute": "name", "op": "matches", "value": "b.$"}}
    check(tmp_path, rules, tables, {"ends_b": {"c_plain", "c_dollar"}, "literal_dollar": {"c_dollar"},
                                    "dot_skips_newline": set()})


@pytest.mark.parametrize("pattern", ["a(?=b)", "(a)\\1", "(?i)ab", r"\bab"])
def test_regex_outside_the_portable_subset_is_rejected_before_evaluation(tmp_path: Path, pattern: str) -> None:
    with pytest.raises(ProjectValidationError, match="SEG024"):
        write_project(tmp_path / "project", segments_of({"odd": {"attribute": "name", "op": "matches",
                                                                 "value": pattern}}))


# --- event windows and aggregates ---------------------------------------------------------------


def test_window_bounds_are_inclusive_and_nothing_after_as_of_counts(tmp_path: Path) -> None:
    week = dt.timedelta(days=7)
    tables = {
        "customers": [customer(k) for k in ("c_lower", "c_before", "c_at", "c_after", "c_inside")],
        "events": [event("c_lower", AS_OF - week), event("c_before", AS_OF - week - US), event("c_at", AS_OF),
                   event("c_after", AS_OF + US), event("c_inside", AS_OF - dt.timedelta(days=3))],
        "orders": [order("c_lower", AS_OF - week, 1), order("c_before", AS_OF - week - US, 1),
                   order("c_at", AS_OF, 1), order("c_after", AS_OF + US, 1)],
    }
    rules = {
        "bought_7d": {"event": "buy", "aggregate": "count", "within": "7d", "op": "gte", "value": 1},
        "ordered_7d": {"event": "orders", "aggregate": "sum", "property": "amount", "within": "7d", "op": "gte",
                       "value": 1},
        "ever_bought": {"event": "buy", "aggregate": "count", "op": "gte", "value": 1},
        "last_buy_recent": {"event": "buy", "aggregate": "last", "op": "gte", "value": "2026-03-15T12:00:00Z"},
    }
    check(tmp_path, rules, tables, {
        "bought_7d": {"c_lower", "c_at", "c_inside"},
        "ordered_7d": {"c_lower", "c_at"},
        "ever_bought": {"c_lower", "c_before", "c_at", "c_inside"},
        "last_buy_recent": {"c_at"},
    })


def test_customers_without_events_count_zero_sum_zero_and_miss_the_rest(tmp_path: Path) -> None:
    rules = {
        "count_zero": {"event": "orders", "aggregate": "count", "op": "eq", "value": 0},
        "sum_zero": {"event": "orders", "aggregate": "sum", "property": "amount", "op": "eq", "value": 0},
        "sum_null": {"event": "orders", "aggregate": "sum", "property": "amount", "op": "is_null"},
        **{f"{agg}_null": {"event": "orders", "aggregate": agg, **({"property": "amount"} if agg in
                                                                      ("min", "max", "avg") else {}),
                           "op": "is_null"} for agg in ("min", "max", "avg", "first", "last")},
        "avg_zero": {"event": "orders", "aggregate": "avg", "property": "amount", "op": "eq", "value": 0},
        "last_old": {"not": {"event": "orders", "aggregate": "last", "op": "within_last", "value": "30d"}},
    }
    tables = {"customers": [customer("c_none"), customer("c_buyer")],
              "orders": [order("c_buyer", AS_OF - dt.timedelta(days=1), 10)]}
    nobody = {"c_none"}
    check(tmp_path, rules, tables, {
        "count_zero": nobody, "sum_zero": nobody, "sum_null": set(), "min_null": nobody, "max_null": nobody,
        "avg_null": nobody, "first_null": nobody, "last_null": nobody, "avg_zero": set(), "last_old": nobody,
    })


def test_sum_over_only_missing_values_is_zero_and_avg_missing(tmp_path: Path) -> None:
    rules = {
        "sum_zero": {"event": "orders", "aggregate": "sum", "property": "amount", "op": "eq", "value": 0},
        "avg_null": {"event": "orders", "aggregate": "avg", "property": "amount", "op": "is_null"},
        "max_null": {"event": "orders", "aggregate": "max", "property": "amount", "op": "is_null"},
        "count_two": {"event": "orders", "aggregate": "count", "op": "eq", "value": 2},
        "avg_of_present": {"event": "orders", "aggregate": "avg", "property": "amount", "op": "eq", "value": 3},
    }
    day = dt.timedelta(days=1)
    tables = {"customers": [customer("c_nulls"), customer("c_mixed")],
              "orders": [order("c_nulls", AS_OF - day), order("c_nulls", AS_OF - 2 * day),
                         order("c_mixed", AS_OF - day, 2), order("c_mixed", AS_OF - day, None),
                         order("c_mixed", AS_OF - day, 4)]}
    check(tmp_path, rules, tables, {"sum_zero": {"c_nulls"}, "avg_null": {"c_nulls"}, "max_null": {"c_nulls"},
                                    "count_two": {"c_nulls"}, "avg_of_present": {"c_mixed"}})


def test_event_types_select_rows_of_their_table_only(tmp_path: Path) -> None:
    day = dt.timedelta(days=1)
    tables = {"customers": [customer("c_view"), customer("c_buy"), customer("c_other")],
              "events": [event("c_view", AS_OF - day, "view"), event("c_buy", AS_OF - day, "buy"),
                         event("c_other", AS_OF - day, "other"), event("c_other", AS_OF - day, None)],
              "app_log": [{"cid": "c_other", "ts": AS_OF - day, "kind": "app_open"}]}
    rules = {name: {"event": name, "aggregate": "count", "op": "gte", "value": 1}
             for name in ("view", "buy", "click", "app_open")}
    check(tmp_path, rules, tables, {"view": {"c_view"}, "buy": {"c_buy"}, "click": set(), "app_open": {"c_other"}})


@pytest.mark.parametrize("column_type", ["BIGINT", "INTEGER", "DECIMAL(12,2)", "REAL"])
def test_number_attribute_reads_integer_and_decimal_columns(tmp_path: Path, column_type: str) -> None:
    column_types = copy.deepcopy(COLUMN_TYPES)
    column_types["customers"]["score"] = column_type
    tables = {"customers": [customer("c_5", score=5), customer("c_0", score=0), customer("c_none")]}
    check(tmp_path, {"scored": {"attribute": "score", "op": "between", "value": [1, 5]}}, tables,
          {"scored": {"c_5"}}, column_types=column_types)


def test_integer_customer_keys_are_stored_as_text(tmp_path: Path) -> None:
    column_types = copy.deepcopy(COLUMN_TYPES)
    column_types["customers"]["customer_id"] = "BIGINT"
    column_types["orders"]["customer_id"] = "BIGINT"
    tables = {"customers": [customer(7), customer(8)], "orders": [order(7, AS_OF - dt.timedelta(days=1), 10)]}
    check(tmp_path, {"ordered": {"event": "orders", "aggregate": "count", "op": "gte", "value": 1}}, tables,
          {"ordered": {"7"}}, column_types=column_types)


# --- time ---------------------------------------------------------------------------------------


def test_as_of_with_offset_is_the_same_utc_instant(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", segments_of(
        {"bought": {"event": "buy", "aggregate": "count", "op": "gte", "value": 1}}))
    tables = {"customers": [customer("c_at"), customer("c_just_after")],
              "events": [event("c_at", AS_OF), event("c_just_after", AS_OF + US)]}
    expected = {"bought": {"c_at"}}
    assert_members(project, tables, expected, as_of="2026-03-15T14:00:00+02:00")
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert_members(project, tables, expected, as_of=dt.datetime(2026, 3, 15, 14, tzinfo=plus2))
    assert_members(project, tables, expected, as_of="2026-03-15T12:00:00Z")
    warehouse = warehouse_with(tables)
    result = evaluate(project, warehouse, "2026-03-15T14:00:00+02:00", run_id="tz")
    assert result.as_of == AS_OF
    assert MembershipStore(warehouse).members("bought", AS_OF) == {"c_at"}


def test_timestamptz_columns_compare_as_utc(tmp_path: Path) -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    column_types = copy.deepcopy(COLUMN_TYPES)
    column_types["events"]["occurred_at"] = "TIMESTAMPTZ"
    column_types["customers"]["signup_at"] = "TIMESTAMPTZ"
    rules = {
        "bought": {"event": "buy", "aggregate": "count", "op": "gte", "value": 1},
        "signed_up_at_noon": {"attribute": "signup_at", "op": "eq", "value": "2026-03-15T12:00:00Z"},
        "signed_up_recently": {"attribute": "signup_at", "op": "within_last", "value": "1h"},
    }
    tables = {"customers": [customer("c_at", signup_at=dt.datetime(2026, 3, 15, 14, tzinfo=plus2)),
                            customer("c_just_after", signup_at=dt.datetime(2026, 3, 15, 14, 0, 0, 1, tzinfo=plus2))],
              "events": [event("c_at", dt.datetime(2026, 3, 15, 14, tzinfo=plus2)),
                         event("c_just_after", dt.datetime(2026, 3, 15, 14, 0, 0, 1, tzinfo=plus2))]}
    check(tmp_path, rules, tables, {"bought": {"c_at"}, "signed_up_at_noon": {"c_at"},
                                    "signed_up_recently": {"c_at"}}, column_types=column_types)


def test_timestamptz_compares_as_utc_on_a_connection_opened_in_another_time_zone(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", segments_of(
        {"bought": {"event": "buy", "aggregate": "count", "op": "gte", "value": 1}}))
    column_types = copy.deepcopy(COLUMN_TYPES)
    column_types["events"]["occurred_at"] = "TIMESTAMPTZ"
    connection = duckdb.connect(":memory:")
    connection.execute("SET TimeZone = 'Asia/Tokyo'")
    tokyo = dt.timezone(dt.timedelta(hours=9))
    create_tables(connection, {
        "customers": [customer("c_at"), customer("c_just_after")],
        "events": [event("c_at", dt.datetime(2026, 3, 15, 21, tzinfo=tokyo)),
                   event("c_just_after", dt.datetime(2026, 3, 15, 21, 0, 0, 1, tzinfo=tokyo))],
    }, column_types)
    warehouse = DuckDBWarehouse(connection=connection)
    evaluate(project, warehouse, AS_OF, run_id="tokyo")
    assert MembershipStore(warehouse).members("bought", AS_OF) == {"c_at"}


def test_date_attributes_use_whole_days_for_relative_operators(tmp_path: Path) -> None:
    just_after_midnight = dt.datetime(2026, 3, 15, 0, 30)
    days = {f"c_{d.day:02d}": d for d in (dt.date(2026, 3, day) for day in (12, 13, 14, 15, 16))}
    tables = {"customers": [customer(key, birthday=day) for key, day in days.items()]}
    rules = {
        # as_of - 1h is 14 March 23:30: the whole of 14 March is within the last hour.
        "within_1h": {"attribute": "birthday", "op": "within_last", "value": "1h"},
        "within_1d": {"attribute": "birthday", "op": "within_last", "value": "1d"},
        "within_2d": {"attribute": "birthday", "op": "within_last", "value": "2d"},
        "older_than_1h": {"attribute": "birthday", "op": "more_than_ago", "value": "1h"},
        "older_than_1d": {"attribute": "birthday", "op": "more_than_ago", "value": "1d"},
    }
    check(tmp_path, rules, tables, {
        "within_1h": {"c_14", "c_15"},
        "within_1d": {"c_14", "c_15"},
        "within_2d": {"c_13", "c_14", "c_15"},
        "older_than_1h": {"c_12", "c_13"},
        "older_than_1d": {"c_12", "c_13"},
    }, as_of=just_after_midnight, utc_as_of=just_after_midnight)


def test_timestamp_within_last_uses_exact_instants_not_days(tmp_path: Path) -> None:
    tables = {"customers": [customer("c_bound", signup_at=AS_OF - dt.timedelta(hours=1)),
                            customer("c_early", signup_at=AS_OF - dt.timedelta(hours=1) - US),
                            customer("c_future", signup_at=AS_OF + US)]}
    rules = {"within_1h": {"attribute": "signup_at", "op": "within_last", "value": "1h"},
             "older_1h": {"attribute": "signup_at", "op": "more_than_ago", "value": "1h"}}
    check(tmp_path, rules, tables, {"within_1h": {"c_bound"}, "older_1h": {"c_early"}})


# --- consent ------------------------------------------------------------------------------------


def test_consent_latest_answer_wins_and_ties_go_to_opt_out(tmp_path: Path) -> None:
    earlier, tie = AS_OF - dt.timedelta(days=10), AS_OF - dt.timedelta(days=1)
    project = write_project(tmp_path / "project", [{"name": "mailable", "channels": ["email"],
                                                   "rule": {"attribute": "score", "op": "is_null"}}])
    keys = ["c_in", "c_tie", "c_tie_null", "c_tie_all", "c_reoptin", "c_later_out", "c_future_out", "c_null",
            "c_none", "c_other_channel", "c_at_as_of"]
    tables = {"customers": [customer(k) for k in keys], "consents": [
        answer("c_in", "email", True, earlier),
        answer("c_tie", "email", True, tie), answer("c_tie", "email", False, tie),
        answer("c_tie_null", "email", None, tie), answer("c_tie_null", "email", True, tie),
        answer("c_tie_all", "email", True, tie), answer("c_tie_all", "email", None, tie),
        answer("c_tie_all", "email", False, tie),
        answer("c_reoptin", "email", False, earlier), answer("c_reoptin", "email", True, tie),
        answer("c_later_out", "email", True, earlier), answer("c_later_out", "email", False, tie),
        answer("c_future_out", "email", True, earlier), answer("c_future_out", "email", False, AS_OF + US),
        answer("c_null", "email", True, earlier), answer("c_null", "email", None, tie),
        answer("c_other_channel", "sms", True, earlier),
        answer("c_at_as_of", "email", True, AS_OF),
    ]}
    assert_members(project, tables, {"mailable": {"c_in", "c_tie_null", "c_reoptin", "c_future_out", "c_at_as_of"}})


def test_require_opt_in_false_admits_customers_without_answer(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "project",
        [{"name": "ads_ok", "rule": {"attribute": "score", "op": "is_null"}},
         {"name": "sms_ok", "channels": ["sms"], "rule": {"attribute": "score", "op": "is_null"}}],
        destinations=DESTINATIONS, syncs=[{"segment": "ads_ok", "destination": "audience", "mode": "mirror"}])
    tables = {"customers": [customer("c_none"), customer("c_out"), customer("c_in"), customer("c_unknown")],
              "consents": [answer("c_out", "ads", False, AS_OF), answer("c_in", "ads", True, AS_OF),
                           answer("c_in", "sms", True, AS_OF), answer("c_unknown", "ads", None, AS_OF),
                           answer("c_unknown", "sms", None, AS_OF)]}
    # ads has require_opt_in: false; sms declares no policy, so the default (true) applies.
    assert_members(project, tables, {"ads_ok": {"c_none", "c_in", "c_unknown"}, "sms_ok": {"c_in"}})


def test_destination_channel_suppresses_synced_segment(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "project",
        [{"name": "news", "rule": {"attribute": "score", "op": "is_null"}},
         {"name": "unsynced", "rule": {"attribute": "score", "op": "is_null"}}],
        destinations=DESTINATIONS, syncs=[{"segment": "news", "destination": "newsletter", "mode": "mirror"}])
    tables = {"customers": [customer("c_in"), customer("c_none")],
              "consents": [answer("c_in", "email", True, AS_OF - dt.timedelta(days=1))]}
    assert_members(project, tables, {"news": {"c_in"}, "unsynced": {"c_in", "c_none"}})


# --- priority groups and references --------------------------------------------------------------


def test_priority_group_keeps_customers_in_the_higher_segment(tmp_path: Path) -> None:
    everyone = {"attribute": "score", "op": "is_not_null"}
    project = write_project(
        tmp_path / "project",
        [{"name": "low", "rule": everyone},
         {"name": "high", "rule": {"attribute": "score", "op": "gte", "value": 10}},
         {"name": "top", "channels": ["email"], "rule": {"attribute": "score", "op": "gte", "value": 100}},
         {"name": "sees_low", "rule": {"segment": "low"}}],
        priority_groups=[{"name": "campaigns", "segments": ["top", "high", "low"]}])
    tables = {"customers": [customer("c_1", score=1), customer("c_50", score=50), customer("c_500", score=500),
                            customer("c_500_mailable", score=500)],
              "consents": [answer("c_500_mailable", "email", True, AS_OF)]}
    # c_500 is suppressed from 'top' (no email consent), so it is not a final member there and falls to 'high'.
    assert_members(project, tables, {"top": {"c_500_mailable"}, "high": {"c_50", "c_500"}, "low": {"c_1"},
                                     "sees_low": {"c_1"}})


def test_segment_references_see_final_membership_and_not_in(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", [
        {"name": "mailable", "channels": ["email"], "rule": {"attribute": "score", "op": "gte", "value": 1}},
        {"name": "in_mailable", "rule": {"segment": "mailable"}},
        {"name": "not_in_mailable", "rule": {"segment": "mailable", "op": "not_in"}},
    ])
    tables = {"customers": [customer("c_in", score=5), customer("c_no_consent", score=5), customer("c_low", score=0)],
              "consents": [answer("c_in", "email", True, AS_OF)]}
    assert_members(project, tables, {"mailable": {"c_in"}, "in_mailable": {"c_in"},
                                     "not_in_mailable": {"c_no_consent", "c_low"}})


# --- splits --------------------------------------------------------------------------------------


def test_split_arm_follows_md5_bucket_rule_and_is_stable_across_runs_and_as_of(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", [
        {"name": "test_group", "rule": {"attribute": "score", "op": "is_not_null"}, "split": HALVES}])
    tables = {"customers": [customer(f"c{i}", score=i) for i in range(200)]}
    warehouse = warehouse_with(tables)
    later = AS_OF + dt.timedelta(days=3)
    evaluate(project, warehouse, AS_OF, run_id="one")
    first = stored_arms(warehouse, AS_OF)["test_group"]
    evaluate(project, warehouse, AS_OF, run_id="two")
    evaluate(project, warehouse, later, run_id="three")
    assert stored_arms(warehouse, AS_OF)["test_group"] == first
    assert stored_arms(warehouse, later)["test_group"] == first
    split = project.segments["test_group"].split
    assert first == {f"c{i}": split_arm(split, f"c{i}") for i in range(200)}
    # the rule written out by hand once, for one key
    bucket = int(hashlib.md5(b"exp-1:c0").hexdigest()[:8], 16) % 10_000
    assert bucket == split_bucket("exp-1", "c0")
    assert first["c0"] == ("treatment" if bucket < 5000 else "holdout")


def test_split_hashes_salt_and_key_as_utf8_text(tmp_path: Path) -> None:
    keys = ["ü1", "it's", "a:b", "C7", "c7", "顧客"]
    split = {"salt": "Frühling:2026", "arms": [{"name": "a", "percent": 33.33}, {"name": "b", "percent": 33.33},
                                               {"name": "c", "percent": 33.34}]}
    project = write_project(tmp_path / "project", [
        {"name": "promo", "rule": {"attribute": "score", "op": "is_null"}, "split": split}])
    expected = {}
    for key in keys:
        bucket = int(hashlib.md5(f"Frühling:2026:{key}".encode()).hexdigest()[:8], 16) % 10_000
        expected[key] = "a" if bucket < 3333 else "b" if bucket < 6666 else "c"
    tables = {"customers": [customer(key) for key in keys]}
    assert reference_members(project, tables, AS_OF)["promo"] == expected
    assert engine_members(project, tables, AS_OF)["promo"] == expected


def test_split_proportions_on_ten_thousand_keys(tmp_path: Path) -> None:
    split = {"salt": "spring-2026", "arms": [{"name": "treatment", "percent": 90}, {"name": "holdout", "percent": 9.5},
                                              {"name": "tiny", "percent": 0.5}]}
    project = write_project(tmp_path / "project", [
        {"name": "promo", "rule": {"attribute": "score", "op": "is_null"}, "split": split}])
    tables = {"customers": [customer(f"c{i}") for i in range(10_000)]}
    engine = engine_members(project, tables, AS_OF)["promo"]
    assert engine == reference_members(project, tables, AS_OF)["promo"]
    counts = Counter(engine.values())
    assert sum(counts.values()) == 10_000
    assert 8_850 <= counts["treatment"] <= 9_150
    assert 850 <= counts["holdout"] <= 1_050
    assert 20 <= counts["tiny"] <= 90


def test_reference_to_split_segment_sees_every_arm(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", [
        {"name": "experiment", "rule": {"attribute": "score", "op": "gte", "value": 1}, "split": HALVES},
        {"name": "in_experiment", "rule": {"segment": "experiment"}},
    ], destinations=DESTINATIONS,
        syncs=[{"segment": "experiment", "arm": "treatment", "destination": "audience", "mode": "mirror"}])
    tables = {"customers": [customer(f"c{i}", score=i % 3) for i in range(60)]}
    engine = engine_members(project, tables, AS_OF)
    arms = set(engine["experiment"].values())
    assert arms == {"treatment", "holdout"}
    assert set(engine["in_experiment"]) == set(engine["experiment"]) == {f"c{i}" for i in range(60) if i % 3}
    assert set(engine["in_experiment"].values()) == {None}


def test_split_percents_with_two_decimals_are_accepted(tmp_path: Path) -> None:
    thirds = {"salt": "s", "arms": [{"name": "a", "percent": 33.33}, {"name": "b", "percent": 33.33},
                                    {"name": "c", "percent": 33.34}]}
    project = write_project(tmp_path / "project", [
        {"name": "thirds", "rule": {"attribute": "score", "op": "is_null"}, "split": thirds}])
    tables = {"customers": [customer(f"c{i}") for i in range(30)]}
    assert engine_members(project, tables, AS_OF) == reference_members(project, tables, AS_OF)


# --- reproducibility and snapshots ----------------------------------------------------------------


def test_same_data_and_as_of_give_identical_members_and_replace_the_snapshot(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", segments_of({
        "recent": {"event": "buy", "aggregate": "count", "within": "7d", "op": "gte", "value": 1},
        "scored": {"attribute": "score", "op": "gt", "value": 2},
    }))
    day = dt.timedelta(days=1)
    tables = {"customers": [customer(f"c{i}", score=i) for i in range(6)],
              "events": [event("c1", AS_OF - day), event("c2", AS_OF - 6 * day), event("c3", AS_OF - 8 * day)]}
    warehouse = warehouse_with(tables)
    store = MembershipStore(warehouse)
    evaluate(project, warehouse, AS_OF, run_id="first")
    first = {name: store.members(name, AS_OF) for name in project.segments}
    rows = warehouse.query(f"SELECT COUNT(*) FROM {MEMBERSHIPS}")[0][0]
    evaluate(project, warehouse, AS_OF, run_id="second")
    assert {name: store.members(name, AS_OF) for name in project.segments} == first
    assert warehouse.query(f"SELECT COUNT(*) FROM {MEMBERSHIPS}")[0][0] == rows
    assert {run for (run,) in warehouse.query(f"SELECT DISTINCT run_id FROM {MEMBERSHIPS}")} == {"second"}
    assert first == {"recent": {"c1", "c2"}, "scored": {"c3", "c4", "c5"}}

    # Three days later c2's purchase has left the window and c4 bought.
    later = AS_OF + 3 * day
    warehouse.execute(f"INSERT INTO events (customer_id, occurred_at, event_type) "
                      f"VALUES ('c4', TIMESTAMP '{(later - day).isoformat(sep=' ')}', 'buy')")
    evaluate(project, warehouse, later, run_id="third")
    assert store.members("recent", later) == {"c1", "c4"}
    assert store.changes("recent", later) == {"added": {"c4"}, "removed": {"c2"}}
    assert store.changes("scored", later) == {"added": set(), "removed": set()}
    snapshots = {(s[0], s[1]): s[3:] for s in store.snapshots()}
    assert snapshots[("recent", later)] == (2, 1, 1, 1, AS_OF)
    assert snapshots[("recent", AS_OF)] == (2, 2, 0, 0, None)
    assert snapshots[("scored", later)] == (3, 0, 0, 3, AS_OF)


def test_the_store_holds_one_packed_row_per_member_customer(tmp_path: Path) -> None:
    """Three segments over five customers: one stored row for each customer in any segment, not one per
    membership, and the view still gives every (segment, customer) pair."""
    project = write_project(tmp_path / "project", segments_of({
        "low": {"attribute": "score", "op": "lt", "value": 2},
        "high": {"attribute": "score", "op": "gte", "value": 2},
        "all": {"attribute": "score", "op": "gte", "value": 0},
    }))
    warehouse = warehouse_with({"customers": [customer(f"c{i}", score=i) for i in range(4)] + [customer("c9")]})
    evaluate(project, warehouse, AS_OF, run_id="first")
    assert warehouse.query(f"SELECT COUNT(*) FROM {MEMBERSHIPS}")[0][0] == 8
    words = warehouse.query(f"SELECT customer_key, bits FROM {WORDS}")
    assert sorted(key for key, _ in words) == ["c0", "c1", "c2", "c3"]  # c9 (no score) is in no segment
    masks = dict(warehouse.query(f"SELECT segment, mask FROM {BITS}"))
    assert dict(words) == {"c0": masks["low"] + masks["all"], "c1": masks["low"] + masks["all"],
                           "c2": masks["high"] + masks["all"], "c3": masks["high"] + masks["all"]}


def test_re_evaluating_some_segments_keeps_the_others_and_drops_a_write_no_one_reads(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", segments_of({
        "low": {"attribute": "score", "op": "lt", "value": 2},
        "high": {"attribute": "score", "op": "gte", "value": 2},
    }))
    warehouse = warehouse_with({"customers": [customer(f"c{i}", score=i) for i in range(4)]})
    store = MembershipStore(warehouse)
    evaluate(project, warehouse, AS_OF, run_id="first")
    warehouse.execute("UPDATE customers SET score = 0")

    evaluate(project, warehouse, AS_OF, run_id="second", segments=["high"])
    assert store.members("high", AS_OF) == set()
    assert store.members("low", AS_OF) == {"c0", "c1"}  # first's bits for low are still read
    assert dict(warehouse.query(f"SELECT segment, run_id FROM {MEMBERSHIPS}")) == {"low": "first"}
    assert warehouse.query(f"SELECT COUNT(DISTINCT write_id) FROM {WORDS}")[0][0] == 1  # second wrote no member

    evaluate(project, warehouse, AS_OF, run_id="third", segments=["low"])
    assert store.members("low", AS_OF) == {"c0", "c1", "c2", "c3"}
    # first's write holds no bit anyone reads now: it is gone, not left behind as dead rows
    assert {run for (run,) in warehouse.query(
        f"SELECT DISTINCT b.run_id FROM {WORDS} AS w JOIN {BITS} AS b ON b.write_id = w.write_id")} == {"third"}
    assert warehouse.query(f"SELECT COUNT(*) FROM {WORDS}")[0][0] == 4
    assert {(s[0], s[2]) for s in store.snapshots()} == {("high", "second"), ("low", "third")}


def test_more_than_63_bits_span_words_with_split_arms(tmp_path: Path) -> None:
    """70 segments and a 3-arm split: 73 bits, two words per customer holding bits in both."""
    thirds = {"salt": "w", "arms": [{"name": "x", "percent": 30}, {"name": "y", "percent": 30},
                                    {"name": "z", "percent": 40}]}
    segments = [{"name": f"s{i:02d}", "rule": {"attribute": "score", "op": "gte", "value": i}} for i in range(70)]
    segments.append({"name": "split", "rule": {"attribute": "score", "op": "gte", "value": 0}, "split": thirds})
    project = write_project(tmp_path / "project", segments)
    tables = {"customers": [customer(f"c{i}", score=i) for i in range(75)]}
    warehouse = warehouse_with(tables)
    evaluate(project, warehouse, AS_OF, run_id="wide")
    reference = reference_members(project, tables, AS_OF)
    assert stored_arms(warehouse, AS_OF) == {name: members for name, members in reference.items() if members}
    assert {arm for arm in reference["split"].values()} == {"x", "y", "z"}
    assert warehouse.query(f"SELECT COUNT(DISTINCT word) FROM {BITS}")[0][0] == 2
    assert warehouse.query(f"SELECT COUNT(*) FROM {WORDS} WHERE customer_key = 'c74'")[0][0] == 2


def test_a_row_per_member_table_of_an_earlier_version_is_migrated_with_its_history(tmp_path: Path) -> None:
    halves = {"salt": "m", "arms": [{"name": "a", "percent": 50}, {"name": "b", "percent": 50}]}
    project = write_project(tmp_path / "project", [
        {"name": "scored", "rule": {"attribute": "score", "op": "gt", "value": 2}, "split": halves},
        {"name": "low", "rule": {"attribute": "score", "op": "lt", "value": 2}}])
    warehouse = warehouse_with({"customers": [customer(f"c{i}", score=i % 7) for i in range(30)]})
    store = MembershipStore(warehouse)
    evaluate(project, warehouse, AS_OF, run_id="day_1")
    day_1 = stored_arms(warehouse, AS_OF)
    to_row_per_member_layout(warehouse)
    assert warehouse.columns(WORDS) is None and "write_id" not in warehouse.columns(MEMBERSHIPS)
    # the old table had no key: a row written twice (two concurrent runs) is one membership, not two bits
    warehouse.execute(f"INSERT INTO {MEMBERSHIPS} SELECT * FROM {MEMBERSHIPS} WHERE segment = 'low'")

    later = AS_OF + dt.timedelta(days=1)
    warehouse.execute("UPDATE customers SET score = 6 WHERE customer_id IN ('c0', 'c1')")
    evaluate(project, warehouse, later, run_id="day_2")

    assert stored_arms(warehouse, AS_OF) == day_1  # the old snapshot, read through the view
    assert {run for (run,) in warehouse.query(f"SELECT DISTINCT run_id FROM {MEMBERSHIPS} WHERE as_of = "
                                              f"TIMESTAMP '{AS_OF.isoformat(sep=' ')}'")} == {"day_1"}
    # the diff of the new snapshot is against the migrated one: c0 and c1 moved from low to scored
    assert store.changes("low", later) == {"added": set(), "removed": {"c0", "c1"}}
    assert store.changes("scored", later) == {"added": {"c0", "c1"}, "removed": set()}
    assert warehouse.query(f"SELECT COUNT(*) FROM {MEMBERSHIPS}_v0")[0][0] == (
        sum(map(len, day_1.values())) + len(day_1["low"]))

    evaluate(project, warehouse, later, run_id="day_2_again")  # migrated once: nothing moves again
    assert stored_arms(warehouse, AS_OF) == day_1


def test_a_migration_never_overwrites_an_earlier_copy_of_the_old_table(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", segments_of({"any": {"attribute": "score", "op": "gte", "value": 0}}))
    warehouse = warehouse_with({"customers": [customer("c1", score=1)]})
    evaluate(project, warehouse, AS_OF, run_id="old")
    to_row_per_member_layout(warehouse)
    warehouse.execute(f"CREATE TABLE {MEMBERSHIPS}_v0 AS SELECT * FROM {MEMBERSHIPS}")
    with pytest.raises(EvaluationError, match=f"{MEMBERSHIPS}_v0.*exists already"):
        evaluate(project, warehouse, AS_OF + dt.timedelta(days=1), run_id="new")
    assert warehouse.query(f"SELECT customer_key, run_id FROM {MEMBERSHIPS}") == [("c1", "old")]
    assert not warehouse.query(f"SELECT * FROM {WORDS}")


def test_change_rows_carry_the_arm_of_the_side_that_holds_the_key(tmp_path: Path) -> None:
    """An added key's arm is its arm now; a removed key's arm is the arm it was synced in."""
    halves = {"salt": "diff", "arms": [{"name": "a", "percent": 50}, {"name": "b", "percent": 50}]}
    project = write_project(tmp_path / "project", [
        {"name": "scored", "rule": {"attribute": "score", "op": "gt", "value": 2}, "split": halves}])
    warehouse = warehouse_with({"customers": [customer(f"c{i}", score=i) for i in range(40)]})
    store = MembershipStore(warehouse)
    evaluate(project, warehouse, AS_OF, run_id="first")
    before = dict(warehouse.query(f"SELECT customer_key, arm FROM {MEMBERSHIPS} WHERE as_of = TIMESTAMP "
                                  f"'{AS_OF.isoformat(sep=' ')}'"))
    later = AS_OF + dt.timedelta(days=1)
    warehouse.execute("UPDATE customers SET score = 0 WHERE customer_id IN ('c3', 'c30')")
    warehouse.execute("UPDATE customers SET score = 9 WHERE customer_id IN ('c1', 'c2')")
    evaluate(project, warehouse, later, run_id="second")
    after = dict(warehouse.query(f"SELECT customer_key, arm FROM {MEMBERSHIPS} WHERE as_of = TIMESTAMP "
                                 f"'{later.isoformat(sep=' ')}'"))
    changes = {key: (change, arm) for key, change, arm in warehouse.query(
        "SELECT customer_key, change, arm FROM segprovider_membership_changes")}
    assert changes == {"c3": ("removed", before["c3"]), "c30": ("removed", before["c30"]),
                       "c1": ("added", after["c1"]), "c2": ("added", after["c2"])}
    assert {arm for _, arm in changes.values()} <= {"a", "b"}
    assert store.changes("scored", later) == {"added": {"c1", "c2"}, "removed": {"c3", "c30"}}


def test_a_key_that_moves_between_segments_is_removed_from_one_and_added_to_the_other(tmp_path: Path) -> None:
    """The diff matches keys within a segment: membership elsewhere does not count as unchanged."""
    project = write_project(tmp_path / "project", [
        {"name": "high", "rule": {"attribute": "score", "op": "gt", "value": 5}},
        {"name": "low", "rule": {"attribute": "score", "op": "lte", "value": 5}}])
    warehouse = warehouse_with({"customers": [customer(f"c{i}", score=i) for i in range(10)]})
    store = MembershipStore(warehouse)
    evaluate(project, warehouse, AS_OF, run_id="first")
    later = AS_OF + dt.timedelta(days=1)
    warehouse.execute("UPDATE customers SET score = 4 WHERE customer_id = 'c6'")
    warehouse.execute("UPDATE customers SET score = 7 WHERE customer_id = 'c2'")
    result = evaluate(project, warehouse, later, run_id="second")
    assert store.changes("high", later) == {"added": {"c2"}, "removed": {"c6"}}
    assert store.changes("low", later) == {"added": {"c6"}, "removed": {"c2"}}
    assert {d.segment: (d.members, d.added, d.removed, d.unchanged) for d in result.diffs} == {
        "high": (4, 1, 1, 3), "low": (6, 1, 1, 5)}


# --- bad input -------------------------------------------------------------------------------------


def _memberships_rows(warehouse: DuckDBWarehouse) -> int:
    exists = warehouse.query(f"SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '{MEMBERSHIPS}'")
    return warehouse.query(f"SELECT COUNT(*) FROM {MEMBERSHIPS}")[0][0] if exists[0][0] else 0


def _project_with_value_segment(tmp_path: Path) -> Project:
    model = copy.deepcopy(MODEL)
    model["customer"]["attributes"]["lifetime_value"] = {"type": "number"}
    return write_project(tmp_path / "project", [
        {"name": "big_spenders", "rule": {"attribute": "lifetime_value", "op": "gte", "value": 1000}},
        {"name": "big_orders", "rule": {"event": "orders", "aggregate": "max", "property": "amount", "op": "gte",
                                        "value": 500}},
    ], model=model)


def _value_columns(lifetime_value_type: str | None) -> dict[str, dict[str, str]]:
    column_types = copy.deepcopy(COLUMN_TYPES)
    if lifetime_value_type is not None:
        column_types["customers"]["lifetime_value"] = lifetime_value_type
    return column_types


def test_unparsable_as_of_is_an_evaluation_error(tmp_path: Path) -> None:
    project = _project_with_value_segment(tmp_path)
    warehouse = warehouse_with({"customers": [customer("c1", lifetime_value=5000)]}, _value_columns("DOUBLE"))
    with pytest.raises(EvaluationError, match="yesterday"):
        evaluate(project, warehouse, "yesterday", run_id="bad")
    assert _memberships_rows(warehouse) == 0


@pytest.mark.parametrize(("column_types", "missing_table", "expected_in_message"), [
    pytest.param(_value_columns("VARCHAR"), None, ["customers.lifetime_value", "big_spenders"], id="varchar-number"),
    pytest.param(_value_columns(None), None, ["customers.lifetime_value", "big_spenders"], id="missing-column"),
    pytest.param(_value_columns("DOUBLE"), "orders", ["orders", "big_orders"], id="missing-table"),
])
def test_bad_sources_are_evaluation_errors_naming_column_and_segment(
        tmp_path: Path, column_types: dict[str, dict[str, str]], missing_table: str | None,
        expected_in_message: list[str]) -> None:
    project = _project_with_value_segment(tmp_path)
    if missing_table:
        del column_types[missing_table]
    warehouse = warehouse_with({"customers": [customer("c1")]}, column_types)
    with pytest.raises(EvaluationError) as raised:
        evaluate(project, warehouse, AS_OF, run_id="bad")
    for text in expected_in_message:
        assert text in str(raised.value)
    assert _memberships_rows(warehouse) == 0


def test_failed_evaluation_keeps_the_previous_snapshot(tmp_path: Path) -> None:
    project = _project_with_value_segment(tmp_path)
    warehouse = warehouse_with({"customers": [customer("c1", lifetime_value=5000)]}, _value_columns("DOUBLE"))
    evaluate(project, warehouse, AS_OF, run_id="good")
    warehouse.execute("DROP TABLE orders")
    with pytest.raises(EvaluationError):
        evaluate(project, warehouse, AS_OF, run_id="bad")
    assert MembershipStore(warehouse).members("big_spenders", AS_OF) == {"c1"}
    assert {run for (run,) in warehouse.query(f"SELECT DISTINCT run_id FROM {SNAPSHOTS}")} == {"good"}


# --- customer keys -------------------------------------------------------------------------------


def test_a_customer_without_key_is_a_clear_error_and_nothing_is_written(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", segments_of({"all_rows": {"attribute": "name", "op": "is_not_null"}}))
    warehouse = warehouse_with({"customers": [customer("c1", name="a"), customer(None, name="b")]})
    with pytest.raises(EvaluationError, match=r"1 row\(s\) of customers have no customer_id"):
        evaluate(project, warehouse, AS_OF, run_id="r1")
    assert warehouse.columns(MEMBERSHIPS) is None or not warehouse.query(f"SELECT * FROM {MEMBERSHIPS}")


def test_duplicate_customer_keys_are_a_clear_error(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project", segments_of({"all_rows": {"attribute": "name", "op": "is_not_null"}}))
    warehouse = warehouse_with({"customers": [customer("c1", name="a"), customer("c1", name="b"), customer("c2")]})
    with pytest.raises(EvaluationError, match=r"customers.customer_id is not unique: 'c1' \(2 rows\)"):
        evaluate(project, warehouse, AS_OF, run_id="r1")
    assert warehouse.columns(MEMBERSHIPS) is None or not warehouse.query(f"SELECT * FROM {MEMBERSHIPS}")


def test_a_duckdb_project_schema_other_than_main_evaluates_run_after_run(tmp_path: Path) -> None:
    """Sources in ``analytics``; the store where the session's unqualified names land (``main``, as
    before the store was packed, so sync state and history stay where they were), found again by
    the next run rather than created twice."""
    project = write_project(tmp_path / "project", segments_of({"any": {"attribute": "score", "op": "gte", "value": 1}}))
    path = tmp_path / "warehouse.duckdb"
    setup = duckdb.connect(str(path))
    setup.execute("CREATE SCHEMA analytics")
    setup.execute("CREATE TABLE analytics.customers (customer_id VARCHAR, score INTEGER)")
    setup.execute("INSERT INTO analytics.customers VALUES ('c1', 1), ('c2', 0)")
    setup.close()
    for day, run in ((AS_OF, "first"), (AS_OF + dt.timedelta(days=1), "second")):
        warehouse = DuckDBWarehouse(path, schema="analytics")
        evaluate(project, warehouse, day, run_id=run)
        assert MembershipStore(warehouse).members("any", day) == {"c1"}
        warehouse.close()
    check = duckdb.connect(str(path))
    assert {MEMBERSHIPS, WORDS, BITS} <= {name for (name,) in check.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
    check.close()

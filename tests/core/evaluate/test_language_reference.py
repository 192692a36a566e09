"""Statements of docs/segments-language.md checked where an engine could behave otherwise.

Text: every operator is case-sensitive and orders by code point (byte order in UTF-8), on DuckDB and on
PostgreSQL (whose default collation would order ``a`` before ``B``). Time: date windows use the UTC
date of ``as_of``; a date-only value for a timestamp means midnight UTC. Consent: a channel reached
by a sync of one arm of a split suppresses the whole segment, every arm.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest

from airflow_segprovider.core.evaluate.engine import evaluate
from support.engine_harness import COLUMN_TYPES, DESTINATIONS, write_project
from support.warehouse_matrix import load_rows, open_warehouse, stored

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

AS_OF = dt.datetime(2026, 3, 15, 12)
KINDS = ("duckdb", "postgres")
NAMES = {"upper": "Apple", "lower": "apple", "b_upper": "Banana", "accent": "émile", "mixed": "aPPLE"}

TEXT_RULES: dict[str, tuple[dict[str, Any], set[str]]] = {
    "eq": ({"op": "eq", "value": "apple"}, {"lower"}),
    "ne": ({"op": "ne", "value": "apple"}, {"upper", "b_upper", "accent", "mixed"}),
    "in": ({"op": "in", "value": ["APPLE", "apple"]}, {"lower"}),
    "not_in": ({"op": "not_in", "value": ["Apple", "Banana", "émile", "aPPLE"]}, {"lower"}),
    "contains": ({"op": "contains", "value": "PP"}, {"mixed"}),
    "starts_with": ({"op": "starts_with", "value": "a"}, {"lower", "mixed"}),
    "matches": ({"op": "matches", "value": "^A"}, {"upper"}),
    # code-point order: every upper-case letter sorts before every lower-case one, accents after both
    "lt": ({"op": "lt", "value": "a"}, {"upper", "b_upper"}),
    "gt": ({"op": "gt", "value": "z"}, {"accent"}),
    "between": ({"op": "between", "value": ["B", "b"]}, {"b_upper", "lower", "mixed"}),
}


def _evaluate(kind: str, project, tables: dict, as_of: Any = AS_OF) -> dict[str, set[str]]:
    with open_warehouse(kind) as warehouse:
        load_rows(warehouse, tables, COLUMN_TYPES)
        result = evaluate(project, warehouse, as_of, run_id="doc")
        return {name: set(keys) for name, keys in stored(warehouse, result.as_of).items()}


@pytest.mark.parametrize("kind", KINDS)
def test_every_text_operator_is_case_sensitive_and_orders_by_code_point(tmp_path: Path, kind: str) -> None:
    project = write_project(tmp_path / "p", [{"name": f"name_{op}", "rule": {"attribute": "name", **rule}}
                                             for op, (rule, _) in TEXT_RULES.items()])
    tables = {"customers": [{"customer_id": key, "name": name} for key, name in NAMES.items()]}
    members = _evaluate(kind, project, tables)
    assert {op: members.get(f"name_{op}", set()) for op in TEXT_RULES} == {op: e for op, (_, e) in TEXT_RULES.items()}


@pytest.mark.parametrize("kind", KINDS)
def test_date_windows_use_the_utc_date_of_as_of(tmp_path: Path, kind: str) -> None:
    # 01:00 at +02:00 on the 15th is 23:00 UTC on the 14th: the window's last day is the 14th
    project = write_project(tmp_path / "p", [
        {"name": "birthday_last_day", "rule": {"attribute": "birthday", "op": "within_last", "value": "1d"}},
        {"name": "birthday_long_ago", "rule": {"attribute": "birthday", "op": "more_than_ago", "value": "1d"}}])
    tables = {"customers": [{"customer_id": "d15", "birthday": dt.date(2026, 3, 15)},
                            {"customer_id": "d14", "birthday": dt.date(2026, 3, 14)},
                            {"customer_id": "d13", "birthday": dt.date(2026, 3, 13)},
                            {"customer_id": "d12", "birthday": dt.date(2026, 3, 12)}]}
    members = _evaluate(kind, project, tables, as_of="2026-03-15T01:00:00+02:00")
    assert members["birthday_last_day"] == {"d14", "d13"}
    assert members["birthday_long_ago"] == {"d12"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_date_only_value_for_a_timestamp_means_midnight_utc(tmp_path: Path, kind: str) -> None:
    project = write_project(tmp_path / "p", [
        {"name": "signed_up_then", "rule": {"attribute": "signup_at", "op": "eq", "value": "2026-03-14"}},
        {"name": "signed_up_before", "rule": {"attribute": "signup_at", "op": "lt", "value": "2026-03-14"}}])
    tables = {"customers": [{"customer_id": "midnight", "signup_at": dt.datetime(2026, 3, 14)},
                            {"customer_id": "just_before", "signup_at": dt.datetime(2026, 3, 13, 23, 59, 59)},
                            {"customer_id": "noon", "signup_at": dt.datetime(2026, 3, 14, 12)}]}
    members = _evaluate(kind, project, tables)
    assert members["signed_up_then"] == {"midnight"}
    assert members["signed_up_before"] == {"just_before"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_channel_synced_to_one_arm_suppresses_every_arm(tmp_path: Path, kind: str) -> None:
    halves = {"salt": "s", "arms": [{"name": "treatment", "percent": 50}, {"name": "holdout", "percent": 50}]}
    project = write_project(
        tmp_path / "p", [{"name": "split_seg", "rule": {"attribute": "score", "op": "gte", "value": 0},
                          "split": halves},
                         {"name": "no_answer_sms", "rule": {"attribute": "score", "op": "gte", "value": 0},
                          "channels": ["sms"]}],
        destinations=DESTINATIONS,
        syncs=[{"segment": "split_seg", "destination": "newsletter", "arm": "treatment", "mode": "mirror",
                "schedule": "@daily"}])
    customers = [{"customer_id": f"c{i}", "score": 1} for i in range(40)]
    consents = [{"customer_id": f"c{i}", "channel": "email", "opted_in": True, "updated_at": dt.datetime(2026, 1, 1)}
                for i in range(0, 40, 2)]  # odd customers never answered: email requires opt-in
    members = _evaluate(kind, project, {"customers": customers, "consents": consents})
    split_members = members["split_seg"]
    assert split_members == {f"c{i}" for i in range(0, 40, 2)}
    with open_warehouse("duckdb") as warehouse:  # both arms are used: suppression did not follow the arm
        load_rows(warehouse, {"customers": customers, "consents": consents}, COLUMN_TYPES)
        evaluate(project, warehouse, AS_OF, run_id="arms")
        assert set(stored(warehouse, AS_OF)["split_seg"].values()) == {"treatment", "holdout"}
    # require_opt_in defaults to true: sms declares no policy, so no answer suppresses
    assert "no_answer_sms" not in members

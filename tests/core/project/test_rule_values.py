"""Rule values as YAML 1.1 reads them: numbers the warehouse can compare exactly, text that was meant as text.

Numbers in rules are finite decimals below 10^15 with at most 9 decimals (the arithmetic of
docs/segments-language.md); ``.inf`` and ``.nan`` used to pass validation and fail evaluation with
``Referenced column "inf" not found``. Unquoted ``NO``/``yes`` are booleans in YAML 1.1: a text value
given so is rejected with a hint to quote it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_segprovider.core.errors import ProjectValidationError
from airflow_segprovider.core.project.loader import load_project
from support.engine_harness import write_project

if TYPE_CHECKING:
    from pathlib import Path


def load_with_rule(folder: Path, rule_yaml: str):
    """Load a project whose one segment has the rule written as raw YAML (``rule: <rule_yaml>``)."""
    write_project(folder, [{"name": "placeholder", "rule": {"attribute": "score", "op": "is_null"}}])
    (folder / "segments.yml").write_text(f"segments:\n  - name: s\n    rule: {rule_yaml}\n", encoding="utf-8")
    return load_project(folder)


def issue_of(folder: Path, rule_yaml: str):
    with pytest.raises(ProjectValidationError) as raised:
        load_with_rule(folder, rule_yaml)
    [issue] = raised.value.issues
    return issue


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", ".NaN", "1.0e+30", "1000000000000000", "0.0000000001"])
@pytest.mark.parametrize("where", ["attribute", "event", "filter", "between"])
def test_numbers_beyond_the_arithmetic_are_rejected(tmp_path: Path, value: str, where: str) -> None:
    rule = {
        "attribute": f"{{attribute: score, op: gt, value: {value}}}",
        "event": f"{{event: buy, aggregate: sum, property: revenue, op: gte, value: {value}}}",
        "filter": f"{{event: buy, aggregate: count, op: gte, value: 1, where: [{{property: revenue, op: eq, "
                  f"value: {value}}}]}}",
        "between": f"{{attribute: score, op: between, value: [-1, {value}]}}" if not value.startswith("-")
        else f"{{attribute: score, op: between, value: [{value}, 1]}}",
    }[where]
    issue = issue_of(tmp_path, rule)
    assert issue.code == "SEG024"
    assert any(word in issue.message for word in ("not a number", "out of range", "decimals")), issue.message


@pytest.mark.parametrize("value", ["999999999999999", "-999999999999999.5", "0.000000001", "33.333333333", "0"])
def test_numbers_within_the_arithmetic_are_accepted(tmp_path: Path, value: str) -> None:
    project = load_with_rule(tmp_path, f"{{attribute: score, op: lt, value: {value}}}")
    assert project.segments["s"].rule.predicate.value == float(value)  # type: ignore[union-attr]


@pytest.mark.parametrize("value", ["NO", "no", "yes", "Off", "on", "TRUE"])
def test_unquoted_yaml_booleans_for_text_are_rejected_with_a_hint_to_quote(tmp_path: Path, value: str) -> None:
    issue = issue_of(tmp_path, f"{{attribute: name, op: eq, value: {value}}}")
    assert issue.code == "SEG024"
    assert "quote" in issue.message and "boolean" in issue.message


def test_quoted_yaml_booleans_are_text(tmp_path: Path) -> None:
    project = load_with_rule(tmp_path, "{attribute: name, op: in, value: ['NO', \"yes\"]}")
    assert project.segments["s"].rule.predicate.value == ("NO", "yes")  # type: ignore[union-attr]


def test_unquoted_digits_for_text_are_rejected_with_a_hint_to_quote(tmp_path: Path) -> None:
    issue = issue_of(tmp_path, "{attribute: name, op: eq, value: 01234}")
    assert issue.code == "SEG024" and "quote" in issue.message


@pytest.mark.parametrize("value", ["yes", "NO", "on", "true"])
def test_yaml_booleans_are_booleans_for_a_boolean_attribute(tmp_path: Path, value: str) -> None:
    project = load_with_rule(tmp_path, f"{{attribute: active, op: eq, value: {value}}}")
    assert project.segments["s"].rule.predicate.value is (value.lower() in ("yes", "on", "true"))  # type: ignore


def test_an_exponent_without_a_dot_is_text_in_yaml_and_says_how_to_write_it(tmp_path: Path) -> None:
    issue = issue_of(tmp_path, "{attribute: score, op: gt, value: 1e3}")
    assert issue.code == "SEG024" and "1.0e+3" in issue.message


@pytest.mark.parametrize("duration", ["0d", "-1d", "0m", "1.5d", "1y"])
def test_durations_are_positive_whole_numbers(tmp_path: Path, duration: str) -> None:
    issue = issue_of(tmp_path, f"{{attribute: signup_at, op: within_last, value: '{duration}'}}")
    assert issue.code == "SEG048"

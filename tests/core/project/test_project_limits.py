"""Limits of the segments language, each refused with its file, field and the limit it exceeds.

Numeric settings are finite (``.nan`` would switch the mass-removal guard off: every comparison with
it is false) and in their range; a whole number fits a 64-bit integer; a rule nests at most
:data:`~airflow_segprovider.core.project.loader.MAX_RULE_DEPTH` levels of ``all``/``any``/``not``
(deeper nesting crashed the schema check with ``RecursionError``); a window or duration is at most
:data:`~airflow_segprovider.core.project.durations.MAX_DURATION_TEXT`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from airflow_segprovider.core.errors import ProjectValidationError, SpecIssue
from airflow_segprovider.core.project.durations import parse_duration
from airflow_segprovider.core.project.loader import load_project

SYNC = "{segment: vip, destination: hubspot_crm, mode: mirror, schedule: \"@daily\","
DESTINATIONS = "destinations.yml"


def issues_of(root: Path) -> list[SpecIssue]:
    with pytest.raises(ProjectValidationError) as caught:
        load_project(root)
    return caught.value.issues


def set_sync_setting(root: Path, setting: str) -> None:
    """Give the example's vip -> hubspot_crm sync one more setting, e.g. ``max_remove_fraction: .nan``."""
    file = root / DESTINATIONS
    text = file.read_text(encoding="utf-8")
    assert text.count(SYNC) == 1
    file.write_text(text.replace(SYNC, SYNC + f" {setting},"), encoding="utf-8")


def nested_rule(depth: int) -> str:
    rule = "{attribute: country, op: eq, value: DE}"
    for level in range(depth):
        rule = ("{not: " + rule + "}") if level % 3 == 2 else ("{all: [" + rule + "]}" if level % 2 else
                                                               "{any: [" + rule + "]}")
    return rule


def add_segment(root: Path, name: str, rule: str) -> Path:
    file = root / "segments" / f"{name}.yml"
    file.write_text(f"segments:\n  - name: {name}\n    rule: {rule}\n", encoding="utf-8")
    return file


# --- numeric settings ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [".nan", ".NaN", ".inf", "-.inf"])
@pytest.mark.parametrize("setting", ["max_remove_fraction", "max_size_change"])
def test_a_numeric_setting_must_be_finite(project_copy: Path, setting: str, value: str) -> None:
    set_sync_setting(project_copy, f"{setting}: {value}")

    issues = issues_of(project_copy)

    assert len(issues) == 1, "\n".join(issue.format() for issue in issues)
    issue = issues[0]
    assert issue.code == "SEG010" and issue.location.file.endswith(DESTINATIONS)
    assert issue.location.path.endswith(f".{setting}") and issue.location.path.startswith("syncs[")
    assert setting in issue.message or "finite" in issue.message, issue.format()


@pytest.mark.parametrize(("file", "old", "new", "field"), [
    ("reconcile.yml", "max_change_fraction: 0.25", "max_change_fraction: .nan", "reconcile[0].max_change_fraction"),
    ("hub.yml", "drift_tolerance: 0.01", "drift_tolerance: .nan", "spoke_segments[0].drift_tolerance"),
])
def test_every_fraction_of_the_project_must_be_finite(project_copy: Path, file: str, old: str, new: str,
                                                      field: str) -> None:
    path = project_copy / file
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")

    issues = issues_of(project_copy)

    assert [(issue.code, issue.location.path) for issue in issues] == [("SEG010", field)]
    assert "not a finite number" in issues[0].message and issues[0].location.line is not None


@pytest.mark.parametrize("value", ["-0.1", "1.5", "2"])
def test_a_fraction_outside_0_to_1_names_its_range(project_copy: Path, value: str) -> None:
    set_sync_setting(project_copy, f"max_remove_fraction: {value}")

    issues = issues_of(project_copy)

    assert [issue.code for issue in issues] == ["SEG010"]
    assert issues[0].location.path.endswith(".max_remove_fraction")
    assert ("minimum of 0" in issues[0].message) or ("maximum of 1" in issues[0].message)


@pytest.mark.parametrize("setting", ["min_size: 99999999999999999999999", "max_size: -99999999999999999999999"])
def test_a_whole_number_setting_fits_64_bits(project_copy: Path, setting: str) -> None:
    set_sync_setting(project_copy, setting)

    issues = issues_of(project_copy)

    assert [issue.code for issue in issues] == ["SEG010"], "\n".join(issue.format() for issue in issues)
    assert issues[0].location.path.endswith("." + setting.split(":")[0])


def test_the_mass_removal_guard_reads_a_finite_fraction(project_copy: Path) -> None:
    set_sync_setting(project_copy, "max_remove_fraction: 0.5")

    sync = next(s for s in load_project(project_copy).syncs if s.segment == "vip" and s.destination == "hubspot_crm")

    assert sync.max_remove_fraction == 0.5


# --- rule nesting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [33, 100, 400])
def test_a_rule_nested_too_deep_is_refused_stating_the_limit(project_copy: Path, depth: int) -> None:
    file = add_segment(project_copy, "deep", nested_rule(depth))

    issues = issues_of(project_copy)

    assert [issue.code for issue in issues] == ["SEG006"], "\n".join(issue.format() for issue in issues)
    issue = issues[0]
    assert issue.location.file.endswith(file.name) and issue.location.path.startswith("segments[0].rule")
    assert f"nests {depth} levels" in issue.message and "at most 32" in issue.message


def test_a_rule_at_the_nesting_limit_is_valid(project_copy: Path) -> None:
    add_segment(project_copy, "deep", nested_rule(32))

    assert "deep" in load_project(project_copy).segments


# --- windows and durations -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["99999999999d", "36501d", "5219w", "876001h", "52560001m", "9" * 5000 + "d"])
def test_a_window_longer_than_100_years_is_refused_stating_the_limit(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_duration(text)

    message = str(raised.value)
    assert "not a duration" not in message
    assert "at most 36500d (100 years)" in message and len(message) < 300


@pytest.mark.parametrize(("text", "expected"), [("36500d", timedelta(days=36500)), ("5214w", timedelta(weeks=5214)),
                                                ("876000h", timedelta(hours=876000)), ("90d", timedelta(days=90))])
def test_windows_up_to_100_years_are_accepted(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_a_too_long_window_in_a_rule_is_located(project_copy: Path) -> None:
    add_segment(project_copy, "forever",
                "{event: purchase, aggregate: count, within: 99999999999d, op: gte, value: 1}")

    issues = issues_of(project_copy)

    assert [(issue.code, issue.location.path) for issue in issues] == [("SEG048", "segments[0].rule.within")]
    assert "at most 36500d" in issues[0].message

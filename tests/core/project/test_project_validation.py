"""Validation of segments projects: the example is clean; each broken copy gives the right located error.

Every broken project is a copy of ``airflow_segprovider/example/segments_project`` with one thing changed. Expected lines and
columns are computed from the text the test writes, so the assertions say *where* a data engineer is
sent, not only *that* something failed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from airflow_segprovider.core.errors import ProjectValidationError, SpecIssue
from airflow_segprovider.core.project.loader import load_project

LIFECYCLE = "segments/lifecycle.yml"  # ends with the 'segments:' list: appended items become segments[7], ...
VALUE = "segments/value.yml"
DESTINATIONS = "destinations.yml"
MODEL = "model.yml"
APPENDED = "segments[7]"  # path of the first segment appended to lifecycle.yml


# --- helpers -------------------------------------------------------------------------------------


def edit(root: Path, relative: str, old: str, new: str) -> int:
    """Replace the single occurrence of ``old`` in ``root/relative`` by ``new``; return the line ``new`` starts on."""
    file = root / relative
    text = file.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur exactly once in {relative}"
    start = text.index(old)
    file.write_text(text.replace(old, new), encoding="utf-8")
    return text[:start].count("\n") + 1


def append(root: Path, relative: str, addition: str) -> int:
    """Append ``addition`` to ``root/relative``; return the line the addition starts on."""
    file = root / relative
    text = file.read_text(encoding="utf-8") if file.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text + addition, encoding="utf-8")
    return text.count("\n") + 1


def position_of(file: Path, needle: str) -> tuple[int, int]:
    """1-based (line, column) of the only occurrence of ``needle`` in ``file``."""
    text = file.read_text(encoding="utf-8")
    assert text.count(needle) == 1, f"{needle!r} must occur exactly once in {file.name}"
    before = text[: text.index(needle)]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def line_of(file: Path, needle: str) -> int:
    return position_of(file, needle)[0]


def issues_of(root: Path) -> list[SpecIssue]:
    with pytest.raises(ProjectValidationError) as caught:
        load_project(root)
    assert caught.value.issues, "a ProjectValidationError must carry at least one issue"
    return caught.value.issues


def only_issue(root: Path, code: str) -> SpecIssue:
    """The project's single issue, which must have ``code`` (follow-on errors would be noise)."""
    issues = issues_of(root)
    assert [issue.code for issue in issues] == [code], "\n".join(issue.format() for issue in issues)
    return issues[0]


def same_file(location_file: str, expected: Path) -> bool:
    return Path(location_file).resolve() == expected.resolve()


def assert_at(issue: SpecIssue, file: Path, line: int | None, path: str | None = None,
              column: int | None = None) -> None:
    where = issue.format()
    assert same_file(issue.location.file, file), where
    assert issue.location.line == line, where
    if column is not None:
        assert issue.location.column == column, where
    if path is not None:
        assert issue.location.path == path, where


def add_segment(root: Path, body: str) -> tuple[Path, int]:
    """Append one segment (YAML lines indented for the list in lifecycle.yml); return file and start line."""
    return root / LIFECYCLE, append(root, LIFECYCLE, body)


# --- the example project -------------------------------------------------------------------------


def test_example_project_is_valid(example_project: Path) -> None:
    project = load_project(example_project)

    assert project.name == "retail_demo"
    assert set(project.segments) >= {"vip", "churned", "win_back", "spring_promo", "at_risk"}
    assert set(project.destinations) == {"mailchimp_newsletter", "hubspot_crm", "meta_ads"}
    assert len(project.syncs) == 8
    assert project.dependencies("win_back") == {"churned", "vip"}  # reference + higher priority
    assert project.segments["at_risk"].higher_priority == ("vip", "win_back")
    assert project.segments["spring_promo"].split is not None


def test_example_evaluation_order_puts_dependencies_first(example_project: Path) -> None:
    project = load_project(example_project)
    order = project.evaluation_order()

    assert sorted(order) == sorted(project.segments), "every segment exactly once"
    position = {name: index for index, name in enumerate(order)}
    for name in order:
        for dependency in project.dependencies(name):
            assert position[dependency] < position[name], f"{dependency} must be evaluated before {name}"
    assert position["churned"] < position["win_back"]
    assert position["active_30d"] < position["spring_promo"] and position["vip"] < position["spring_promo"]


def test_example_issue_paths_resolve_from_any_working_directory(example_project: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_project(example_project).name == "retail_demo"


# --- files that cannot be used -------------------------------------------------------------------


def test_yaml_syntax_error_is_located(project_copy: Path) -> None:
    file = project_copy / "segments" / "broken.yml"
    file.write_text("segments:\n  - name: broken_indent\n     description: one space too far\n", encoding="utf-8")

    issue = only_issue(project_copy, "SEG001")

    assert_at(issue, file, line_of(file, "description:"))
    assert "YAML syntax error" in issue.message
    assert "indentation" in issue.hint


def test_yaml_syntax_error_in_a_used_file_gives_no_follow_on_errors(project_copy: Path) -> None:
    # lifecycle.yml declares segments referenced from value.yml and destinations.yml; once it cannot be
    # parsed, "unknown segment 'churned'" for each reference would only bury the real problem.
    start = append(project_copy, LIFECYCLE, "  - name: broken\n    rule: {attribute: plan, op: eq, value: pro\n")

    issue = only_issue(project_copy, "SEG001")

    assert same_file(issue.location.file, project_copy / LIFECYCLE)
    assert issue.location.line is not None and issue.location.line >= start


def test_file_that_is_a_list_not_a_mapping(project_copy: Path) -> None:
    file = project_copy / "extra.yml"
    file.write_text("- name: vip_copy\n  rule: {segment: vip}\n", encoding="utf-8")

    issue = only_issue(project_copy, "SEG002")

    assert_at(issue, file, 1)
    assert "mapping" in issue.message and "list" in issue.message
    assert "segments" in issue.hint


def test_empty_project_folder(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()

    issue = only_issue(folder, "SEG003")

    assert same_file(issue.location.file, folder)
    assert "no project definitions" in issue.message
    assert "segprovider_project.yml" in issue.hint


def test_folder_with_only_an_empty_file(tmp_path: Path) -> None:
    folder = tmp_path / "blank"
    folder.mkdir()
    (folder / "segprovider_project.yml").write_text("", encoding="utf-8")

    issue = only_issue(folder, "SEG003")

    assert same_file(issue.location.file, folder)
    assert "no project definitions" in issue.message


def test_missing_project_folder(tmp_path: Path) -> None:
    issue = only_issue(tmp_path / "does_not_exist", "SEG003")

    assert "does not exist" in issue.message


def test_yaml_alias_bomb_is_refused_not_expanded(project_copy: Path) -> None:
    lines = ['lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):  # 9**10 values if expanded
        lines.append(f"lol{level}: &lol{level} [{', '.join([f'*lol{level - 1}'] * 9)}]")
    file = project_copy / "bomb.yml"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outcome: dict[str, object] = {}

    def load() -> None:
        try:
            load_project(project_copy)
        except ProjectValidationError as exc:
            outcome["issues"] = exc.issues

    started = time.monotonic()
    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=60)

    assert not worker.is_alive(), "loading an alias bomb must not hang"
    assert time.monotonic() - started < 30
    issues = outcome["issues"]
    assert [issue.code for issue in issues] == ["SEG006"]  # type: ignore[union-attr]
    assert same_file(issues[0].location.file, file)  # type: ignore[index]
    assert "alias" in issues[0].hint  # type: ignore[index]


def test_file_larger_than_two_mebibytes_is_refused(project_copy: Path) -> None:
    file = project_copy / "huge.yml"
    padding_line = "# " + "x" * 97 + "\n"
    file.write_text(padding_line * (2 * 1024 * 1024 // len(padding_line) + 100), encoding="utf-8")
    assert file.stat().st_size > 2 * 1024 * 1024

    issue = only_issue(project_copy, "SEG004")

    assert_at(issue, file, None)
    assert f"{file.stat().st_size:,}" in issue.message
    assert "split" in issue.hint


def test_non_utf8_file(project_copy: Path) -> None:
    file = project_copy / "latin1.yml"
    file.write_bytes("segments:\n  - name: caf\u00e9\n    rule: {segment: vip}\n".encode("latin-1"))

    issue = only_issue(project_copy, "SEG004")

    assert same_file(issue.location.file, file)
    assert "UTF-8" in issue.message and "UTF-8" in issue.hint


def test_unknown_yaml_tag_is_an_error_not_a_crash(project_copy: Path) -> None:
    file, _ = add_segment(project_copy, "  - name: tagged\n"
                                        "    rule: {attribute: plan, op: eq, value: !!python/name:os.system x}\n")

    issue = only_issue(project_copy, "SEG001")

    line, column = position_of(file, "!!python")
    assert_at(issue, file, line, f"{APPENDED}.rule.value", column)
    assert "tag" in issue.message


# --- structure (JSON schema) ---------------------------------------------------------------------


def test_duplicate_yaml_key(project_copy: Path) -> None:
    start = edit(project_copy, LIFECYCLE, "    description: Signed up in the last 30 days.\n",
                 "    description: Signed up in the last 30 days.\n    description: Joined recently.\n")

    issue = only_issue(project_copy, "SEG005")

    assert_at(issue, project_copy / LIFECYCLE, start + 1, "segments[0].description", column=5)
    assert "duplicate key 'description'" in issue.message
    assert "remove one" in issue.hint


def test_unknown_top_level_section(project_copy: Path) -> None:
    start = append(project_copy, DESTINATIONS, "\nsegment:\n  - name: typo_section\n")

    issue = only_issue(project_copy, "SEG010")

    assert_at(issue, project_copy / DESTINATIONS, start + 1, "segment", column=1)
    assert "unknown key 'segment'" in issue.message
    assert "segments" in issue.hint and "syncs" in issue.hint


def test_unknown_key_inside_a_rule_points_at_the_key(project_copy: Path) -> None:
    file, _ = add_segment(project_copy, "  - name: typo_key\n    rule: {attribute: plan, op: eq, valeu: pro}\n")

    issue = only_issue(project_copy, "SEG010")

    line, column = position_of(file, "valeu")
    assert_at(issue, file, line, f"{APPENDED}.rule.valeu", column)
    assert "'valeu'" in issue.message
    assert "value" in issue.hint


def test_schema_error_gives_no_follow_on_unknown_reference_errors(project_copy: Path) -> None:
    # 'churned' is referenced by win_back; a schema error in its file must not also yield SEG027 & co.
    line = edit(project_copy, LIFECYCLE, "  - name: churned\n", "  - name: churned\n    owners: crm-team\n") + 1

    issue = only_issue(project_copy, "SEG010")

    assert_at(issue, project_copy / LIFECYCLE, line, "segments[5].owners")


def test_bad_project_version(project_copy: Path) -> None:
    line = edit(project_copy, "segprovider_project.yml", "  version: 1\n", "  version: 2\n")

    issue = only_issue(project_copy, "SEG010")

    assert_at(issue, project_copy / "segprovider_project.yml", line, "project.version")
    assert "2" in issue.message and "1" in issue.message


# --- names and references ------------------------------------------------------------------------


def test_duplicate_segment_name_across_two_files(project_copy: Path) -> None:
    other = project_copy / "zz_more_segments.yml"  # sorts after segments/, so value.yml holds the first 'vip'
    other.write_text("segments:\n  - name: vip\n    rule: {attribute: plan, op: eq, value: pro}\n", encoding="utf-8")

    issue = only_issue(project_copy, "SEG020")

    line, column = position_of(other, "vip")
    assert_at(issue, other, line, "segments[0].name", column)
    assert "duplicate segment name 'vip'" in issue.message
    first = project_copy / VALUE
    assert f"{first}:{line_of(first, '- name: vip')}" in issue.hint, "both definitions must be named"


def test_unknown_attribute_with_did_you_mean(project_copy: Path) -> None:
    file, _ = add_segment(project_copy, "  - name: typo_attr\n"
                                        "    rule: {attribute: lifetime_valu, op: gt, value: 10}\n")

    issue = only_issue(project_copy, "SEG021")

    line, column = position_of(file, "lifetime_valu,")
    assert_at(issue, file, line, f"{APPENDED}.rule.attribute", column)
    assert "'lifetime_valu'" in issue.message
    assert "did you mean 'lifetime_value'" in issue.hint


def test_unknown_event_with_did_you_mean(project_copy: Path) -> None:
    file, start = add_segment(project_copy, "  - name: typo_event\n    rule:\n      event: purchse\n"
                                            "      aggregate: count\n      op: gte\n      value: 1\n")

    issue = only_issue(project_copy, "SEG022")

    assert_at(issue, file, start + 2, f"{APPENDED}.rule.event", column=14)
    assert "'purchse'" in issue.message
    assert "did you mean 'purchase'" in issue.hint


def test_unknown_segment_reference(project_copy: Path) -> None:
    line = edit(project_copy, LIFECYCLE, "- {segment: churned}", "- {segment: churnd}")

    issue = only_issue(project_copy, "SEG027")

    assert_at(issue, project_copy / LIFECYCLE, line, "segments[6].rule.all[0].segment")
    assert "'churnd'" in issue.message
    assert "did you mean 'churned'" in issue.hint


def test_reference_cycle_of_three_segments_names_all_three(project_copy: Path) -> None:
    file = project_copy / "segments" / "loops.yml"
    file.write_text(
        "segments:\n"
        "  - name: loop_a\n    rule: {segment: loop_b}\n"
        "  - name: loop_b\n    rule: {segment: loop_c}\n"
        "  - name: loop_c\n    rule: {segment: loop_a}\n",
        encoding="utf-8",
    )

    issue = only_issue(project_copy, "SEG028")

    assert same_file(issue.location.file, file)
    rule_lines = {line_of(file, f"rule: {{segment: {target}}}") for target in ("loop_a", "loop_b", "loop_c")}
    assert issue.location.line in rule_lines
    assert issue.location.path.endswith(".rule")
    for name in ("loop_a", "loop_b", "loop_c"):
        assert name in issue.message
    assert "break the cycle" in issue.hint


def test_cycle_through_a_priority_group(project_copy: Path) -> None:
    # first_choice references second_choice; the group makes second_choice depend on first_choice.
    file = project_copy / "segments" / "campaigns.yml"
    file.write_text(
        "segments:\n"
        "  - name: first_choice\n    rule: {all: [{segment: second_choice}, {attribute: plan, op: eq, value: pro}]}\n"
        "  - name: second_choice\n    rule: {attribute: country, op: eq, value: DE}\n"
        "priority_groups:\n"
        "  - name: campaign_slots\n    segments: [first_choice, second_choice]\n",
        encoding="utf-8",
    )

    issue = only_issue(project_copy, "SEG028")

    assert same_file(issue.location.file, file)
    assert issue.location.line in {line_of(file, "rule: {all"), line_of(file, "rule: {attribute: country")}
    assert "first_choice" in issue.message and "second_choice" in issue.message
    assert "priority group" in issue.hint


def test_priority_group_lists_unknown_segment(project_copy: Path) -> None:
    line = edit(project_copy, VALUE, "segments: [vip, win_back, at_risk, new_customers]",
                "segments: [vip, win_back, at_risk, new_customer]")

    issue = only_issue(project_copy, "SEG029")

    assert_at(issue, project_copy / VALUE, line, "priority_groups[0].segments[3]")
    assert "'new_customer'" in issue.message
    assert "did you mean 'new_customers'" in issue.hint


def test_priority_group_of_one_segment(project_copy: Path) -> None:
    line = edit(project_copy, VALUE, "segments: [vip, win_back, at_risk, new_customers]", "segments: [vip]")

    issue = only_issue(project_copy, "SEG010")

    _, column = position_of(project_copy / VALUE, "[vip]")
    assert_at(issue, project_copy / VALUE, line, "priority_groups[0].segments", column)
    assert "at least 2 items, has 1" in issue.message


# --- operators and values ------------------------------------------------------------------------


def test_contains_is_not_an_operator_for_numbers(project_copy: Path) -> None:
    file, _ = add_segment(project_copy, "  - name: bad_op\n"
                                        "    rule: {attribute: lifetime_value, op: contains, value: 20}\n")

    issue = only_issue(project_copy, "SEG023")

    line, column = position_of(file, "contains")
    assert_at(issue, file, line, f"{APPENDED}.rule.op", column)
    assert "'contains'" in issue.message and "number" in issue.message
    assert "gte" in issue.hint and "contains" not in issue.hint


def test_within_last_is_not_an_operator_for_strings(project_copy: Path) -> None:
    file, _ = add_segment(project_copy, "  - name: bad_relative\n"
                                        "    rule: {attribute: plan, op: within_last, value: 30d}\n")

    issue = only_issue(project_copy, "SEG023")

    line, column = position_of(file, "within_last, value: 30d}")
    assert_at(issue, file, line, f"{APPENDED}.rule.op", column)
    assert "'within_last'" in issue.message and "string" in issue.message
    assert "starts_with" in issue.hint


@pytest.mark.parametrize(
    ("rule", "value_text", "expected_in_message"),
    [
        pytest.param("{attribute: lifetime_value, op: gte, value: '2000'}", "'2000'", "expected a number",
                     id="string-for-number"),
        pytest.param("{attribute: birth_date, op: lt, value: 31/12/1990}", "31/12/1990", "YYYY-MM-DD",
                     id="date-in-wrong-format"),
        pytest.param("{attribute: birth_date, op: lt, value: 2024-13-45}", "2024-13-45", "not a calendar date",
                     id="impossible-date"),
        pytest.param("{attribute: plan, op: eq, value: [pro, plus]}", "[pro, plus]", "not a list",
                     id="list-for-eq"),
        pytest.param("{attribute: plan, op: in, value: pro}", "pro}", "non-empty list", id="scalar-for-in"),
        pytest.param("{attribute: plan, op: is_null, value: pro}", "pro}", "takes no value", id="is-null-with-value"),
        pytest.param("{attribute: lifetime_value, op: between, value: [500, 100]}", "[500, 100]", "reversed",
                     id="between-reversed"),
        pytest.param("{attribute: is_employee, op: eq, value: 'yes'}", "'yes'", "true or false",
                     id="string-for-boolean"),
        pytest.param("{attribute: signup_at, op: gt, value: yesterday}", "yesterday", "ISO 8601",
                     id="bad-timestamp"),
        pytest.param("{attribute: email, op: matches, value: '([a-z'}", "'([a-z'", "not a valid regular expression",
                     id="bad-regex"),
    ],
)
def test_value_of_the_wrong_kind(project_copy: Path, rule: str, value_text: str, expected_in_message: str) -> None:
    file, _ = add_segment(project_copy, f"  - name: bad_value\n    rule: {rule}\n")

    issue = only_issue(project_copy, "SEG024")

    line, column = position_of(file, value_text)
    assert_at(issue, file, line, f"{APPENDED}.rule.value", column)
    assert expected_in_message in issue.message
    attribute = rule.split("attribute: ")[1].split(",")[0]
    assert f"attribute {attribute!r}" in issue.message, "the message names what is compared"


def test_operator_without_its_value(project_copy: Path) -> None:
    file, _ = add_segment(project_copy, "  - name: no_value\n    rule: {attribute: plan, op: eq}\n")

    issue = only_issue(project_copy, "SEG024")

    line, column = position_of(file, "eq}")
    assert_at(issue, file, line, f"{APPENDED}.rule.op", column)
    assert "needs a value" in issue.message


@pytest.mark.parametrize(
    ("segment", "needle", "path"),
    [
        pytest.param("  - name: bad_window\n    rule: {event: purchase, aggregate: count, within: 30 days, op: gte,"
                     " value: 1}\n", "30 days, op", f"{APPENDED}.rule.within", id="event-window"),
        pytest.param("  - name: bad_window\n    rule: {attribute: signup_at, op: within_last, value: 30 days}\n",
                     "30 days}", f"{APPENDED}.rule.value", id="relative-operator"),
        pytest.param("  - name: bad_window\n    rule: {attribute: signup_at, op: more_than_ago, value: 1mo}\n",
                     "1mo}", f"{APPENDED}.rule.value", id="months-are-not-a-fixed-duration"),
    ],
)
def test_bad_duration(project_copy: Path, segment: str, needle: str, path: str) -> None:
    file, _ = add_segment(project_copy, segment)
    duration = needle.split(",")[0].rstrip("}")

    issue = only_issue(project_copy, "SEG048")

    line, column = position_of(file, needle)
    assert_at(issue, file, line, path, column)
    assert f"{duration!r} is not a duration" in issue.message
    assert "'30d'" in issue.message, "the message shows what is accepted"


def test_filter_on_unknown_event_property(project_copy: Path) -> None:
    line = edit(project_copy, VALUE, "      where: [{property: status, op: eq, value: completed}]\n",
                "      where: [{property: stauts, op: eq, value: completed}]\n")

    issue = only_issue(project_copy, "SEG025")

    assert_at(issue, project_copy / VALUE, line, "segments[2].rule.where[0].property")
    assert "'stauts'" in issue.message and "'orders'" in issue.message
    assert "did you mean 'status'" in issue.hint


# --- aggregates ----------------------------------------------------------------------------------


def test_sum_without_a_property(project_copy: Path) -> None:
    file, start = add_segment(project_copy, "  - name: no_property\n    rule:\n      event: orders\n"
                                            "      aggregate: sum\n      op: gt\n      value: 100\n")

    issue = only_issue(project_copy, "SEG026")

    assert_at(issue, file, start + 2, f"{APPENDED}.rule")
    assert "'sum'" in issue.message and "property" in issue.message
    assert "property: amount" in issue.hint


def test_sum_of_a_string_property(project_copy: Path) -> None:
    file, _ = add_segment(project_copy, "  - name: text_sum\n"
                                        "    rule: {event: orders, aggregate: sum, property: status,"
                                        " op: gt, value: 1}\n")

    issue = only_issue(project_copy, "SEG026")

    line, column = position_of(file, "status,")
    assert_at(issue, file, line, f"{APPENDED}.rule.property", column)
    assert "'status' is string" in issue.message
    assert "number property" in issue.hint


def test_count_takes_no_property(project_copy: Path) -> None:
    file, _ = add_segment(project_copy, "  - name: count_prop\n"
                                        "    rule: {event: orders, aggregate: count, property: amount,"
                                        " op: gt, value: 1}\n")

    issue = only_issue(project_copy, "SEG026")

    line, column = position_of(file, "amount,")
    assert_at(issue, file, line, f"{APPENDED}.rule.property", column)
    assert "takes no 'property'" in issue.message


# --- splits --------------------------------------------------------------------------------------


def test_split_arms_must_sum_to_100(project_copy: Path) -> None:
    line = edit(project_copy, VALUE, "{name: treatment, percent: 90}", "{name: treatment, percent: 80}")

    issue = only_issue(project_copy, "SEG030")  # and no follow-on error for the sync of arm 'treatment'

    assert_at(issue, project_copy / VALUE, line, "segments[5].split.arms")
    assert "sum to 90%" in issue.message and "'spring_promo'" in issue.message
    assert "100" in issue.hint


def test_split_percents_with_two_decimals_are_valid(project_copy: Path) -> None:
    # 33.33 is a multiple of 0.01 as written, although 33.33 / 0.01 is not a whole number in floating point
    edit(project_copy, VALUE, "{name: treatment, percent: 90}\n        - {name: holdout, percent: 10}",
         "{name: treatment, percent: 33.33}\n        - {name: holdout, percent: 33.33}\n"
         "        - {name: control, percent: 33.34}")

    split = load_project(project_copy).segments["spring_promo"].split

    assert split is not None
    assert [(arm.name, arm.percent) for arm in split.arms] == [("treatment", 33.33), ("holdout", 33.33),
                                                                ("control", 33.34)]
    assert [high - low for _, low, high in split.bucket_bounds()] == [3333, 3333, 3334]


def test_split_percent_with_three_decimals(project_copy: Path) -> None:
    line = edit(project_copy, VALUE, "{name: holdout, percent: 10}", "{name: holdout, percent: 9.995}")

    issue = only_issue(project_copy, "SEG010")

    _, column = position_of(project_copy / VALUE, "9.995")
    assert_at(issue, project_copy / VALUE, line, "segments[5].split.arms[1].percent", column)
    assert "9.995" in issue.message and "0.01" in issue.hint


def test_duplicate_split_arm(project_copy: Path) -> None:
    edit(project_copy, VALUE, "{name: holdout, percent: 10}", "{name: treatment, percent: 10}")

    issue = only_issue(project_copy, "SEG031")

    assert_at(issue, project_copy / VALUE, line_of(project_copy / VALUE, "{name: treatment, percent: 90}"),
              "segments[5].split.arms")
    assert "repeats arm 'treatment'" in issue.message
    assert "own name" in issue.hint


# --- destinations and syncs ----------------------------------------------------------------------


@pytest.mark.parametrize("blank", ['""', "'   '"])
def test_destination_with_empty_connection_id(project_copy: Path, blank: str) -> None:
    line = edit(project_copy, DESTINATIONS, "connection_id: segprovider_meta", f"connection_id: {blank}")

    issue = only_issue(project_copy, "SEG040")  # its sync is not reported again as "unknown destination"

    assert_at(issue, project_copy / DESTINATIONS, line, "destinations[2].connection_id")
    assert "'meta_ads'" in issue.message
    assert "Airflow connection" in issue.hint


def test_field_mapping_to_unknown_attribute(project_copy: Path) -> None:
    line = edit(project_copy, DESTINATIONS, "FNAME: first_name", "FNAME: first_nam")

    issue = only_issue(project_copy, "SEG044")

    assert_at(issue, project_copy / DESTINATIONS, line, "destinations[0].field_mapping.FNAME", column=14)
    assert "'FNAME'" in issue.message and "'first_nam'" in issue.message
    assert "did you mean 'first_name'" in issue.hint


def test_destination_identity_must_be_an_attribute(project_copy: Path) -> None:
    line = edit(project_copy, DESTINATIONS, "    channel: ads\n    identity: email\n",
                "    channel: ads\n    identity: e_mail\n") + 1

    issue = only_issue(project_copy, "SEG046")

    assert_at(issue, project_copy / DESTINATIONS, line, "destinations[2].identity")
    assert "did you mean 'email'" in issue.hint


def test_destination_channel_must_be_a_consent_channel(project_copy: Path) -> None:
    line = edit(project_copy, DESTINATIONS, "    channel: ads\n", "    channel: adverts\n")

    issue = only_issue(project_copy, "SEG045")

    assert_at(issue, project_copy / DESTINATIONS, line, "destinations[2].channel")
    assert "'adverts'" in issue.message
    assert "ads" in issue.hint


def test_sync_to_unknown_destination(project_copy: Path) -> None:
    line = edit(project_copy, DESTINATIONS, "{segment: win_back, destination: meta_ads,",
                "{segment: win_back, destination: meta_adds,")

    issue = only_issue(project_copy, "SEG042")

    _, column = position_of(project_copy / DESTINATIONS, "meta_adds")
    assert_at(issue, project_copy / DESTINATIONS, line, "syncs[3].destination", column)
    assert "'meta_adds'" in issue.message
    assert "did you mean 'meta_ads'" in issue.hint


def test_sync_of_unknown_segment(project_copy: Path) -> None:
    line = edit(project_copy, DESTINATIONS, "{segment: high_intent,", "{segment: high_intnet,")

    issue = only_issue(project_copy, "SEG042")

    assert_at(issue, project_copy / DESTINATIONS, line, "syncs[4].segment")
    assert "did you mean 'high_intent'" in issue.hint


def test_sync_of_a_split_arm_that_does_not_exist(project_copy: Path) -> None:
    line = edit(project_copy, DESTINATIONS, "arm: treatment,", "arm: treatmnt,")

    issue = only_issue(project_copy, "SEG043")

    assert_at(issue, project_copy / DESTINATIONS, line, "syncs[5].arm")
    assert "'spring_promo'" in issue.message and "'treatmnt'" in issue.message
    assert "treatment" in issue.hint and "holdout" in issue.hint


def test_sync_min_size_above_max_size(project_copy: Path) -> None:
    line = edit(project_copy, DESTINATIONS, "gates: [freshness, consent]}",
                "gates: [freshness, consent], min_size: 500, max_size: 10}")

    issue = only_issue(project_copy, "SEG050")

    assert_at(issue, project_copy / DESTINATIONS, line, "syncs[4].min_size")


# --- sections ------------------------------------------------------------------------------------


def test_model_declared_twice(project_copy: Path) -> None:
    other = project_copy / "model_copy.yml"
    other.write_text((project_copy / MODEL).read_text(encoding="utf-8"), encoding="utf-8")

    issue = only_issue(project_copy, "SEG011")

    assert_at(issue, other, 1, "model", column=1)  # model.yml sorts first: the copy is the extra one
    assert "more than once" in issue.message
    assert f"{project_copy / MODEL}:1" in issue.hint


def test_project_without_a_project_section(project_copy: Path) -> None:
    (project_copy / "segprovider_project.yml").unlink()

    issue = only_issue(project_copy, "SEG011")

    assert "'project:'" in issue.message
    assert same_file(issue.location.file, project_copy)


# --- every issue in one run ----------------------------------------------------------------------


def test_three_unrelated_errors_in_two_files_are_all_reported(project_copy: Path) -> None:
    kind_line = edit(project_copy, DESTINATIONS, "kind: hubspot", "kind: hubspott")
    first = append(project_copy, LIFECYCLE,
                   "  - name: typo_attr\n    rule: {attribute: contry, op: eq, value: DE}\n"
                   "  - name: bad_window\n    rule: {event: purchase, aggregate: count, within: 30 days, op: gte,"
                   " value: 1}\n")

    issues = issues_of(project_copy)

    found = {(issue.code, Path(issue.location.file).name, issue.location.line) for issue in issues}
    assert found == {
        ("SEG010", "destinations.yml", kind_line),
        ("SEG021", "lifecycle.yml", first + 1),
        ("SEG048", "lifecycle.yml", first + 3),
    }, "\n".join(issue.format() for issue in issues)

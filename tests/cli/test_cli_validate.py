"""The ``segprovider`` command line: exit codes, located errors on stderr, never a traceback.

Subprocess tests run the installed console script, as a data engineer would; the rest call
:func:`airflow_segprovider.cli.main.main` in-process, which is faster and checks the same code.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_segprovider.cli.main import EXIT_ERROR, EXIT_OK, main
from airflow_segprovider.core.project.loader import load_project

SEGPROVIDER = Path(sys.executable).parent / "segprovider"
ISSUE_LINE = re.compile(r"^(?P<file>\S+):(?P<line>\d+):(?P<column>\d+): (?P<code>SEG\d{3}) ", re.MULTILINE)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert SEGPROVIDER.exists(), f"console script not installed next to {sys.executable}"
    return subprocess.run([str(SEGPROVIDER), *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def break_attribute(project: Path) -> tuple[str, int, int]:
    """Misspell an attribute in lifecycle.yml; return its path relative to the project's parent, line, column."""
    file = project / "segments" / "lifecycle.yml"
    text = file.read_text(encoding="utf-8").replace("attribute: last_seen_at, op: more_than_ago",
                                                    "attribute: last_seen, op: more_than_ago")
    file.write_text(text, encoding="utf-8")
    offset = text.index("last_seen, op")
    line = text[:offset].count("\n") + 1
    column = offset - text.rfind("\n", 0, offset)
    return f"{project.name}/segments/lifecycle.yml", line, column


# --- subprocess: the installed console script ----------------------------------------------------


def test_validate_example_project_exits_0_and_says_ok(example_project: Path, tmp_path: Path) -> None:
    result = run_cli("validate", str(example_project), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK")
    assert "'retail_demo'" in result.stdout and "14 segments" in result.stdout
    assert result.stderr == ""


def test_validate_broken_project_exits_1_with_located_errors(project_copy: Path) -> None:
    file, line, column = break_attribute(project_copy)

    result = run_cli("validate", project_copy.name, cwd=project_copy.parent)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    located = [match.groupdict() for match in ISSUE_LINE.finditer(result.stderr)]
    assert located == [{"file": file, "line": str(line), "column": str(column), "code": "SEG021"}], result.stderr
    assert "did you mean 'last_seen_at'" in result.stderr
    assert result.stdout == ""


def test_validate_missing_folder_exits_non_zero_without_traceback(tmp_path: Path) -> None:
    result = run_cli("validate", "no_such_project", cwd=tmp_path)

    assert result.returncode != 0
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_describe_example_project(example_project: Path, tmp_path: Path) -> None:
    result = run_cli("describe", str(example_project), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    project = load_project(example_project)
    for name in project.segments:
        assert re.search(rf"^segment {name}\b", result.stdout, re.MULTILINE), f"segment {name} not described"
    for name in project.destinations:
        assert re.search(rf"^  {name}: ", result.stdout, re.MULTILINE), f"destination {name} not listed"
    assert "depends on: churned, vip" in result.stdout  # win_back: a reference and a higher priority


# --- in-process: main() --------------------------------------------------------------------------


def test_main_describe_lists_dependencies_and_destinations_in_evaluation_order(
        example_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", str(example_project)]) == EXIT_OK
    out = capsys.readouterr().out

    project = load_project(example_project)
    blocks = {block.split("\n", 1)[0].split(":")[0].removeprefix("segment "): block
              for block in out.split("\n\n") if block.startswith("segment ")}
    assert set(blocks) == set(project.segments)
    for name, block in blocks.items():
        dependencies = sorted(project.dependencies(name))
        if dependencies:
            assert f"depends on: {', '.join(dependencies)}" in block
        else:
            assert "depends on" not in block
    assert "syncs to: mailchimp_newsletter (mirror, @daily); hubspot_crm (mirror, @daily)" in blocks["vip"]
    assert "mailchimp_newsletter [arm treatment]" in blocks["spring_promo"]
    assert "owned by: centralized model (segments_centralized)" in blocks["vip"]
    assert re.search(r"owned by: distributed model \(segments_distributed\), reconcile policy most_recent "
                     r"\(\S*reconcile\.yml:\d+:\d+\)", blocks["sales_priority"]), blocks["sales_priority"]
    printed_order = [line.split(":")[0].removeprefix("segment ") for line in out.splitlines()
                     if line.startswith("segment ")]
    assert printed_order == project.evaluation_order()


@pytest.mark.parametrize("selector", ["sales_priority__hubspot_crm", "sales_priority"])
def test_sync_refuses_a_sync_the_distributed_model_owns(example_project: Path, tmp_path: Path, selector: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "warehouse.duckdb"

    assert main(["sync", str(example_project), "--sync", selector, "--db", str(db)]) == EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.out == ""
    error = captured.err
    assert "segment 'sales_priority' has a reconcile policy (most_recent)" in error
    assert re.search(r"at \S*reconcile\.yml:\d+:\d+", error), error  # where the policy is declared
    assert "segprovider distributed PROJECT --segment sales_priority" in error  # the fix
    assert "Traceback" not in error
    assert not db.exists()  # refused before the warehouse was opened, nothing was sent


def test_main_validate_ok(example_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(example_project)]) == EXIT_OK
    assert capsys.readouterr().out.startswith("OK")


def test_main_describe_of_broken_project_fails_like_validate(project_copy: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    break_attribute(project_copy)

    assert main(["describe", str(project_copy)]) == EXIT_ERROR
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "SEG021" in captured.err


@pytest.mark.parametrize(
    ("file", "content", "code"),
    [
        pytest.param("bad.yml", "segments: [", "SEG001", id="syntax-error"),
        pytest.param("tagged.yml", "segments:\n  - name: x\n    rule: !custom {}\n", "SEG001", id="unknown-tag"),
        pytest.param("date.yml", "segments:\n  - name: x\n"
                                 "    rule: {attribute: birth_date, op: eq, value: 2024-13-45}\n",
                     "SEG024", id="impossible-date"),
        pytest.param("list.yml", "- just\n- a list\n", "SEG002", id="list-file"),
        pytest.param("latin1.yml", b"segments:\n  - name: caf\xe9\n", "SEG004", id="not-utf8"),
    ],
)
def test_main_reports_unusable_input_as_errors_not_exceptions(project_copy: Path, capsys: pytest.CaptureFixture[str],
                                                              file: str, content: str | bytes, code: str) -> None:
    target = project_copy / file
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content, encoding="utf-8")

    assert main(["validate", str(project_copy)]) == EXIT_ERROR
    err = capsys.readouterr().err
    codes = [match["code"] for match in ISSUE_LINE.finditer(err)] or re.findall(r"^\S+: (SEG\d{3}) ", err, re.M)
    assert codes == [code], err
    assert str(target) in err


def test_main_without_a_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([])
    assert exited.value.code == 2
    assert "usage: segprovider" in capsys.readouterr().err

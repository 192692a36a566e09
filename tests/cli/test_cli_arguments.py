"""Every ``segprovider`` argument is checked where it is parsed: a bad value is a usage error naming it.

A value that would spin forever (``--concurrency 0``), reach SQL as a negative LIMIT (``--sample -5``)
or overflow date arithmetic (``--as-of 0001-01-01``) is refused by argparse (exit 2) with the
argument's name and the accepted range, before any project or warehouse is opened.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_segprovider.cli.main import EXIT_USAGE, main


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("value", ["0", "-3"])
def test_sync_refuses_concurrency_below_one(project_copy: Path, value: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["sync", str(project_copy), "--concurrency", value], capsys)

    assert "argument --concurrency" in err and ">= 1" in err and repr(value) in err


def test_sync_refuses_batch_size_below_one(project_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["sync", str(project_copy), "--batch-size", "0"], capsys)

    assert "argument --batch-size" in err and ">= 1" in err


def test_preview_refuses_a_negative_sample(project_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["preview", str(project_copy), "vip", "--sample", "-5"], capsys)

    assert "argument --sample" in err and ">= 0" in err


@pytest.mark.parametrize("command", [["evaluate"], ["preview", "vip"], ["compile"], ["sync"], ["explain", "vip", "1"]])
@pytest.mark.parametrize("value", ["0001-01-01", "9999-12-31T23:59:59", "1899-12-31"])
def test_as_of_outside_the_supported_range_is_refused_naming_the_range(
        project_copy: Path, command: list[str], value: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [command[0], str(project_copy), *command[1:], "--as-of", value]

    err = usage_error(argv, capsys)

    assert "argument --as-of" in err and "1900-01-01" in err and "2999-12-31" in err


def test_unparsable_as_of_is_a_usage_error_naming_the_argument(project_copy: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["evaluate", str(project_copy), "--as-of", "yesterday"], capsys)

    assert "argument --as-of" in err and "ISO 8601" in err


def test_as_of_with_an_offset_is_read_as_utc(project_copy: Path) -> None:
    from airflow_segprovider.cli.main import build_parser

    args = build_parser().parse_args(["evaluate", str(project_copy), "--as-of", "2026-11-24T02:00:00+02:00"])

    assert args.as_of.isoformat() == "2026-11-24T00:00:00"


@pytest.mark.parametrize(("argv", "argument"), [
    (["generate", "--customers", "0"], "--customers"),
    (["generate", "--customers", "100000000000"], "--customers"),
    (["generate", "--customers", "10", "--seed", "-1"], "--seed"),
    (["generate", "--customers", "10", "--events-per-customer", "nan"], "--events-per-customer"),
    (["generate", "--customers", "10", "--events-per-customer", "inf"], "--events-per-customer"),
    (["generate", "--customers", "10", "--events-per-customer", "-1"], "--events-per-customer"),
    (["generate", "--customers", "10", "--anchor", "0001-01-01"], "--anchor"),
    (["distributed", "project", "--conflicts", "-1"], "--conflicts"),
])
def test_other_numeric_arguments_are_checked(argv: list[str], argument: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(argv, capsys)

    assert f"argument {argument}" in err

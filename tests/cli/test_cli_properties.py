"""Property: whatever a user types or writes, ``segprovider`` answers with a message, never a traceback.

Two generated inputs, each run through :func:`airflow_segprovider.cli.main.main` in-process (stderr
and stdout captured):

* **arguments** for every command and option of the real parser (walked from
  :func:`~airflow_segprovider.cli.main.build_parser`, so a new option is covered the day it is added),
  with values drawn from one pool of hostile and ordinary texts: negative, zero and huge numbers,
  nan/inf, dates out of range, the project, a DuckDB file, a folder, a CSV file, a missing path;
* **project files**: a copy of the example project with one YAML value replaced (wrong type, nan/inf,
  huge numbers, durations), a key added, a rule nested deeper than allowed, or a file emptied or
  broken; then ``validate``, ``compile`` and ``evaluate``.

Each run must end in an exit code (argparse's ``SystemExit`` included), print no ``Traceback``, and a
failing run must name what is at fault: an argument, a value given, a file (with a ``SEG`` code) or a
field or name in quotes. A catch-all "something went wrong" does not pass.

Not generated: ``sandbox`` (starts a server and waits), ``demo`` (runs the DAG twice, minutes) and
``land`` (writes 50,000 customers of Parquet files by default), the long-running commands.
The budget is fixed (``max_examples``, derandomized) so the test stays under a minute.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_segprovider.cli.main import build_parser, main
from airflow_segprovider.example import EXAMPLE_PROJECT

#: Commands left out of the generated set, and why.
LONG_RUNNING = {
    "sandbox": "starts the destination sandbox server and serves until stopped",
    "demo": "runs the segments_centralized DAG for two days (minutes)",
    "land": "writes landing files of 50,000 customers by default",
}
AS_OF = "2026-11-24"
#: A message names its culprit: an argument, a SEG code with its file, a quoted name, a path, a variable.
NAMED = re.compile(r"argument |arguments are required: \w+|--[a-z][a-z-]+|SEG\d{3}|'[^']*'|\"[^\"]+\"|/|"
                   r"AIRFLOW_CONN_\w+|invalid choice")

HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
#: ~0.05 s per command line, ~0.2 s per mutated project (validate, compile, evaluate): ~35 s in all, on 2 busy cores
ARGUMENT_BUDGET = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                           suppress_health_check=HEALTH)
PROJECT_BUDGET = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                          suppress_health_check=HEALTH)


@dataclass
class World:
    """What one example runs against: a fresh project copy, a warehouse with data, and odd paths."""

    project: Path
    db: Path
    folder: Path
    csv: Path
    missing: Path


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project copy and a small warehouse (300 customers, evaluated once), copied for each example."""
    root = tmp_path_factory.mktemp("cli-properties")
    shutil.copytree(EXAMPLE_PROJECT, root / "project", ignore=shutil.ignore_patterns("landing", "*.duckdb"))
    assert main(["generate", "--customers", "300", "--db", str(root / "warehouse.duckdb")]) == 0
    assert main(["evaluate", str(root / "project"), "--db", str(root / "warehouse.duckdb"), "--as-of", AS_OF]) == 0
    return root


@pytest.fixture
def fresh(template: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """A factory of fresh worlds (one per hypothesis example), each the working directory while it runs.

    (A value such as ``1`` given as ``--db`` is a relative path: it must land in the example's folder.)
    No destination credentials are in the environment.
    """
    import os

    for name in [n for n in os.environ if n.startswith("AIRFLOW_CONN_")]:
        monkeypatch.delenv(name)

    def make() -> World:
        root = tmp_path_factory.mktemp("example")
        shutil.copytree(template / "project", root / "project")
        shutil.copy(template / "warehouse.duckdb", root / "warehouse.duckdb")
        (root / "folder").mkdir()
        (root / "customers.csv").write_text("customer_id,email\n1,a@example.com\n")
        monkeypatch.chdir(root)
        return World(root / "project", root / "warehouse.duckdb", root / "folder", root / "customers.csv",
                     root / "no" / "such.duckdb")

    return make


def run(argv: list[str]) -> tuple[int, str]:
    """``main(argv)`` in-process: its exit code and everything it printed. Any exception fails the test."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = main(argv)
        except SystemExit as exited:  # argparse's usage errors and --help
            code = exited.code if isinstance(exited.code, int) else 2
    return code, out.getvalue()


def fault_message(output: str) -> str:
    """What a failing run says is wrong: from its ``error:`` line on, never argparse's usage lines.

    argparse prints ``usage: segprovider sync [-h] [--as-of AS_OF] ...`` before its ``error:`` line; that
    usage names options and paths whatever the error is, so it must not count as naming the culprit. A
    run without an ``error:`` line (project validation, one sync of several failing) is judged on its
    whole output, its usage block left out.
    """
    lines = output.splitlines()
    errors = [i for i, line in enumerate(lines) if re.search(r"(^|: )error: ", line)]
    if errors:  # the program's name before "error:" ("segprovider sync: ") names nothing either
        first = lines[errors[0]]
        return "\n".join([first[first.index("error: "):], *lines[errors[0] + 1:]])
    kept, in_usage = [], False
    for line in lines:
        if line.startswith("usage: "):
            in_usage = True
        elif in_usage and (not line.strip() or not line.startswith(" ")):
            in_usage = False
        if not in_usage:
            kept.append(line)
    return "\n".join(kept)


def assert_answered(argv: list[str], code: int, output: str) -> None:
    assert "Traceback" not in output, f"{argv}\n{output}"
    if code == 0:
        return
    message = fault_message(output)
    given_values = [part.split("=", 1)[-1] for part in argv[1:] if len(part.split("=", 1)[-1].strip()) >= 3]
    named = NAMED.search(message) or any(value in message for value in given_values)
    assert message.strip() and named, f"exit {code} without naming what is at fault: {argv}\n{output}"


def test_the_culprit_is_read_from_the_error_line_not_the_usage() -> None:
    usage = ("usage: segprovider sync [-h] [--as-of AS_OF] [--db DB] project\n"
             "segprovider sync: error: something went wrong\n")
    assert fault_message(usage) == "error: something went wrong"
    with pytest.raises(AssertionError, match="without naming what is at fault"):
        assert_answered(["sync", "p"], 2, usage)
    assert_answered(["sync", "p"], 2, usage.replace("something went wrong", "argument --as-of: not a date"))


# --- arguments, from the real parser ---------------------------------------------------------------


def commands() -> dict[str, argparse.ArgumentParser]:
    """Every sub-command of ``segprovider`` (an alias once), except the long-running ones."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: dict[int, tuple[str, argparse.ArgumentParser]] = {}
    for name, command in sub.choices.items():
        found.setdefault(id(command), (name, command))
    return {name: command for name, command in found.values() if name not in LONG_RUNNING}


COMMANDS = commands()


def value_pool(world: World) -> st.SearchStrategy[str]:
    ordinary = ["1", "3", "200", AS_OF, "2026-11-24T06:00:00+02:00", "vip", "at_risk", "1.5", "duckdb",
                str(world.project), str(world.db)]
    hostile = ["-5", "-1", "0", "99999999999", "1e3", "nan", "inf", "-inf", "0001-01-01", "1899-12-31",
               "9999-12-31T23:59:59", "yesterday", "", " ", "no_such_segment", "'; DROP TABLE customers; --",
               str(world.folder), str(world.csv), str(world.missing)]
    return st.one_of(st.sampled_from(ordinary), st.sampled_from(hostile), st.text(max_size=8))


@st.composite
def command_lines(draw: st.DrawFn, world: World) -> list[str]:
    """One command with its positionals and up to three options valued from the pool (flags at random).

    Few options per line, so most lines get past argparse to the project, the warehouse and the command
    itself; the project positional is the real project and ``--db`` the real warehouse unless drawn.
    """
    name = draw(st.sampled_from(sorted(COMMANDS)), label="command")
    values = value_pool(world)
    actions = [a for a in COMMANDS[name]._actions if not isinstance(a, argparse._HelpAction)]
    valued = [a for a in actions if a.option_strings and a.nargs != 0]
    drawn = draw(st.lists(st.sampled_from(valued), max_size=3, unique_by=id), label="options") if valued else []
    positionals: list[str] = []
    options: list[str] = []
    for action in actions:
        if not action.option_strings:
            pool = st.one_of(st.sampled_from(sorted(action.choices)), values) if action.choices else values
            if action.dest == "project":
                pool = st.one_of(st.just(str(world.project)), st.just(str(world.project)), pool)
            positionals.append(draw(pool))
            continue
        flag = action.option_strings[-1]
        if action.nargs == 0:
            if draw(st.booleans()):
                options.append(flag)
            continue
        if action in drawn or action.required:
            pool = st.one_of(st.sampled_from(sorted(map(str, action.choices))), values) if action.choices else values
            repeats = draw(st.integers(1, 2)) if isinstance(action, argparse._AppendAction) else 1
            options.extend(f"{flag}={draw(pool)}" for _ in range(repeats))
        elif flag == "--db":
            options.append(f"--db={world.db}")
    return [name, *options, *positionals]


def test_the_commands_are_read_from_the_parser() -> None:
    assert {"validate", "compile", "preview", "evaluate", "sync", "ingest", "distributed", "generate"} <= set(COMMANDS)
    assert not set(LONG_RUNNING) & set(COMMANDS)
    assert "--concurrency" in COMMANDS["sync"]._option_string_actions


@ARGUMENT_BUDGET
@given(data=st.data())
def test_generated_arguments_never_end_in_a_traceback(fresh, data: st.DataObject) -> None:
    world = fresh()
    argv = data.draw(command_lines(world), label="argv")

    code, output = run(argv)

    assert_answered(argv, code, output)


# --- project files, mutated ----------------------------------------------------------------------


MUTANTS: list[Any] = ["text", "", 0, -1, 1, 10**30, -(10**30), 1.5, math.nan, math.inf, -math.inf, True, None,
                      [], {}, ["a"], {"x": 1}, "2999-01-01", "99999999999d", "0d", "1e999"]


def nested(depth: int) -> dict[str, Any]:
    rule: dict[str, Any] = {"attribute": "country", "op": "eq", "value": "DE"}
    for _ in range(depth):
        rule = {"all": [rule]}
    return rule


def paths_of(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            found += paths_of(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += paths_of(value, (*path, index))
    return found


def replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return data


@st.composite
def mutated_projects(draw: st.DrawFn, world: World) -> str:
    """Mutate one file of ``world.project`` in place; return a description of the mutation."""
    files = sorted(p for p in world.project.rglob("*.yml"))
    file = draw(st.sampled_from(files), label="file")
    kind = draw(st.sampled_from(["value", "value", "value", "unknown_key", "deep_rule", "empty", "broken_yaml",
                                 "deep_yaml"]), label="kind")
    if kind == "empty":
        file.write_text("")
        return f"{file.name}: emptied"
    if kind == "broken_yaml":
        file.write_text(file.read_text() + "\n  : [unclosed\n")
        return f"{file.name}: broken"
    if kind == "deep_yaml":
        depth = draw(st.sampled_from([100, 250, 3000]))
        file.write_text("segments:\n  - name: deep\n    rule: " + "{all: [" * depth + "{attribute: country, op: eq, "
                        "value: DE}" + "]}" * depth + "\n")
        return f"{file.name}: rule nested {depth} deep (text)"
    data = yaml.safe_load(file.read_text())
    path = draw(st.sampled_from(paths_of(data)), label="path")
    if kind == "unknown_key":
        target = data
        for part in path:
            target = target[part]
        if isinstance(target, dict):
            target["surprise_key"] = draw(st.sampled_from(MUTANTS))
    elif kind == "deep_rule":
        data = replace(data, path, nested(draw(st.sampled_from([33, 250]))))
    else:
        data = replace(data, path, draw(st.sampled_from(MUTANTS), label="value"))
    file.write_text(yaml.safe_dump(data, sort_keys=False))
    return f"{file.name}: {kind} at {path}"


@PROJECT_BUDGET
@given(data=st.data())
def test_mutated_project_files_never_end_in_a_traceback(fresh, data: st.DataObject) -> None:
    world = fresh()
    data.draw(mutated_projects(world), label="mutation")

    for argv in (["validate", str(world.project)],
                 ["compile", str(world.project), f"--as-of={AS_OF}"],
                 ["evaluate", str(world.project), f"--db={world.db}", f"--as-of={AS_OF}"]):
        code, output = run(argv)
        assert_answered(argv, code, output)
        if argv[0] == "validate" and code != 0:
            assert re.search(r"SEG\d{3}", output), output  # located, project errors: no need to go on
            break

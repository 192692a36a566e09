"""``segprovider sandbox``: serving as before, and the seeding and editing operations it forwards to the sandbox.

The provider never imports the sandbox, so it declares the operations itself and forwards them to
``python -m segprovider_sandbox.admin``; these tests check the two parsers agree, that serving options
still parse exactly as compose and the README give them, and that an operation typed in a shell changes
what a running sandbox serves.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from airflow_segprovider.cli.main import build_parser, main
from airflow_segprovider.cli.sandbox import OPERATIONS, admin_arguments, sandbox_arguments, sandbox_process
from segprovider_sandbox import DEFAULT_MAILCHIMP_API_KEY, serve
from segprovider_sandbox.admin.cli import build_parser as build_admin_parser

if TYPE_CHECKING:
    from collections.abc import Iterator

    from segprovider_sandbox import RunningSandbox

SEGPROVIDER = Path(sys.executable).parent / "segprovider"

#: One command line per operation, with every argument it takes.
SAMPLES = {
    "seed": ["seed", "--db", "state.db"],
    "lists": ["lists", "--vendor", "meta", "--db", "state.db"],
    "members": ["members", "vip", "--vendor", "hubspot"],
    "add-member": ["add-member", "mailchimp", "vip", "a@example.com", "b@example.com", "--db", "state.db"],
    "remove-member": ["remove-member", "meta", "23850000000000001", "a@example.com"],
    "set-attribute": ["set-attribute", "mailchimp", "a@example.com", "LTV", "12", "--list", "a1b2c3d4e5"],
    "set-status": ["set-status", "mailchimp", "a1b2c3d4e5", "a@example.com", "cleaned", "--db", "state.db"],
}


def test_the_compose_command_still_serves_with_its_options() -> None:
    args = build_parser().parse_args(
        ["sandbox", "--host", "0.0.0.0", "--port", "8765", "--db", "/data/sandbox.db", "--seed"])
    assert (args.operation, args.host, args.port, args.db, args.seed) == (
        None, "0.0.0.0", 8765, "/data/sandbox.db", True)
    assert sandbox_arguments(host=args.host, port=args.port, db=args.db, config=args.config, seed=args.seed) == [
        "--host", "0.0.0.0", "--port", "8765", "--db", "/data/sandbox.db", "--seed"]
    assert build_parser().parse_args(["sandbox"]).operation is None  # bare: serve with the defaults


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_every_operation_forwards_what_the_sandbox_parses_the_same_way(name: str) -> None:
    assert set(SAMPLES) == set(OPERATIONS)
    provider = build_parser().parse_args(["sandbox", *SAMPLES[name]])
    forwarded = admin_arguments(provider)
    sandbox = build_admin_parser().parse_args(forwarded)
    assert sandbox.operation == name
    for key, value in vars(sandbox).items():
        if key not in ("operation", "handler", "creates_db") and hasattr(provider, key):
            assert getattr(provider, key) == value or (key == "db" and provider.db is None), key


def test_db_before_the_operation_name_is_kept() -> None:
    args = build_parser().parse_args(["sandbox", "--db", "state.db", "lists"])
    assert admin_arguments(args) == ["lists", "--db", "state.db"]


def test_serving_options_are_refused_with_an_operation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--seed", "lists", "--db", "state.db"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--seed: serving options" in err


@pytest.fixture
def served(tmp_path: Path) -> Iterator[RunningSandbox]:
    with serve(db_path=tmp_path / "sandbox.db") as running:
        running.state.seed_example_project()
        yield running


def segprovider(*args: str) -> subprocess.CompletedProcess[str]:
    assert SEGPROVIDER.exists(), f"console script not installed next to {sys.executable}"
    return subprocess.run([str(SEGPROVIDER), *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.integration
def test_an_operation_typed_in_a_shell_changes_what_the_running_sandbox_serves(served: RunningSandbox) -> None:
    db = str(served.state.db_path)
    done = segprovider("sandbox", "add-member", "mailchimp", "spring_promo_treatment", "fay@example.com", "--db", db)
    assert done.returncode == 0, done.stderr
    assert "fay@example.com added to mailchimp static segment" in done.stdout
    segments = requests.get(f"{served.url}/3.0/lists/a1b2c3d4e5/segments", params={"type": "static"},
                            auth=("segprovider", DEFAULT_MAILCHIMP_API_KEY), timeout=10).json()["segments"]
    assert {segment["name"]: segment["member_count"] for segment in segments}["spring_promo_treatment"] == 1
    listed = segprovider("sandbox", "lists", "--vendor", "mailchimp", "--db", db)
    assert listed.returncode == 0 and "spring_promo_treatment" in listed.stdout


@pytest.mark.integration
def test_an_operation_error_is_one_line_without_a_traceback(served: RunningSandbox) -> None:
    done = segprovider("sandbox", "members", "nope", "--db", str(served.state.db_path))
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "LIST 'nope'" in done.stderr


@pytest.mark.integration
def test_sandbox_process_waits_for_the_seed_even_when_the_db_path_says_seeded(tmp_path: Path) -> None:
    """The start-up line shows the --db path; a path containing "seeded" once let callers in before the seed."""
    folder = tmp_path / "seeded"
    folder.mkdir()
    with sandbox_process(folder / "seeded.db", seed=True) as sandbox:
        answer = requests.get(f"{sandbox.url}/3.0/lists/a1b2c3d4e5", auth=("segprovider", DEFAULT_MAILCHIMP_API_KEY),
                              timeout=10)
    assert answer.status_code == 200, answer.text

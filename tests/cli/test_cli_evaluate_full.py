"""``segprovider evaluate --full`` forces a full evaluation; without it the CLI says which path it took.

The generated tables carry no ingest load column (``segprovider generate`` writes them directly), so
every day is full by itself: the JSON says why, and with ``--full`` the output says it was asked for.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_segprovider.cli.main import EXIT_OK, main


def test_full_flag_is_reported_and_the_default_says_why(project_copy: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "warehouse.duckdb"
    assert main(["generate", "--customers", "200", "--db", str(db)]) == EXIT_OK
    capsys.readouterr()
    assert main(["evaluate", str(project_copy), "--db", str(db), "--as-of", "2026-11-23", "--json"]) == EXIT_OK
    first = json.loads(capsys.readouterr().out)
    assert first["mode"] == "full" and "_segprovider_load" in first["reason"]
    assert main(["evaluate", str(project_copy), "--db", str(db), "--as-of", "2026-11-24", "--json"]) == EXIT_OK
    second = json.loads(capsys.readouterr().out)
    assert second["mode"] == "full" and "_segprovider_load" in second["reason"]
    assert main(["evaluate", str(project_copy), "--db", str(db), "--as-of", "2026-11-25", "--full"]) == EXIT_OK
    assert "full evaluation: full evaluation requested" in capsys.readouterr().out

"""``segprovider sync`` of a snapshot older than the newest one is refused, as the DAG skips it.

History is recomputed but never pushed: after ``evaluate --as-of`` day 2, a ``sync --as-of`` day 1
would put yesterday's members back. The CLI refuses it (exit 1, naming both ``as_of`` values and the
flag) unless ``--allow-older-snapshot`` is given.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_segprovider.cli.main import EXIT_ERROR, EXIT_OK, main

DAY_1, DAY_2 = "2026-11-23", "2026-11-24"


@pytest.fixture
def evaluated(project_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A warehouse with snapshots of every segment at day 1 and day 2."""
    db = tmp_path / "warehouse.duckdb"
    assert main(["generate", "--customers", "300", "--db", str(db)]) == EXIT_OK
    for day in (DAY_1, DAY_2):
        assert main(["evaluate", str(project_copy), "--db", str(db), "--as-of", day]) == EXIT_OK
    capsys.readouterr()
    return db


def test_sync_of_an_older_snapshot_is_refused(project_copy: Path, evaluated: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sync", str(project_copy), "--db", str(evaluated), "--as-of", DAY_1, "--sync", "vip"])

    err = capsys.readouterr().err
    assert code == EXIT_ERROR
    assert "Traceback" not in err
    assert "a newer snapshot exists" in err and "2026-11-24T00:00:00 > 2026-11-23T00:00:00" in err
    assert "--allow-older-snapshot" in err


def test_allow_older_snapshot_lets_the_sync_go_on(project_copy: Path, evaluated: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SEGPROVIDER_MAILCHIMP", raising=False)

    code = main(["sync", str(project_copy), "--db", str(evaluated), "--as-of", DAY_1, "--sync", "vip",
                 "--allow-older-snapshot", "--dry-run"])

    err = capsys.readouterr().err
    assert code == EXIT_ERROR  # it went on, to the missing credentials
    assert "newer snapshot" not in err and "connection 'segprovider_mailchimp' is not defined" in err


def test_sync_of_the_newest_snapshot_is_not_refused(project_copy: Path, evaluated: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SEGPROVIDER_MAILCHIMP", raising=False)

    main(["sync", str(project_copy), "--db", str(evaluated), "--as-of", DAY_2, "--sync", "vip", "--dry-run"])

    err = capsys.readouterr().err
    assert "newer snapshot" not in err and "connection 'segprovider_mailchimp' is not defined" in err

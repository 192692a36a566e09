"""``segprovider land``: the example's landing files, dated at ``--anchor``, where the DAGs read them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from airflow_segprovider.cli.main import EXIT_OK, main
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.example import EXAMPLE_PROJECT


def test_land_writes_every_source_of_the_example_dated_at_the_anchor(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGPROVIDER_DATA_DIR", str(tmp_path / "data"))
    assert main(["land", "--customers", "200", "--anchor", "2026-12-02T06:00:00+01:00"]) == EXIT_OK
    # every file source of the example project finds its files under the data folder
    for source in load_project(EXAMPLE_PROJECT).sources.values():
        assert list((tmp_path / "data").glob(source.path)), source.path
    files = tmp_path / "data" / "landing" / "events" / "*.parquet"
    (newest,) = duckdb.sql(f"SELECT MAX(occurred_at) FROM '{files}'").fetchall()[0]
    anchor = dt.datetime(2026, 12, 2, 5, 0)  # the anchor, in UTC
    assert anchor - dt.timedelta(days=1) < newest <= anchor


@pytest.mark.parametrize("argv", [["--customers", "0"], ["--anchor", "yesterday"], ["--seed", "-1"]])
def test_land_refuses_bad_arguments_naming_them(argv: list[str], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["land", "--data-dir", str(tmp_path), *argv])
    assert exit_.value.code == 2
    assert argv[0] in capsys.readouterr().err
    assert not list(tmp_path.iterdir())

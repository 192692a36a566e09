"""Golden SQL: the example project compiled for every dialect, checked in so a change to the generated SQL
shows in review. Regenerate after an intended change with ``SEGPROVIDER_UPDATE_GOLDEN=1 pytest tests/core/evaluate/golden``."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
import sqlglot

from airflow_segprovider.core.evaluate.compiler import SegmentCompiler
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.sql.dialects import SUPPORTED_DIALECTS
from airflow_segprovider.example import EXAMPLE_PROJECT

HERE = Path(__file__).resolve().parent
PROJECT = EXAMPLE_PROJECT
AS_OF = dt.datetime(2026, 11, 24)


@pytest.mark.parametrize("dialect", SUPPORTED_DIALECTS)
def test_generated_sql_matches_the_checked_in_golden_file(dialect: str) -> None:
    compiled = SegmentCompiler(load_project(PROJECT), dialect, "main").compile(AS_OF)
    sql = compiled.sql(pretty=True) + ";\n"
    golden = HERE / f"segments_project.{dialect}.sql"
    if os.environ.get("SEGPROVIDER_UPDATE_GOLDEN"):
        golden.write_text(sql)
    assert golden.exists(), f"missing {golden.name}: run with SEGPROVIDER_UPDATE_GOLDEN=1"
    assert sql == golden.read_text(), f"generated {dialect} SQL changed; review the diff, then regenerate"


@pytest.mark.parametrize("dialect", SUPPORTED_DIALECTS)
def test_golden_sql_parses_in_its_own_dialect(dialect: str) -> None:
    text = (HERE / f"segments_project.{dialect}.sql").read_text()
    [statement] = sqlglot.parse(text, read=dialect)
    assert statement.find(sqlglot.exp.Select) is not None

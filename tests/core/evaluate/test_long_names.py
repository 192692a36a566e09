"""Generated identifiers fit every warehouse: names the language accepts never collide after a cut.

PostgreSQL cuts identifiers at 63 bytes, so ``m__`` + two 63-character segment names sharing their first
60 characters used to be one ambiguous column there.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_segprovider.core.evaluate.columns import (
    arm_column,
    attribute_column,
    bucket_column,
    member_column,
    node_column,
    rule_column,
)
from airflow_segprovider.core.evaluate.compiler import SegmentCompiler
from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.sql.dialects import SUPPORTED_DIALECTS
from airflow_segprovider.core.sql.expressions import MAX_IDENTIFIER_BYTES
from support.engine_harness import COLUMN_TYPES, write_project
from support.warehouse_matrix import DIFFERENTIAL_KINDS, load_rows, open_warehouse, stored

if TYPE_CHECKING:
    from pathlib import Path

AS_OF = dt.datetime(2026, 3, 15, 12)
SHARED = "s" + "x" * 59  # 60 characters
HALVES = {"salt": "n", "arms": [{"name": "a", "percent": 50}, {"name": "b", "percent": 50}]}


def _long_name_project(folder: Path):
    return write_project(folder, [
        {"name": SHARED + "_lo", "rule": {"attribute": "score", "op": "lt", "value": 5}, "split": HALVES},
        {"name": SHARED + "_hi", "rule": {"attribute": "score", "op": "gte", "value": 5}, "split": HALVES},
        {"name": SHARED + "ref", "rule": {"not": {"segment": SHARED + "_lo"}}},
    ])


@pytest.mark.integration
@pytest.mark.parametrize("kind", DIFFERENTIAL_KINDS)
def test_two_63_character_names_sharing_60_characters_are_two_segments(tmp_path: Path, kind: str) -> None:
    project = _long_name_project(tmp_path / "p")
    assert all(len(name) == 63 for name in project.segments)
    tables = {"customers": [{"customer_id": f"c{i}", "score": i} for i in range(10)]}
    with open_warehouse(kind) as warehouse:
        load_rows(warehouse, tables, COLUMN_TYPES)
        evaluate(project, warehouse, AS_OF, run_id="long")
        members = stored(warehouse, AS_OF)
    assert set(members[SHARED + "_lo"]) == {f"c{i}" for i in range(5)}
    assert set(members[SHARED + "_hi"]) == {f"c{i}" for i in range(5, 10)}
    assert set(members[SHARED + "ref"]) == {f"c{i}" for i in range(5, 10)}
    assert set(members[SHARED + "_lo"].values()) <= {"a", "b"}


def _identifiers(project, dialect: str, explain: bool) -> list[str]:
    import sqlglot
    from sqlglot import exp

    sql = SegmentCompiler(project, dialect).compile(AS_OF, explain=explain).sql(pretty=False)
    tree = sqlglot.parse_one(sql, read=dialect)
    names = [cte.alias for cte in tree.find_all(exp.CTE)]
    for select in tree.find_all(exp.Select):
        names.extend(select.named_selects)
    return names


NAMES = st.text(alphabet="abcdefghij_0123456789", min_size=0, max_size=62).map(lambda tail: "a" + tail)


@settings(max_examples=12, deadline=None, derandomize=True, database=None)
@given(names=st.lists(NAMES, min_size=2, max_size=6, unique=True), attribute_names=st.lists(NAMES, min_size=1,
                                                                                            max_size=3, unique=True))
def test_generated_identifiers_are_unique_and_within_the_limit(tmp_path_factory: pytest.TempPathFactory,
                                                               names: list[str], attribute_names: list[str]) -> None:
    from support.engine_harness import MODEL

    model = {**MODEL, "customer": {**MODEL["customer"], "attributes": {
        **MODEL["customer"]["attributes"], **{a: {"type": "number", "column": "score"} for a in attribute_names}}}}
    segments = [{"name": name, "rule": {"all": [
        {"attribute": attribute_names[i % len(attribute_names)], "op": "gte", "value": i},
        {"event": "buy", "aggregate": "avg", "property": "revenue", "op": "gt", "value": 1},
        *([{"segment": names[i - 1]}] if i else [])]}, **({"split": HALVES} if i % 2 else {})}
        for i, name in enumerate(names)]
    project = write_project(tmp_path_factory.mktemp("names"), segments, model=model)
    for dialect in SUPPORTED_DIALECTS:
        for explain in (False, True):
            identifiers = _identifiers(project, dialect, explain)
            assert all(len(name.encode()) <= MAX_IDENTIFIER_BYTES for name in identifiers), identifiers
    generated = [f(name) for name in names for f in (member_column, arm_column, bucket_column, rule_column)]
    generated += [node_column(name, i) for name in names for i in range(12)]
    generated += [attribute_column(a) for a in attribute_names]
    assert len({g.lower() for g in generated}) == len(generated)
    assert all(len(g.encode()) <= MAX_IDENTIFIER_BYTES for g in generated)

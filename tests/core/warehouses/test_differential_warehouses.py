"""Differential tests: the same project, the same data, the same members on every warehouse.

DuckDB, the real PostgreSQL server, Snowflake through ``fakesnow`` and BigQuery's SQL (parsed as
BigQuery, executed transpiled to DuckDB) each evaluate the example project over generated data
(two days, so diffs and split arms are compared too), and random projects from the engine's
property tests over random tables full of edge cases. Every warehouse must store exactly the
members and arms the DuckDB engine does, and the plain-Python reference agrees with them.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from airflow_segprovider.core.evaluate.engine import evaluate, preview
from airflow_segprovider.core.evaluate.explain import explain
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.state.membership import MembershipStore
from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.example.generate import generate
from support.engine_harness import COLUMN_TYPES
from support.random_cases import draw_random_case
from support.reference_evaluator import reference_members
from support.warehouse_matrix import DIFFERENTIAL_KINDS, copy_tables, load_rows, open_warehouse, render_sql, stored

pytestmark = pytest.mark.integration

PROJECT_DIR = EXAMPLE_PROJECT
DAY_1 = dt.datetime(2026, 11, 23)
DAY_2 = dt.datetime(2026, 11, 24)
EXAMPLE_TABLES = ["customers", "events", "orders", "consents"]
#: random examples per run (every example runs on all four warehouses); raise it to hunt
RANDOM_EXAMPLES = int(os.environ.get("SEGPROVIDER_WAREHOUSE_FUZZ_EXAMPLES", "8"))


@pytest.fixture(scope="module")
def example_data():
    """The example project's tables (generated once) in a DuckDB source every warehouse copies from."""
    with open_warehouse("duckdb") as source:
        generate(source, 1000, seed=11)
        yield source


@pytest.fixture(scope="module")
def example_results(example_data):
    """Each warehouse's snapshots of both days and their diffs."""
    project = load_project(PROJECT_DIR)
    results = {}
    for kind in DIFFERENTIAL_KINDS:
        with open_warehouse(kind) as warehouse:
            copy_tables(example_data, warehouse, EXAMPLE_TABLES)
            evaluate(project, warehouse, DAY_1, run_id="day_1")
            day_2 = evaluate(project, warehouse, DAY_2, run_id="day_2")
            store = MembershipStore(warehouse)
            results[kind] = {
                "day_1": stored(warehouse, DAY_1),
                "day_2": stored(warehouse, DAY_2),
                "diffs": {d.segment: (d.members, d.added, d.removed, d.unchanged) for d in day_2.diffs},
                "changes": {s: {k: sorted(v) for k, v in store.changes(s, DAY_2).items()} for s in project.segments},
                "snapshots": sorted((s, a.isoformat(), m, ad, r, u) for s, a, _, m, ad, r, u, _ in store.snapshots()),
                "previews": {s: _preview(project, warehouse, s) for s in ("vip", "spring_promo", "active_30d")},
                "explained": {(s, k): _explain(project, warehouse, s, k)
                              for s in ("vip", "spring_promo") for k in ("1", "2", "3", "40", "77")},
            }
    return results


def _preview(project, warehouse, segment):
    shown = preview(project, warehouse, segment, DAY_2, sample_size=5)
    return shown.members, shown.sample, shown.arms


def _explain(project, warehouse, segment, customer):
    explained = explain(project, warehouse, segment, customer, DAY_2)
    return explained.member, explained.arm, explained.text()


@pytest.mark.parametrize("kind", [k for k in DIFFERENTIAL_KINDS if k != "duckdb"])
def test_example_project_previews_and_explanations_are_identical(example_results, kind):
    expected, got = example_results["duckdb"], example_results[kind]
    assert got["previews"] == expected["previews"]
    assert got["explained"] == expected["explained"]
    assert any(member for member, _, _ in expected["explained"].values())


@pytest.mark.parametrize("kind", [k for k in DIFFERENTIAL_KINDS if k != "duckdb"])
def test_example_project_members_are_identical(example_results, kind):
    expected, got = example_results["duckdb"], example_results[kind]
    assert any(len(members) > 50 for members in expected["day_2"].values())  # the data exercises the rules
    for day in ("day_1", "day_2"):
        for segment in sorted(expected[day].keys() | got[day].keys()):
            assert got[day].get(segment) == expected[day].get(segment), f"{kind} {day}: {segment} differs"


@pytest.mark.parametrize("kind", [k for k in DIFFERENTIAL_KINDS if k != "duckdb"])
def test_example_project_diffs_are_identical(example_results, kind):
    expected, got = example_results["duckdb"], example_results[kind]
    assert got["diffs"] == expected["diffs"]
    assert got["changes"] == expected["changes"]
    assert got["snapshots"] == expected["snapshots"]
    assert any(added for _, added, _, _ in expected["diffs"].values())


def test_example_project_split_arms_are_used(example_results):
    arms = {arm for members in example_results["duckdb"]["day_2"].values() for arm in members.values()}
    assert len(arms - {None}) >= 2  # the arm comparison above compared real hash buckets


def _members_on(kind: str, project, tables, as_of_given) -> dict[str, dict[str, str | None]]:
    with open_warehouse(kind) as warehouse:
        load_rows(warehouse, tables, COLUMN_TYPES)
        result = evaluate(project, warehouse, as_of_given, run_id="random")
        arms = stored(warehouse, result.as_of)
    return {name: arms.get(name, {}) for name in project.segments}


@settings(max_examples=RANDOM_EXAMPLES, derandomize=True, database=None, deadline=None,
          phases=[Phase.explicit, Phase.generate, Phase.shrink],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(data=st.data())
def test_random_projects_agree_on_every_warehouse(data: st.DataObject) -> None:
    as_of_given, as_of, documents, tables, project = draw_random_case(data)
    reference = reference_members(project, tables, as_of)
    for kind in DIFFERENTIAL_KINDS:
        got = _members_on(kind, project, tables, as_of_given)
        for segment in project.segments:
            note(f"{segment}: {next(s for s in documents['segments'] if s['name'] == segment)}")
            assert got[segment] == reference[segment], (
                f"{kind}: segment {segment!r} differs from the reference: only {kind}: "
                f"{sorted(got[segment].keys() - reference[segment].keys())}, only reference: "
                f"{sorted(reference[segment].keys() - got[segment].keys())}")


@pytest.mark.parametrize("kind", DIFFERENTIAL_KINDS)
def test_packed_store_across_words_and_partial_re_evaluation(kind, tmp_path):
    """73 bits (two words per customer) and a re-evaluation of one segment at the same ``as_of``: each
    warehouse's bit arithmetic, its view and its replacement keep exactly the reference's members."""
    from support.engine_harness import write_project

    thirds = {"salt": "w", "arms": [{"name": "x", "percent": 30}, {"name": "y", "percent": 30},
                                    {"name": "z", "percent": 40}]}
    segments = [{"name": f"s{i:02d}", "rule": {"attribute": "score", "op": "gte", "value": i}} for i in range(70)]
    segments.append({"name": "split", "rule": {"attribute": "score", "op": "gte", "value": 0}, "split": thirds})
    project = write_project(tmp_path / "project", segments)
    tables = {"customers": [{"customer_id": f"c{i}", "score": i} for i in range(75)]}
    with open_warehouse(kind) as warehouse:
        load_rows(warehouse, tables, COLUMN_TYPES)
        evaluate(project, warehouse, DAY_2, run_id="wide")
        reference = reference_members(project, tables, DAY_2)
        assert stored(warehouse, DAY_2) == {name: members for name, members in reference.items() if members}

        warehouse.execute(render_sql("UPDATE customers SET score = 0 WHERE customer_id = 'c74'", warehouse.dialect))
        evaluate(project, warehouse, DAY_2, run_id="partial", segments=["s69"])
        now = stored(warehouse, DAY_2)
        assert set(now["s69"]) == {"c69", "c70", "c71", "c72", "c73"}
        assert "c74" in now["s68"] and now["split"] == reference["split"]  # not re-evaluated: kept


@pytest.mark.parametrize("kind", DIFFERENTIAL_KINDS)
def test_a_row_per_member_store_is_migrated_on_every_warehouse(kind, tmp_path):
    """An earlier version's row-per-member table becomes packed writes the view reads back exactly,
    and the next snapshot's diff is against it (each warehouse's window, power and rename SQL)."""
    from support.engine_harness import write_project
    from support.membership import to_row_per_member_layout

    halves = {"salt": "m", "arms": [{"name": "a", "percent": 50}, {"name": "b", "percent": 50}]}
    project = write_project(tmp_path / "project", [
        {"name": "scored", "rule": {"attribute": "score", "op": "gt", "value": 2}, "split": halves},
        {"name": "low", "rule": {"attribute": "score", "op": "lt", "value": 2}}])
    tables = {"customers": [{"customer_id": f"c{i}", "score": i % 7} for i in range(30)]}
    with open_warehouse(kind) as warehouse:
        load_rows(warehouse, tables, COLUMN_TYPES)
        evaluate(project, warehouse, DAY_1, run_id="day_1")
        day_1 = stored(warehouse, DAY_1)
        to_row_per_member_layout(warehouse)
        warehouse.execute(render_sql("UPDATE customers SET score = 6 WHERE customer_id IN ('c0', 'c1')", warehouse.dialect))
        evaluate(project, warehouse, DAY_2, run_id="day_2")
        assert stored(warehouse, DAY_1) == day_1
        store = MembershipStore(warehouse)
        assert store.changes("low", DAY_2) == {"added": set(), "removed": {"c0", "c1"}}
        assert store.changes("scored", DAY_2) == {"added": {"c0", "c1"}, "removed": set()}

"""What each evaluation writes for the insights views: arm sizes and what a priority group removed.

Both are checked against references computed apart from the code under test: the arm sizes against the
members of the membership view, the removals against an evaluation of the same data by the same project
without its priority group (what each segment's rule and consent admit), intersected with the members of
each higher-priority segment.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.state.ingest import LOAD_COLUMN
from airflow_segprovider.core.state.insights import ARM_SIZES, PRIORITY_REMOVALS
from airflow_segprovider.core.state.membership import MEMBERSHIPS, MembershipStore
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.example.generate import generate

DAYS = [dt.datetime(2026, 11, 22), dt.datetime(2026, 11, 23)]
CUSTOMERS = 3_000


def _mark_loaded(project, warehouse: DuckDBWarehouse) -> None:
    """The event, order and consent tables as one ingest load each, as append sources leave them: the next
    evaluation can then be incremental."""
    tables = {source.table for source in project.model.events.values()} | {project.model.consent.table}
    for table in sorted(tables):
        warehouse.execute(f"ALTER TABLE {table} ADD COLUMN {LOAD_COLUMN} VARCHAR DEFAULT 'initial'")


@pytest.fixture(scope="module", params=["from_sources", "from_state"])
def evaluated(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> DuckDBWarehouse:
    """The example evaluated on two days: in full both days (tables without a load column), or the second
    day incrementally, when the removals are counted from the incremental state's rows."""
    project = load_project(EXAMPLE_PROJECT)
    warehouse = DuckDBWarehouse(str(tmp_path_factory.mktemp("summaries") / "warehouse.duckdb"))
    generate(warehouse, CUSTOMERS)
    if request.param == "from_state":
        _mark_loaded(project, warehouse)
    modes = [evaluate(project, warehouse, day, run_id=f"run_{day:%d}").mode for day in DAYS]
    assert modes == (["full", "incremental"] if request.param == "from_state" else ["full", "full"])
    yield warehouse
    warehouse.close()


def _without_priority_groups(folder: Path) -> Path:
    """A copy of the example project whose segments yield to no priority group."""
    copy = folder / "project"
    shutil.copytree(EXAMPLE_PROJECT, copy)
    value = copy / "segments" / "value.yml"
    text = value.read_text()
    value.write_text(text[:text.index("priority_groups:")])
    return copy


def test_arm_sizes_are_the_members_of_each_arm_in_the_snapshot(evaluated: DuckDBWarehouse) -> None:
    written = {(segment, arm, as_of): members for segment, arm, as_of, members in evaluated.query(
        f"SELECT segment, arm, as_of, members FROM {ARM_SIZES}")}
    counted = {(segment, arm, as_of): n for segment, arm, as_of, n in evaluated.query(
        f"SELECT segment, arm, as_of, COUNT(*) FROM {MEMBERSHIPS} WHERE arm IS NOT NULL GROUP BY ALL")}

    assert written == counted
    assert {segment for segment, _, _ in written} == {"spring_promo"}
    assert {arm for _, arm, _ in written} == {"treatment", "holdout"} and len(written) == 2 * len(DAYS)


def test_priority_removals_are_what_each_segment_admitted_that_a_higher_one_holds(
        evaluated: DuckDBWarehouse, tmp_path: Path) -> None:
    project = load_project(EXAMPLE_PROJECT)
    free = load_project(_without_priority_groups(tmp_path))
    assert not any(s.higher_priority for s in free.segments.values())
    reference = DuckDBWarehouse(str(tmp_path / "free.duckdb"))
    generate(reference, CUSTOMERS)  # the same deterministic data
    evaluate(free, reference, DAYS[-1], run_id="free")
    admitted = MembershipStore(reference)
    kept = MembershipStore(evaluated)
    group = project.priority_groups["lifecycle_campaigns"]
    expected = {}
    for name in group.segments:
        for higher in project.segments[name].higher_priority:
            expected[(group.name, name, higher)] = len(admitted.members(name, DAYS[-1])
                                                       & kept.members(higher, DAYS[-1]))
    reference.close()

    written = {(g, s, t): n for g, s, t, n in evaluated.query(
        f"SELECT priority_group, segment, taken_by, customers FROM {PRIORITY_REMOVALS} WHERE as_of = %(at)s",
        {"at": DAYS[-1]})}

    assert written == expected
    assert sum(written.values()) > 0  # the example's group does take customers: the test can see a wrong count


def test_evaluating_an_as_of_again_replaces_its_summaries(evaluated: DuckDBWarehouse) -> None:
    project = load_project(EXAMPLE_PROJECT)
    before = evaluated.query(f"SELECT COUNT(*) FROM {PRIORITY_REMOVALS}")[0][0]
    # at_risk and what it depends on (win_back and vip above it in its group, and theirs) are written again
    again = {d.segment for d in evaluate(project, evaluated, DAYS[-1], run_id="again",
                                         segments=["spring_promo", "at_risk"]).diffs}

    rows = evaluated.query(f"SELECT segment, run_id FROM {PRIORITY_REMOVALS} WHERE as_of = %(at)s "
                           "UNION ALL SELECT segment, run_id FROM " + ARM_SIZES + " WHERE as_of = %(at)s",
                           {"at": DAYS[-1]})
    assert evaluated.query(f"SELECT COUNT(*) FROM {PRIORITY_REMOVALS}")[0][0] == before
    assert "new_customers" not in again
    assert {run for segment, run in rows if segment in again} == {"again"}
    assert {run for segment, run in rows if segment not in again} == {"run_23"}

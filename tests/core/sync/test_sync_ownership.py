"""One owner per segment: the centralized model never selects the syncs of a reconciled segment.

A segment with a ``reconcile:`` policy is owned by the distributed model (``segments_distributed``);
a centralized push of its warehouse membership would undo the hand edits the reconcile keeps.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from airflow_segprovider.core.errors import SegproviderError
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.sync import ReconciledSyncError, centralized_syncs, reconciled_syncs, select_syncs

RECONCILED = {"sales_priority__mailchimp_newsletter", "sales_priority__hubspot_crm"}


def test_the_example_splits_its_syncs_between_the_two_models(example_project: Path) -> None:
    project = load_project(example_project)

    assert {s.id for s in reconciled_syncs(project)} == RECONCILED
    central = {s.id for s in centralized_syncs(project)}
    assert central == {s.id for s in project.syncs} - RECONCILED
    assert {"vip__mailchimp_newsletter", "vip__hubspot_crm"} <= central


def test_select_without_selectors_leaves_reconciled_syncs_out(example_project: Path) -> None:
    project = load_project(example_project)

    assert {s.id for s in select_syncs(project, None)} == {s.id for s in centralized_syncs(project)}
    assert {s.id for s in select_syncs(project, None, include_reconciled=True)} == {s.id for s in project.syncs}


def test_a_destination_selector_skips_reconciled_syncs(example_project: Path) -> None:
    project = load_project(example_project)

    assert [s.id for s in select_syncs(project, ["hubspot_crm"])] == ["vip__hubspot_crm"]


@pytest.mark.parametrize("selector", ["sales_priority__mailchimp_newsletter", "sales_priority"])
def test_naming_a_reconciled_sync_is_refused_with_the_policy_and_the_fix(example_project: Path,
                                                                          selector: str) -> None:
    project = load_project(example_project)

    with pytest.raises(ReconciledSyncError) as raised:
        select_syncs(project, ["vip", selector])
    message = str(raised.value)
    assert isinstance(raised.value, SegproviderError)
    assert "segment 'sales_priority' has a reconcile policy (most_recent)" in message
    assert f"at {project.reconcile['sales_priority'].loc}" in message and "reconcile.yml:" in message
    assert "segprovider distributed PROJECT --segment sales_priority" in message
    assert "remove the segment's `reconcile:` entry" in message


def test_without_a_reconcile_policy_every_sync_is_centralized(example_project: Path, tmp_path: Path) -> None:
    copy = tmp_path / "segments_project"
    shutil.copytree(example_project, copy, ignore=shutil.ignore_patterns("landing"))
    (copy / "reconcile.yml").unlink()
    project = load_project(copy)

    assert reconciled_syncs(project) == []
    assert {s.id for s in select_syncs(project, ["sales_priority"])} == RECONCILED

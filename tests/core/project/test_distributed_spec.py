"""The ``reconcile:`` section: the example's policy loads; each mistake is reported where it is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_segprovider.core.errors import ProjectValidationError
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.example import EXAMPLE_PROJECT
from support.distributed_world import make_project


def issues_of(root: Path) -> list:
    with pytest.raises(ProjectValidationError) as caught:
        load_project(root)
    return caught.value.issues


def test_the_example_reconciles_sales_priority_by_most_recent_change() -> None:
    policy = load_project(EXAMPLE_PROJECT).reconcile["sales_priority"]
    assert (policy.policy, policy.tie_break, policy.systems) == (
        "most_recent", "hubspot_crm", ("hubspot_crm", "mailchimp_newsletter"))


@pytest.mark.parametrize(("entry", "code", "needle", "says"), [
    ("{segment: vipp, policy: union}", "SEG070", "vipp", "unknown segment 'vipp'"),
    ("{segment: at_risk, policy: union}", "SEG071", "at_risk", "at least two readable systems"),
    ("{segment: sales_priority, policy: union, systems: [hubspot_crm, meta_ads]}", "SEG071", "meta_ads",
     "not a destination"),
    ("{segment: sales_priority, policy: authoritative}", "SEG072", "authoritative", "needs an 'authority'"),
    ("{segment: sales_priority, policy: authoritative, authority: meta_ads}", "SEG072", "meta_ads",
     "not one of its systems"),
    ("{segment: sales_priority, policy: union, authority: hubspot_crm}", "SEG072", "hubspot_crm", "applies to policy"),
    ("{segment: sales_priority, policy: most_recent}", "SEG073", "most_recent", "needs a 'tie_break'"),
    ("{segment: sales_priority, policy: most_recent, tie_break: newest}", "SEG073", "newest", "neither add, remove"),
    ("{segment: sales_priority, policy: latest}", "SEG010", "latest", "is not one of"),
])
def test_each_mistake_is_located_with_its_code(tmp_path: Path, entry: str, code: str, needle: str,
                                               says: str) -> None:
    root = make_project(tmp_path, f"reconcile:\n  - {entry}\n", third_system=False)
    issues = issues_of(root)
    assert [i.code for i in issues] == [code], [i.format() for i in issues]
    issue = issues[0]
    assert says in issue.message and issue.hint
    assert Path(issue.location.file).name == "reconcile.yml"
    text = (root / "reconcile.yml").read_text().splitlines()
    assert needle in text[issue.location.line - 1]


def test_a_reconciled_segment_must_be_mirrored_whole(tmp_path: Path) -> None:
    root = make_project(tmp_path, "reconcile:\n  - {segment: sales_priority, policy: union}\n", third_system=False)
    destinations = root / "destinations.yml"
    text = destinations.read_text()
    destinations.write_text(text.replace("{segment: sales_priority, destination: hubspot_crm, mode: mirror",
                                         "{segment: sales_priority, destination: hubspot_crm, mode: add_only", 1))
    issues = issues_of(root)
    assert [i.code for i in issues] == ["SEG074"]
    assert Path(issues[0].location.file).name == "destinations.yml" and "add_only" in issues[0].message

"""``segments_centralized`` with ``on_count_drift: repair`` (issue #17): count drift before a sync repairs it.

Members removed by hand from the HubSpot list make the pre-sync count gate find drift. With ``on_count_drift:
fail`` (the default) the gate fails and the sync waits; with ``repair`` the gate passes the drift to the sync task
(XCom ``repair``), which reads the list's members (https://developers.hubspot.com/docs/api/crm/lists) and restores
them, and the post-sync count check passes.
"""

from __future__ import annotations

import pytest

from support.dag_world import DAY_1, DAY_2, World

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def remove_fifth_by_hand(world: World) -> set[str]:
    """A person removes a fifth of the vip list's members in HubSpot's UI: more than the gate's 5% tolerance."""
    from segprovider_sandbox import DemoFixtures

    emails = sorted(e for (e,) in world.query("SELECT LOWER(identity) FROM segprovider_sync_state WHERE "
                                              "sync_id = 'vip__hubspot_crm' AND in_destination"))
    removed = set(emails[::5])
    for email in removed:
        world.sandbox.state.edit_hubspot_list(DemoFixtures().hubspot_list_id, email, False)
    return removed


def in_list(world: World) -> set[str]:
    from segprovider_sandbox import DemoFixtures

    return {e.lower() for e in world.sandbox.state.hubspot_list_emails(DemoFixtures().hubspot_list_id)}


@pytest.mark.parametrize("setting", ["fail", "repair"])
def test_count_drift_before_a_sync_repairs_only_when_the_project_says_so(world: World, setting: str) -> None:
    assert all(s == "success" for s in world.run(DAY_1).values())
    removed = remove_fifth_by_hand(world)
    assert removed and not removed & in_list(world)
    if setting == "repair":
        project_file = world.project / "segprovider_project.yml"
        project_file.write_text(project_file.read_text().replace("  version: 1\n",
                                                                 "  version: 1\n  on_count_drift: repair\n"))
        world._dag = None  # built again from the project, as the DAG processor would

    states = world.run(DAY_2)

    if setting == "fail":
        assert states["hubspot_crm.gate_cross_system_counts"] == "failed", states
        assert states["hubspot_crm.sync"] in ("upstream_failed", "None"), states
        assert not removed & in_list(world)
        return
    assert states["hubspot_crm.gate_cross_system_counts"] == "success", states
    assert states["hubspot_crm.sync"] == "success" and states["hubspot_crm.check_post_sync_counts"] == "success"
    assert removed <= in_list(world)
    [(repair, restored)] = world.query("SELECT repair, succeeded_restore FROM segprovider_sync_runs WHERE sync_id = "
                                       "'vip__hubspot_crm' AND as_of = TIMESTAMP '2026-11-24' AND NOT dry_run")
    assert repair.startswith("read ") and restored == len(removed)
    # the other destinations had no drift: their syncs were not repairs
    assert world.query("SELECT COUNT(*) FROM segprovider_sync_runs WHERE sync_id <> 'vip__hubspot_crm' "
                       "AND repair IS NOT NULL") == [(0,)]

"""The insights pages in a real browser: the system's Chromium, driven by Playwright, logged in through Airflow's UI.

One browser session for the module. Each view is opened, its charts must be drawn by Plotly (an SVG in each
chart) with the numbers the test computes itself with its own SQL on the warehouse (never the plugin's
endpoints), with no console error and no failed request; a screenshot of each view is saved under the
test's output folder (``<tmp>/insights*/screenshots``, printed at the end).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from airflow_segprovider.core.state.gates import DESTINATION_COUNTS
from airflow_segprovider.core.state.insights import PRIORITY_REMOVALS
from airflow_segprovider.core.state.membership import MEMBERSHIPS, SNAPSHOTS
from airflow_segprovider.core.state.sync import RUNS as SYNC_RUNS
from support.insights_world import DAG_ID, PLAIN_DAG_ID, InsightsWorld

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# .ci/run installs Chromium when it is missing and sets SEGPROVIDER_REQUIRE_BROWSER: there a missing browser fails
# the tests instead of skipping them; on a developer's machine without Chromium they skip, saying why.
REQUIRED = bool(os.environ.get("SEGPROVIDER_REQUIRE_BROWSER"))
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(CHROMIUM is None and not REQUIRED,
                                 reason="Chromium is not installed (apt-get install -y chromium)")]


def _sql(world: InsightsWorld, sql: str) -> list[tuple]:
    with duckdb.connect(str(world.warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


class Browser:
    """One logged-in page, with the console errors and failed requests it saw."""

    def __init__(self, page: Any, shots: Path) -> None:
        self.page, self.shots, self.errors = page, shots, []
        page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        # the UI's own polling, cut short when a test navigates away, is not the plugin's
        page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url} {r.failure}")
                if "/segprovider/" in r.url else None)

    def open(self, url: str, shot: str) -> Any:
        self.errors.clear()
        reply = self.page.goto(url, wait_until="networkidle")
        assert reply is not None and reply.status == 200, f"{url}: {reply.status if reply else None}"
        self.page.screenshot(path=str(self.shots / f"{shot}.png"), full_page=True)
        return reply

    def chart(self, chart_id: str) -> list[dict[str, Any]]:
        """The traces Plotly drew in ``chart_id`` (it must have drawn an SVG there)."""
        self.page.wait_for_selector(f"#{chart_id} .main-svg")
        return self.page.evaluate("id => document.getElementById(id).data.map(t => ({name: t.name, x: t.x, y: t.y, "
                                  "z: t.z}))", chart_id)


@pytest.fixture(scope="module")
def browser(insights: InsightsWorld, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    shots = tmp_path_factory.mktemp("screenshots")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = chromium.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{insights.base_url}/auth/login/", wait_until="networkidle")
        page.locator("input").first.fill("viewer")
        page.locator("input[type=password]").fill(insights.passwords["viewer"])
        page.locator("button[type=submit]").click()
        page.wait_for_url(lambda url: "/auth/login" not in url, timeout=30_000)
        page.goto("about:blank")
        yield Browser(page, shots)
        chromium.close()
    print(f"\nscreenshots: {shots}")


def _url(world: InsightsWorld, view: str = "") -> str:
    return f"{world.base_url}/segprovider/dags/{DAG_ID}" + (f"/{view}" if view else "")


def test_segments_charts_show_each_segments_size_over_time(insights: InsightsWorld, browser: Browser) -> None:
    browser.open(_url(insights, "segments"), "segments")

    expected: dict[str, list[int]] = {}
    for segment, members in _sql(insights, f"SELECT segment, members FROM {SNAPSHOTS} ORDER BY segment, as_of"):
        expected.setdefault(segment, []).append(members)
    drawn = {trace["name"]: trace["y"] for trace in browser.chart("chart-sizes")}
    assert drawn == expected
    first = browser.page.get_attribute("#chart-segment-0", "data-name")
    adds = [a for (a,) in _sql(insights, f"SELECT added FROM {SNAPSHOTS} WHERE segment = '{first}' ORDER BY as_of")]
    traces = {t["name"]: t["y"] for t in browser.chart("chart-segment-0")}
    assert traces["added"] == adds
    assert "purchase" in browser.page.inner_text(".rule") or browser.page.inner_text(".rule").strip()
    assert browser.errors == []


def test_a_split_segments_chart_shows_each_arms_size_over_time(insights: InsightsWorld, browser: Browser) -> None:
    browser.open(_url(insights, "segments"), "segments_split")

    chart = browser.page.get_attribute('[data-name="spring_promo"]', "id")
    expected: dict[str, list[int]] = {}
    for arm, members in _sql(insights, f"SELECT arm, COUNT(*) FROM {MEMBERSHIPS} WHERE segment = 'spring_promo' "
                                       "GROUP BY arm, as_of ORDER BY arm, as_of"):
        expected.setdefault(f"arm {arm}", []).append(members)
    drawn = {t["name"]: t["y"] for t in browser.chart(chart) if t["name"].startswith("arm ")}

    assert set(expected) == {"arm holdout", "arm treatment"}
    assert drawn == expected
    assert browser.errors == []


def test_overlap_heatmap_counts_shared_members(insights: InsightsWorld, browser: Browser) -> None:
    browser.open(_url(insights, "overlap"), "overlap")

    trace = browser.chart("chart-overlap")[0]
    rows = _sql(insights, f"WITH m AS (SELECT DISTINCT segment, customer_key FROM {MEMBERSHIPS} WHERE as_of = "
                          f"(SELECT MAX(as_of) FROM {SNAPSHOTS})) SELECT a.segment, b.segment, COUNT(*) FROM m a "
                          "JOIN m b USING (customer_key) GROUP BY 1, 2")
    shared = {(a, b): n for a, b, n in rows}
    assert trace["z"] == [[shared.get((a, b), 0) for b in trace["x"]] for a in trace["y"]]
    assert browser.errors == []


def test_overlap_shows_what_the_priority_group_removed_from_each_segment(
        insights: InsightsWorld, browser: Browser) -> None:
    browser.open(_url(insights, "overlap"), "overlap_removals")

    # the warehouse's own record of the newest as_of (its correctness against an evaluation without the group:
    # tests/core/evaluate/test_insights_summaries.py), and the shared members it implies
    rows = _sql(insights, f"SELECT segment, taken_by, customers FROM {PRIORITY_REMOVALS} WHERE as_of = "
                          f"(SELECT MAX(as_of) FROM {SNAPSHOTS})")
    drawn = {(segment, t["name"].removeprefix("taken by ")): n
             for t in browser.chart("chart-removals") for segment, n in zip(t["x"], t["y"]) if n is not None}

    assert drawn == {(segment, taker): n for segment, taker, n in rows}
    assert sum(drawn.values()) > 0
    assert browser.errors == []


def test_syncs_chart_runs_per_destination(insights: InsightsWorld, browser: Browser) -> None:
    browser.open(_url(insights, "syncs"), "syncs")

    sync_id = browser.page.get_attribute("#chart-sync-0", "data-name")
    expected = _sql(insights, f"SELECT succeeded_add, succeeded_remove FROM {SYNC_RUNS} WHERE sync_id = '{sync_id}' "
                              "ORDER BY started_at")
    traces = {t["name"]: t["y"] for t in browser.chart("chart-sync-0")}
    assert traces["added"] == [a for a, _ in expected]
    assert traces["removed"] == [r for _, r in expected]
    assert browser.page.locator("#rejected, .note").count() >= 1
    assert browser.errors == []


def test_gates_list_each_run_with_a_data_docs_link(insights: InsightsWorld, browser: Browser) -> None:
    browser.open(_url(insights, "gates"), "gates")

    rows = browser.page.locator("#gates tr").count() - 1
    assert rows == len(list(insights.docs_dir.glob(f"{DAG_ID}/*/*/gate_result.json")))
    browser.chart("chart-gates")
    link = browser.page.locator("#gates a", has_text="Data Docs").first.get_attribute("href")
    docs = browser.page.request.get(f"{insights.base_url}{link}")
    assert docs.status == 200 and "<html" in docs.text().lower()
    assert browser.errors == []


def test_drift_compares_central_and_destination_counts(insights: InsightsWorld, browser: Browser) -> None:
    browser.open(_url(insights, "drift"), "drift")

    sync_id = browser.page.get_attribute("#chart-counts-0", "data-name")
    reported = [n for (n,) in _sql(insights, f"SELECT reported_count FROM {DESTINATION_COUNTS} WHERE sync_id = "
                                             f"'{sync_id}' AND phase = 'after' ORDER BY as_of")]
    traces = browser.chart("chart-counts-0")
    assert traces[1]["y"] == reported
    browser.chart("chart-drift-0")
    assert browser.errors == []


def test_customer_lookup_explains_membership(insights: InsightsWorld, browser: Browser) -> None:
    customer = _sql(insights, f"SELECT customer_key FROM {MEMBERSHIPS} WHERE segment = 'vip' AND as_of = "
                              f"(SELECT MAX(as_of) FROM {SNAPSHOTS}) ORDER BY customer_key LIMIT 1")[0][0]
    browser.open(_url(insights, "customer"), "customer_form")
    browser.page.select_option("select[name=segment]", "vip")
    browser.page.fill("input[name=customer]", customer)
    browser.page.click("button[type=submit]")
    browser.page.wait_for_selector("#explanation")
    browser.page.screenshot(path=str(browser.shots / "customer.png"), full_page=True)

    assert f"customer {customer} IS in segment vip" in browser.page.inner_text("#explanation")
    # each period the table shows starts at an as_of holding the customer whose segment's previous snapshot did not
    dates: dict[str, list] = {}
    for segment, as_of in _sql(insights, f"SELECT segment, as_of FROM {SNAPSHOTS} ORDER BY as_of"):
        dates.setdefault(segment, []).append(as_of)
    held = set(_sql(insights, f"SELECT segment, as_of FROM {MEMBERSHIPS} WHERE customer_key = '{customer}'"))
    starts = sorted((segment, at.isoformat()) for segment, ats in dates.items() for n, at in enumerate(ats)
                    if (segment, at) in held and (n == 0 or (segment, ats[n - 1]) not in held))
    shown = browser.page.eval_on_selector_all("#memberships tr", "rows => rows.slice(1).map(r => "
                                              "[r.cells[0].innerText, r.cells[2].innerText])")
    assert sorted(map(tuple, shown)) == starts and starts
    assert browser.errors == []


def test_the_views_show_inside_airflow_and_a_plain_dag_says_it_is_not_a_segments_dag(
        insights: InsightsWorld, browser: Browser) -> None:
    browser.open(f"{insights.base_url}/segprovider/dags/{PLAIN_DAG_ID}", "not_segments")
    assert "is not a segments DAG" in browser.page.inner_text("#not-segments")

    browser.page.goto(f"{insights.base_url}/dags/{DAG_ID}/plugin/segments_dag", wait_until="networkidle")
    frame = browser.page.frame_locator("iframe")
    frame.locator("nav").wait_for(timeout=30_000)
    browser.page.screenshot(path=str(browser.shots / "airflow_dag_page.png"), full_page=True)
    assert "Segments" in frame.locator("nav").inner_text()

"""The destination contract's counts: a count inside the range a vendor reports is never drift.

Meta reports an audience's size only as ``approximate_count_lower_bound``/``approximate_count_upper_bound``
(https://developers.facebook.com/docs/marketing-api/reference/custom-audience/ : "approximate_count_lower_bound:
Lower bound of the approximate number of people in this audience").
"""

from __future__ import annotations

import pytest

from airflow_segprovider.core.destination import ReportedCount


def test_an_exact_count_drifts_by_the_relative_difference() -> None:
    count = ReportedCount.exact(1000)
    assert not count.approximate and str(count) == "1000"
    assert count.drift_from(1000) == 0.0
    assert count.drift_from(1010) == pytest.approx(10 / 1010)
    assert count.drift_from(0) == 1000.0  # an empty expectation against a full list is all drift


@pytest.mark.parametrize("expected", [2100, 2150, 2199, 2200])
def test_a_count_inside_the_reported_range_is_no_drift(expected: int) -> None:
    # 2,199 members read as 2,100 to 2,200 on Meta: the clean sync of the issue, not a drift
    assert ReportedCount(2100, 2100, 2200).drift_from(expected) == 0.0


def test_a_count_outside_the_range_drifts_by_its_distance_from_the_nearer_bound() -> None:
    count = ReportedCount(2100, 2100, 2200)
    assert count.approximate and str(count) == "2100 to 2200 (approximate)"
    assert count.drift_from(2000) == pytest.approx(100 / 2000)
    assert count.drift_from(2420) == pytest.approx(220 / 2420)

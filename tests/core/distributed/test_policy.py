"""The pure decisions: own writes recognised, stale edits skipped, each policy, the change set."""

from __future__ import annotations

import datetime as dt

import pytest

from airflow_segprovider.core.distributed.policy import (
    Agreed,
    Decision,
    Observation,
    ReconcileSettings,
    Written,
    classify,
    plan_changes,
    resolve,
)

T0 = dt.datetime(2026, 11, 24, 8, 0)
WROTE = T0 + dt.timedelta(hours=1)
PULLED = T0 + dt.timedelta(hours=3)


def hours(n: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=n)


def test_our_own_write_coming_back_is_not_an_edit_whatever_its_timestamp() -> None:
    # we added the member at 09:00; the vendor stamps the membership 09:00:01 (after our write)
    claim = classify("hubspot", Observation(True, hours(1.0003)), Written(True, WROTE), PULLED)
    assert claim.kind == "unchanged" and claim.at == WROTE


def test_an_edit_after_the_last_write_is_dated_by_the_vendor() -> None:
    claim = classify("hubspot", Observation(True, hours(2)), Written(False, WROTE), PULLED)
    assert (claim.kind, claim.effective, claim.at) == ("edit", True, hours(2))


def test_an_exactly_dated_edit_older_than_the_last_write_is_stale_and_counts_as_the_written_value() -> None:
    claim = classify("hubspot", Observation(True, hours(0.5), exact=True), Written(False, WROTE), PULLED)
    assert (claim.kind, claim.present, claim.effective) == ("stale", True, False)


def test_a_member_time_before_the_last_write_only_bounds_the_change_which_is_dated_when_seen() -> None:
    # Mailchimp's last_changed is the member's, not the membership's: the add happened after our write
    claim = classify("mailchimp", Observation(True, hours(0.5), exact=False), Written(False, WROTE), PULLED)
    assert (claim.kind, claim.at) == ("edit", PULLED)


def test_removals_are_dated_when_first_seen() -> None:
    claim = classify("hubspot", Observation(False), Written(True, WROTE), PULLED)
    assert (claim.kind, claim.effective, claim.at) == ("edit", False, PULLED)


def claims(**values: tuple[bool, dt.datetime | None, str]):
    out = {}
    for system, (present, at, kind) in values.items():
        written = None if kind == "first" else Written(present if kind == "unchanged" else not present, WROTE)
        out[system] = classify(system, Observation(present, at), written, PULLED)
    return out


def test_authoritative_follows_the_authority_even_against_newer_edits() -> None:
    c = claims(crm=(False, None, "unchanged"), email=(True, hours(2.5), "edit"))
    decision = resolve(ReconcileSettings("authoritative", authority="crm"), c, Agreed(False, T0), PULLED)
    assert not decision.member and decision.rule == "authoritative:crm" and decision.conflict


def test_most_recent_takes_the_newest_change_and_names_it() -> None:
    c = claims(crm=(True, hours(2), "edit"), email=(False, None, "edit"))  # removal seen at PULLED: newer
    decision = resolve(ReconcileSettings("most_recent", tie_break="add"), c, Agreed(True, T0), PULLED)
    assert not decision.member and decision.source == "email" and "newest" in decision.reason


def test_most_recent_keeps_the_agreed_value_when_nothing_changed() -> None:
    c = claims(crm=(True, None, "unchanged"), email=(True, None, "unchanged"))
    decision = resolve(ReconcileSettings("most_recent", tie_break="remove"), c, Agreed(True, T0), PULLED)
    assert decision.member and decision.source == "agreed" and not decision.conflict


@pytest.mark.parametrize(("tie_break", "member"), [("add", True), ("remove", False), ("crm", True), ("email", False)])
def test_most_recent_ties_are_broken_by_the_named_rule(tie_break: str, member: bool) -> None:
    c = {"crm": classify("crm", Observation(True, hours(2)), Written(False, WROTE), PULLED),
         "email": classify("email", Observation(False), Written(True, WROTE), hours(2))}
    decision = resolve(ReconcileSettings("most_recent", tie_break=tie_break), c, Agreed(True, T0), PULLED)
    assert decision.member is member and decision.rule == f"most_recent:tie_break={tie_break}"


def test_a_stale_edit_cannot_win_and_is_reported_as_skipped() -> None:
    c = {"crm": classify("crm", Observation(True, hours(0.5)), Written(False, WROTE), PULLED),
         "email": classify("email", Observation(False), Written(False, WROTE), PULLED)}
    for policy in ("most_recent", "union"):
        decision = resolve(ReconcileSettings(policy, tie_break="add"), c, Agreed(False, T0), PULLED)
        assert not decision.member, policy
        assert "skipped as older than the value last written there" in decision.reason


def test_union_and_intersection() -> None:
    c = claims(a=(True, hours(2), "edit"), b=(False, None, "unchanged"), d=(False, None, "unchanged"))
    assert resolve(ReconcileSettings("union"), c, None, PULLED).member
    assert not resolve(ReconcileSettings("intersection"), c, None, PULLED).member


def test_the_change_set_adds_removes_and_respects_consent() -> None:
    member = Decision(True, PULLED, "union", "in a", "a", True)
    changes = plan_changes(member, "k1", {"a": True, "b": False, "c": True},
                           consent_ok={"a": True, "b": True, "c": False}, addable={"a": True, "b": True, "c": False})
    assert [(c.system, c.before, c.after, c.rule) for c in changes] == [("b", False, True, "union"),
                                                                        ("c", True, False, "consent")]
    gone = Decision(False, PULLED, "intersection", "not in b", "b", True)
    changes = plan_changes(gone, "k1", {"a": True, "b": False}, consent_ok={}, addable={})
    assert [(c.system, c.after, c.rule) for c in changes] == [("a", False, "intersection")]
    # an identity-less (not addable) member is never added, and nothing else is planned
    assert plan_changes(member, "k2", {"a": False}, consent_ok={"a": True}, addable={"a": False}) == []

"""Meta's upload sessions: the ids that tell ours apart, and what the recent ones say about a count.

Every call is its own session (``session={"session_id", "batch_seq": 1, "last_batch_flag": true}``); the
session id's bits above the 47th are :data:`ADD_SESSION_TAG` for an add and :data:`REMOVE_SESSION_TAG`
for a removal, so any process reading the sessions later (the count task is not the sync task) knows which
ones to take the match rate from: a removal's matches say nothing about how well adds match. A session that
failed, or is still being processed :data:`APPLY_HOURS` hours after it started (Meta applies an upload
within 24 hours, https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences),
will never apply: it is reported, not counted as pending, or every later count would stay "pending".
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["ADD_SESSION_TAG", "APPLY_HOURS", "REMOVE_SESSION_TAG", "as_int", "new_session_id", "session_tag",
           "summarize_sessions"]

#: stages of a session that is done
DONE_STAGES = frozenset({"completed", "complete", "finished", "done"})
#: words in the stage of a session that ended without applying (it will never apply)
FAILED_STAGE_WORDS = ("fail", "error", "abort", "cancel", "expire")
#: Meta applies an upload within this many hours; a session still processing after that is stuck
APPLY_HOURS = 24
#: the bits above the 47th of the session ids of our adds and of our removals (ids are positive int64s)
ADD_SESSION_TAG = 0x5E6A
REMOVE_SESSION_TAG = 0x5E6D


def new_session_id(tag: int) -> int:
    """A fresh upload session id whose bits above the 47th are ``tag`` (a positive int64, as Meta's ids are)."""
    return (tag << 47) | secrets.randbits(47)


def session_tag(session_id: Any) -> int:
    """The tag of one of our session ids (:func:`new_session_id`); 0 for anyone else's."""
    value = as_int(session_id)
    return value >> 47 if 0 < value < 1 << 63 else 0


def as_int(value: Any) -> int:
    """Graph's numeric strings (and numbers) as an int; anything else as 0."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def summarize_sessions(sessions: Iterable[Mapping[str, Any]], now: float,
                       report: Callable[[str], None]) -> tuple[float | None, bool]:
    """``(match rate, pending)`` of upload sessions: matched over valid entries received in the completed
    sessions of our adds (None without any), and whether any session is still being applied (not done, not
    failed, started less than :data:`APPLY_HOURS` hours before ``now``).

    :param sessions: the ``data`` of ``GET /{audience_id}/sessions``.
    :param now: the reading's time, in seconds since the epoch.
    :param report: told, in words, of each session that will never apply.
    """
    pending = False
    received = matched = 0
    for entry in sessions:
        stage = str(entry.get("stage", "")).lower()
        if any(word in stage for word in FAILED_STAGE_WORDS):
            report(f"upload session {entry.get('session_id')} ended {stage}: its entries were not applied")
            continue
        if stage not in DONE_STAGES:
            started = as_int(entry.get("start_time"))
            if started and now - started > APPLY_HOURS * 3600:
                report(f"upload session {entry.get('session_id')} is still '{stage}' {(now - started) / 3600:.0f} "
                       f"hours after it started (Meta applies uploads within {APPLY_HOURS}): not waiting for it")
            else:
                pending = True
            continue
        if session_tag(entry.get("session_id")) != ADD_SESSION_TAG:
            continue  # a removal's matches (or another tool's upload) say nothing about our adds
        valid = as_int(entry.get("num_received")) - as_int(entry.get("num_invalid_entries"))
        received += max(0, valid)
        matched += as_int(entry.get("num_matched"))
    return (min(1.0, matched / received) if received else None), pending

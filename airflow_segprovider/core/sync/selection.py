"""Which syncs a centralized run pushes: one owner per segment.

A segment with a ``reconcile:`` policy belongs to the distributed model, whose
reconcile keeps the hand edits made in its lists; a centralized push of such a
segment would undo them. The centralized selection therefore leaves those syncs
out, and naming one says why and what to run instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow_segprovider.core.errors import TerminalError
from airflow_segprovider.core.project.spec import centralized_syncs, reconciled_syncs

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project, Sync


class ReconciledSyncError(TerminalError):
    """A sync of a segment the distributed model owns was selected for a centralized push."""


def _owned_by_reconcile(project: Project, sync: Sync) -> ReconciledSyncError:
    policy = project.reconcile[sync.segment]
    where = f" at {policy.loc}" if str(policy.loc) else ""
    return ReconciledSyncError(
        f"sync {sync.id} belongs to the distributed model: segment {sync.segment!r} has a reconcile policy "
        f"({policy.policy}){where}, so its lists are reconciled by segments_distributed and a centralized push "
        f"would undo the hand edits the reconcile keeps. Run it with `segprovider distributed PROJECT --segment "
        f"{sync.segment}` instead, or remove the segment's `reconcile:` entry to hand it back to the "
        f"centralized model.")


def select_syncs(project: Project, selectors: Sequence[str] | None, *,
                 include_reconciled: bool = False) -> list[Sync]:
    """Syncs whose id, segment or destination matches a selector (all when there is none).

    The centralized model's selection: syncs of a segment with a ``reconcile:`` policy are left out
    (the distributed model owns them, see :func:`reconciled_syncs`). A destination selector skips them
    silently; naming such a sync or its segment raises :class:`ReconciledSyncError`, which says why
    and what to run instead.

    :param include_reconciled: select from every declared sync (read-only uses such as ``describe``).
    """
    pool = list(project.syncs) if include_reconciled else centralized_syncs(project)
    if not selectors:
        return pool
    wanted = set(selectors)
    if not include_reconciled:
        for sync in reconciled_syncs(project):
            if {sync.id, sync.segment} & wanted:
                raise _owned_by_reconcile(project, sync)
    chosen = [s for s in pool if {s.id, s.segment, s.destination} & wanted]
    unknown = [sel for sel in selectors if not any(sel in {s.id, s.segment, s.destination} for s in project.syncs)]
    if unknown:
        raise TerminalError(f"no sync matches {', '.join(map(repr, unknown))}; syncs: "
                               f"{', '.join(s.id for s in project.syncs)}")
    return chosen

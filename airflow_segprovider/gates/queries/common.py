"""What every gate query shares: the gates there are, the syncs a gate checks, and its errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from airflow_segprovider.core.errors import TerminalError

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project, Sync

GATES = ("freshness", "types", "segment_size", "consent", "cross_system_counts")
#: Gates of the hybrid model's attribute hub (frames built by airflow_segprovider.gates.hub).
HUB_GATES = ("hub_freshness", "hub_types")
#: Gates checked per sync (the others check the data model's tables).
SYNC_GATES = frozenset({"segment_size", "consent", "cross_system_counts"})
PHASES = ("before", "after")


class GateConfigError(TerminalError, ValueError):
    """A gate was asked for something it cannot do (unknown gate, parameter or phase); retrying cannot help."""


def gate_syncs(project: Project, gate: str, selectors: Sequence[str] | None = None) -> list[Sync]:
    """The syncs that declare ``gate``, narrowed to ``selectors`` (sync ids, segments or destinations)."""
    from airflow_segprovider.core.sync import select_syncs

    check_gate(gate)
    return [sync for sync in select_syncs(project, selectors) if gate in sync.gates]


def check_gate(gate: str) -> str:
    if gate not in GATES and gate not in HUB_GATES:
        raise GateConfigError(f"unknown gate {gate!r}; gates: {', '.join(GATES + HUB_GATES)}")
    return gate


def no_rows(columns: Mapping[str, str]) -> str:
    """A query with the given typed columns and no rows (a gate with nothing to check)."""
    return "SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in columns.items()) + " WHERE FALSE"

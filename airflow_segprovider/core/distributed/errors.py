"""The error every step of a reconcile raises when it cannot go on."""

from __future__ import annotations

from airflow_segprovider.core.errors import TerminalError


class ReconcileError(TerminalError):
    """A reconcile cannot go on; retrying does not help (a step out of order, a missing pull)."""

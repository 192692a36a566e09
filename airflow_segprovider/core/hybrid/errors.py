"""What the hybrid model raises: the hub cannot do what was asked, or a value does not fit a spoke's field."""

from __future__ import annotations

from airflow_segprovider.core.errors import TerminalError


class HubError(TerminalError):
    """The hub cannot do what was asked (no hub declared, not built yet, unknown destination)."""


class WireTypeError(TerminalError):
    """A value cannot be written in the type the destination's field expects."""

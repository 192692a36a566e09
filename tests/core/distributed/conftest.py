"""Fixtures for the distributed-model tests; they and their helpers live in ``support.distributed_world``."""

from __future__ import annotations

from support.distributed_world import customers, module_tmp, sandbox, warehouse  # noqa: F401  (pytest fixtures)

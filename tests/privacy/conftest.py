"""Fixtures for the privacy tests: the landed example world (:mod:`support.privacy_world`) and, for the
distributed model's reconcile, the fixtures of :mod:`support.distributed_world`."""

from __future__ import annotations

from support.distributed_world import customers, module_tmp, sandbox, warehouse  # noqa: F401  (pytest fixtures)
from support.privacy_world import world  # noqa: F401  (the fixture)

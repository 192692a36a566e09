"""What the insights tests share with their fixtures (``tests/plugins/conftest.py``): the DAG ids and the world.

A module of its own, not the conftest: test folders have no ``__init__.py``, so ``from conftest import``
would find whichever conftest another folder's tests loaded first under xdist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from pathlib import Path

    from support.airflow_services import Service

DAG_ID = "segments_centralized"
PLAIN_DAG_ID = "plain_reports"


@dataclass
class InsightsWorld:
    """The running api-server, its users' passwords and the seeded warehouse."""

    base_url: str
    passwords: dict[str, str]
    warehouse: Path
    docs_dir: Path
    services: list[Service]

    def token(self, user: str) -> str:
        reply = requests.post(f"{self.base_url}/auth/token",
                              json={"username": user, "password": self.passwords[user]}, timeout=10)
        reply.raise_for_status()
        return reply.json()["access_token"]

"""Fixtures for the destination sandbox tests: a fresh, seeded sandbox on loopback per test."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

from segprovider_sandbox import DemoFixtures, RunningSandbox, serve

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here talks HTTP over loopback: mark it ``integration``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    """A sandbox with the default config and the demo fixtures, on a free loopback port."""
    with serve(db_path=tmp_path / "sandbox.db") as running:
        running.state.seed_demo_fixtures()
        yield running


@pytest.fixture
def fixtures() -> DemoFixtures:
    """The ids of the seeded demo fixtures."""
    return DemoFixtures()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A keep-alive HTTP session, closed after the test."""
    with requests.Session() as session:
        yield session


@pytest.fixture
def configure(sandbox: RunningSandbox) -> Callable[..., dict[str, Any]]:
    """Change the running sandbox's faults through ``POST /__sandbox/config``."""

    def post(**body: Any) -> dict[str, Any]:
        response = requests.post(f"{sandbox.url}/__sandbox/config", json=body, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    return post

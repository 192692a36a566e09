"""The privacy tests' world: a landed, ingested and evaluated example project on DuckDB, and the sandbox (issue #16)."""

from __future__ import annotations

import json
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.state.privacy import SALT_ENV
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.example.generate import generate
from airflow_segprovider.example.landing import write_landing_files
from airflow_segprovider.ingest.loader import ingest_all
from segprovider_sandbox import DEFAULT_HUBSPOT_TOKEN, DEFAULT_MAILCHIMP_API_KEY, DEFAULT_META_ACCESS_TOKEN, serve
from support.sync_constants import DAY_2, FAST_RETRIES

SALT = "test-privacy-salt-0123456789abcdef"
#: the Meta audience the example's high_intent and win_back syncs write (seeded as the sync tests do)
META_AUDIENCE = "23850000000000002"


@dataclass
class World:
    root: Path
    project: Any
    warehouse: DuckDBWarehouse
    sandbox: Any
    connections: dict[str, dict[str, Any]]

    def ingest_and_evaluate(self) -> list[Any]:
        results = ingest_all(self.project, self.warehouse, files_root=self.root)
        assert all(result.succeeded for result in results), [r.error for r in results]
        evaluate(self.project, self.warehouse, DAY_2, run_id=f"day_2_{len(results)}")
        return results

    def logged_requests(self, vendor: str | None = None) -> list[dict[str, Any]]:
        """The sandbox's request log, read through its admin API (``GET /__sandbox/requests``)."""
        url = f"{self.sandbox.url}/__sandbox/requests" + (f"?vendor={vendor}" if vendor else "")
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())["requests"]


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(SALT_ENV, SALT)
    root = tmp_path / "project"
    shutil.copytree(EXAMPLE_PROJECT, root, ignore=shutil.ignore_patterns("landing"))
    upstream = DuckDBWarehouse(tmp_path / "upstream.duckdb")
    generate(upstream, 2000, seed=7)
    write_landing_files(upstream, root / "landing")
    upstream.close()
    project = load_project(root)
    warehouse = DuckDBWarehouse(tmp_path / "warehouse.duckdb")
    with serve(db_path=tmp_path / "sandbox.db") as sandbox:
        fixtures = sandbox.state.seed_demo_fixtures()
        sandbox.state.seed_meta_audience(META_AUDIENCE, fixtures.meta_ad_account_id, "high_intent")
        sandbox.fixtures = fixtures
        connections = {
            "mailchimp_newsletter": {"host": f"{sandbox.url}/3.0", "password": DEFAULT_MAILCHIMP_API_KEY,
                                     "extra": FAST_RETRIES},
            "hubspot_crm": {"host": sandbox.url, "password": DEFAULT_HUBSPOT_TOKEN, "extra": FAST_RETRIES},
            "meta_ads": {"host": sandbox.url, "password": DEFAULT_META_ACCESS_TOKEN, "extra": FAST_RETRIES},
        }
        world = World(root, project, warehouse, sandbox, connections)
        world.ingest_and_evaluate()
        yield world
    warehouse.close()

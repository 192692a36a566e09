"""``segprovider sync`` attempts every selected sync: one failing destination never stops the others.

A revoked Meta token fails Meta's syncs; Mailchimp's and HubSpot's still run, the command prints a
summary naming what failed and exits non-zero.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_segprovider.cli.main import EXIT_ERROR, EXIT_OK, main

AS_OF = "2026-11-24"


@pytest.mark.integration
def test_a_revoked_meta_token_fails_metas_syncs_and_every_other_sync_runs(
    project_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_segprovider.cli.demo import connection_variables, sandbox_connections
    from segprovider_sandbox import serve
    from support.sandbox import SANDBOX_CREDENTIALS

    db = tmp_path / "warehouse.duckdb"
    assert main(["generate", "--customers", "500", "--db", str(db)]) == EXIT_OK
    assert main(["evaluate", str(project_copy), "--db", str(db), "--as-of", AS_OF]) == EXIT_OK
    sandbox = serve(db_path=tmp_path / "sandbox.db")
    try:
        sandbox.state.seed_example_project()
        connections = sandbox_connections(db, sandbox.url, f"{sandbox.url}/webhook/alerts", SANDBOX_CREDENTIALS,
                                          retry={"backoff_base": 0.05, "backoff_max": 0.1, "max_attempts": 2})
        connections["segprovider_meta"]["password"] = "a-revoked-token"
        for name, value in connection_variables(connections).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()

        code = main(["sync", str(project_copy), "--db", str(db), "--as-of", AS_OF, "--json"])

        out, err = capsys.readouterr()
        assert code == EXIT_ERROR
        assert "Traceback" not in err
        summary = err.strip().splitlines()[-1]
        assert "syncs failed" in summary and "__meta_ads" in summary, err
        records = json.loads(out[out.index("["):])
        ran = {r["sync_id"]: r["status"] for r in records}
        assert ran and all(status == "succeeded" for status in ran.values()), ran
        assert any(s.endswith("__mailchimp_newsletter") for s in ran) and any(s.endswith("__hubspot_crm") for s in ran)
        assert not any(s.endswith("__meta_ads") for s in ran)
        writes = [r for r in sandbox.state.requests() if r.method in ("POST", "PUT") and r.vendor == "mailchimp"]
        assert writes, "Mailchimp received nothing: the failing Meta sync stopped the others"
    finally:
        sandbox.stop()

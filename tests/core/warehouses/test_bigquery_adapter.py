"""The BigQuery adapter's own statements, against a client that records them (no BigQuery runs here).

The differential tests run the project's BigQuery SQL on DuckDB; this module covers what only the
adapter does: one session for every statement, ``BEGIN``/``COMMIT``/``ROLLBACK TRANSACTION``, the
``MERGE`` upsert from typed literal rows (each statement must parse as BigQuery SQL), and closing.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

pytest.importorskip("google.cloud.bigquery")

from airflow_segprovider.core.warehouses.bigquery import BigQueryWarehouse  # noqa: E402


class _Job:
    def __init__(self, rows: list[Any], session: Any) -> None:
        self._rows, self.session_info = rows, session

    def result(self, page_size: int | None = None) -> list[Any]:
        return self._rows


class RecordingClient:
    """Stands in for ``google.cloud.bigquery.Client``: records each query and its job config."""

    project = "acme-analytics"

    def __init__(self, refuse: str | None = None) -> None:
        self.refuse = refuse
        self.statements: list[str] = []
        self.configs: list[Any] = []
        self.datasets: list[str] = []
        self.closed = False

    def create_dataset(self, ref: str, exists_ok: bool) -> None:
        self.datasets.append(ref)

    def query(self, sql: str, job_config: Any = None, location: str | None = None) -> _Job:
        self.statements.append(sql)
        self.configs.append(job_config)
        if self.refuse and self.refuse in sql:
            raise RuntimeError(f"400 refused: {sql[:40]}")
        return _Job([], SimpleNamespace(session_id="session-1") if job_config.create_session else None)

    def close(self) -> None:
        self.closed = True


def test_every_statement_runs_in_the_session_the_first_one_opened() -> None:
    client = RecordingClient()
    warehouse = BigQueryWarehouse(client, dataset="segments", location="EU")
    warehouse.execute("SELECT 1")
    warehouse.execute("SELECT 2")
    assert client.datasets == ["acme-analytics.segments"]
    first, second = client.configs
    assert first.create_session is True and first.default_dataset.dataset_id == "segments"
    assert not second.create_session
    assert [(p.key, p.value) for p in second.connection_properties] == [("session_id", "session-1")]


def test_upsert_merges_typed_literal_rows_in_one_transaction() -> None:
    client = RecordingClient()
    warehouse = BigQueryWarehouse(client, dataset="segments")
    warehouse.upsert("sync_state", ["sync_id", "customer_key"], pa.table({
        "sync_id": ["vip__crm", "vip__crm"], "customer_key": ["1", "2"], "identity": ["o'brien@example.com", None],
        "in_destination": [True, False]}))
    merges = [s for s in client.statements if s.startswith("MERGE")]
    assert len(merges) == 1 and client.statements[-1] == "COMMIT TRANSACTION"
    assert client.statements.index("BEGIN TRANSACTION") < client.statements.index(merges[0])
    merge = sqlglot.parse_one(merges[0], read="bigquery")
    assert isinstance(merge, exp.Merge)
    literals = {lit.this for lit in merge.find_all(exp.Literal) if lit.is_string}
    assert {"vip__crm", "1", "2", "o'brien@example.com"} <= literals
    assert "WHEN MATCHED THEN UPDATE SET" in merges[0] and "WHEN NOT MATCHED THEN INSERT" in merges[0]


def test_a_failure_inside_a_transaction_rolls_it_back_and_commits_nothing() -> None:
    client = RecordingClient(refuse="INSERT INTO")
    warehouse = BigQueryWarehouse(client, dataset="acme-analytics.segments")
    with pytest.raises(RuntimeError, match="refused"), warehouse.transaction():
        warehouse.execute("DELETE FROM memberships WHERE TRUE")
        with warehouse.transaction():  # nested use joins the outer transaction
            warehouse.execute("INSERT INTO memberships SELECT 1")
    assert client.statements[-4:] == ["BEGIN TRANSACTION", "DELETE FROM memberships WHERE TRUE",
                                      "INSERT INTO memberships SELECT 1", "ROLLBACK TRANSACTION"]
    assert "COMMIT TRANSACTION" not in client.statements
    warehouse.execute("SELECT 1")  # the adapter is usable again: not stuck in the failed transaction
    assert client.statements[-1] == "SELECT 1"


def test_close_ends_the_session_and_closes_the_client() -> None:
    client = RecordingClient()
    warehouse = BigQueryWarehouse(client, dataset="segments")
    warehouse.execute("SELECT 1")
    warehouse.close()
    assert client.statements[-1] == "CALL BQ.ABORT_SESSION()" and client.closed

"""BigQuery: the ``google.cloud.bigquery.Client`` that ``BigQueryHook.get_client()`` hands out.

BigQuery is not a DB-API database, and its transactions differ, so read this before relying on it:

* **one session**: every statement runs in a BigQuery session the adapter opens on first use, so
  temporary tables (the evaluation's flags) and multi-statement transactions work across queries;
* **transactions**: :meth:`transaction` runs ``BEGIN TRANSACTION`` / ``COMMIT TRANSACTION`` /
  ``ROLLBACK TRANSACTION`` in that session: DML inside (the snapshot, its diff, sync state) is
  all-or-nothing. DDL and load jobs cannot take part in a BigQuery transaction, so inside one,
  loads and upserts are ``INSERT`` / ``MERGE`` statements from literal rows; outside one, loads
  are Parquet load jobs (each job is atomic on its own). A transaction is snapshot isolated: its
  reads see one snapshot of the tables (https://cloud.google.com/bigquery/docs/transactions), so
  ``transaction(snapshot=True)`` asks nothing more;
* **results** come as Arrow through ``RowIterator.to_arrow_iterable()`` (pages of ``batch_size``
  rows; the BigQuery Storage API is used when installed), never as a list of rows;
* **names**: the dataset is the schema (``default_dataset`` of every query); BigQuery has no
  primary keys, so :meth:`upsert` relies on ``MERGE ... ON keys`` alone.

No BigQuery server runs in the test environment: the SQL this adapter and the core send is
checked by parsing it as BigQuery and running it transpiled to DuckDB (``tests/core/warehouses``);
the adapter's calls into the client library are not exercised against a server there.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Sequence

from airflow_segprovider.core.sql.dialects import bigquery_literal
from airflow_segprovider.core.warehouses.base import TransactionMixin
from airflow_segprovider.core.warehouses.dbapi import arrow_table_ddl, split_table_name

if TYPE_CHECKING:
    import pyarrow as pa

_MAX_STATEMENT_CHARS = 500_000


def quote(name: str) -> str:
    return "`" + name.replace("`", "\\`") + "`"


class BigQueryWarehouse(TransactionMixin):
    """A BigQuery dataset as the project's warehouse.

    :param client: a ``google.cloud.bigquery.Client`` (e.g. ``BigQueryHook(...).get_client()``).
    :param dataset: the dataset of the project's tables and the core's own tables, ``dataset`` or
        ``project.dataset``; created when missing.
    :param location: where queries and the dataset run (e.g. ``EU``); the client's default when None.
    """

    dialect = "bigquery"

    def __init__(self, client: Any, *, dataset: str, location: str | None = None) -> None:
        self.client = client
        project, _, name = dataset.rpartition(".")
        self.project = project or client.project
        self.schema = name
        self.dataset_ref = f"{self.project}.{name}"
        self.location = location
        self._lock = threading.RLock()
        self._in_transaction = False
        self._session_id: str | None = None
        client.create_dataset(self.dataset_ref, exists_ok=True)

    def _job_config(self, **kwargs: Any) -> Any:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(default_dataset=self.dataset_ref, **kwargs)
        if self._session_id is None:
            config.create_session = True
        else:
            config.connection_properties = [bigquery.ConnectionProperty("session_id", self._session_id)]
        return config

    def _run(self, sql: str) -> Any:
        with self._lock:
            job = self.client.query(sql, job_config=self._job_config(), location=self.location)
            result = job.result()
            if self._session_id is None and job.session_info is not None:
                self._session_id = job.session_info.session_id
            return result

    def execute(self, sql: str) -> None:
        self._run(sql)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row.values()) for row in self._run(sql)]

    def query_records(self, sql: str) -> list[dict[str, Any]]:
        return [dict(row.items()) for row in self._run(sql)]

    def iter_batches(self, sql: str, batch_size: int = 50_000) -> Iterator[pa.RecordBatch]:
        with self._lock:
            job = self.client.query(sql, job_config=self._job_config(), location=self.location)
            rows = job.result(page_size=batch_size)
            if self._session_id is None and job.session_info is not None:
                self._session_id = job.session_info.session_id
        for chunk in rows.to_arrow_iterable():
            batches = chunk.to_batches(max_chunksize=batch_size) if hasattr(chunk, "to_batches") else [chunk]
            yield from batches

    # transaction() (TransactionMixin) is all-or-nothing for the DML inside: see the module notes on
    # DDL and load jobs
    def _begin(self) -> None:
        self.execute("BEGIN TRANSACTION")

    def _commit(self) -> None:
        self.execute("COMMIT TRANSACTION")

    def _rollback(self) -> None:
        self.execute("ROLLBACK TRANSACTION")

    def columns(self, table: str) -> dict[str, str] | None:
        dataset, name = split_table_name(table, self.schema)
        rows = self.query(
            f"SELECT column_name, data_type FROM {quote(self.project)}.{quote(dataset or self.schema)}"
            f".INFORMATION_SCHEMA.COLUMNS WHERE table_name = {bigquery_literal(name)} ORDER BY ordinal_position")
        return {column: str(kind).upper() for column, kind in rows} or None

    def _literal_selects(self, table: str, rows: pa.Table) -> list[str]:
        target = self.columns(table) or {}
        statements, parts, size = [], [], 0
        for record in rows.to_pylist():
            cells = []
            for name, value in record.items():
                kind = target.get(name)
                literal = bigquery_literal(value)
                cells.append(f"CAST({literal} AS {kind}) AS {quote(name)}" if kind else f"{literal} AS {quote(name)}")
            text = "SELECT " + ", ".join(cells)
            if parts and size + len(text) > _MAX_STATEMENT_CHARS:
                statements.append(" UNION ALL ".join(parts))
                parts, size = [], 0
            parts.append(text)
            size += len(text) + 11
        if parts:
            statements.append(" UNION ALL ".join(parts))
        return statements

    def load(self, table: str, rows: pa.Table, *, create: bool = False) -> None:
        """Append ``rows``: a Parquet load job outside a transaction, ``INSERT`` statements inside one."""
        if create and self.columns(table) is None:
            self.execute(arrow_table_ddl(table, rows.schema, self.dialect))
        if rows.num_rows == 0:
            return
        columns = ", ".join(quote(name) for name in rows.column_names)
        if self._in_transaction:
            for select in self._literal_selects(table, rows):
                self.execute(f"INSERT INTO {table} ({columns}) {select}")
            return
        import pyarrow.parquet as pq
        from google.cloud import bigquery

        dataset, name = split_table_name(table, self.schema)
        buffer = io.BytesIO()
        pq.write_table(rows, buffer)
        buffer.seek(0)
        config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET,
                                        write_disposition=bigquery.WriteDisposition.WRITE_APPEND)
        with self._lock:
            self.client.load_table_from_file(buffer, f"{self.project}.{dataset}.{name}", job_config=config,
                                             location=self.location).result()

    def upsert(self, table: str, keys: Sequence[str], rows: pa.Table) -> None:
        """``MERGE`` by ``keys`` from literal rows (in the current transaction when there is one)."""
        if rows.num_rows == 0:
            return
        names = rows.column_names
        on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in keys)
        updates = ", ".join(f"{quote(n)} = s.{quote(n)}" for n in names if n not in keys)
        insert = ", ".join(quote(n) for n in names)
        values = ", ".join(f"s.{quote(n)}" for n in names)
        with self._lock, self.transaction():
            for select in self._literal_selects(table, rows):
                self.execute(f"MERGE INTO {table} AS t USING ({select}) AS s ON {on} "
                             + (f"WHEN MATCHED THEN UPDATE SET {updates} " if updates else "")
                             + f"WHEN NOT MATCHED THEN INSERT ({insert}) VALUES ({values})")

    def close(self) -> None:
        with self._lock:
            if self._session_id is not None:
                with contextlib.suppress(Exception):  # an expired session ends on its own
                    self.client.query("CALL BQ.ABORT_SESSION()", job_config=self._job_config()).result()
                self._session_id = None
            self.client.close()

    def __repr__(self) -> str:
        return f"BigQueryWarehouse(dataset={self.dataset_ref!r})"

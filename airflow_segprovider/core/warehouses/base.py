"""The warehouse interface the core runs on, and the transaction shape every adapter shares.

The engine needs little from a warehouse: run statements inside a transaction,
read small results, stream large ones in Arrow batches, load and upsert Arrow
rows, and describe tables. DuckDB (:mod:`~airflow_segprovider.core.warehouses.duckdb`) is the
embedded default; the adapters for PostgreSQL, Snowflake and BigQuery wrap the connections that
Airflow's own hooks hand out; the core never imports Airflow.

Values that come from outside (a request's segment or customer key) reach a query as **bound
parameters**, never as SQL text: ``query(sql, parameters)`` and ``query_records(sql, parameters)``
take a mapping, named in the SQL in DB-API's ``pyformat`` style, ``%(name)s`` (with a literal ``%``
written ``%%`` when parameters are given), which psycopg, the Snowflake connector and BigQuery's
DB-API read natively and the DuckDB adapter rewrites to DuckDB's ``$name``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa


class Warehouse(Protocol):
    """What the evaluation engine, the membership store and the sync state need from a warehouse."""

    dialect: str
    schema: str | None

    def execute(self, sql: str) -> None: ...

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]: ...

    def query_records(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def iter_batches(self, sql: str, batch_size: int = 50_000) -> Iterator[pa.RecordBatch]: ...

    def transaction(self) -> contextlib.AbstractContextManager[None]: ...

    def columns(self, table: str) -> dict[str, str] | None: ...

    def upsert(self, table: str, keys: Sequence[str], rows: pa.Table) -> None: ...

    def load(self, table: str, rows: pa.Table, *, create: bool = False) -> None: ...

    def close(self) -> None: ...


class TransactionMixin:
    """``transaction()`` for every adapter: all-or-nothing, and nested use joins the outer transaction.

    The adapter holds ``_lock`` (an ``RLock``) and ``_in_transaction``, and says how its warehouse
    begins, commits and rolls back.
    """

    _lock: threading.RLock
    _in_transaction: bool

    def _begin(self) -> None:
        raise NotImplementedError

    def _commit(self) -> None:
        raise NotImplementedError

    def _rollback(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing: on any exception everything done inside is rolled back."""
        with self._lock:
            if self._in_transaction:  # nested use joins the outer transaction
                yield
                return
            self._begin()
            self._in_transaction = True
            try:
                yield
            except BaseException:
                self._in_transaction = False
                self._rollback()
                raise
            else:
                self._in_transaction = False
                self._commit()

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
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa


#: Dialects whose transactions cannot hold DDL: Snowflake commits an open transaction before any DDL,
#: BigQuery refuses DDL on permanent tables inside one.
_DDL_OUTSIDE_TRANSACTION = frozenset({"snowflake", "bigquery"})


def ddl_outside_transaction(dialect: str) -> bool:
    """Whether tables must be created or altered before a transaction of ``dialect`` rather than inside it,
    where the DDL would take part in the transaction (DuckDB and PostgreSQL: it does)."""
    return dialect in _DDL_OUTSIDE_TRANSACTION


class Warehouse(Protocol):
    """What the evaluation engine, the membership store and the sync state need from a warehouse."""

    dialect: str
    schema: str | None

    def execute(self, sql: str) -> None: ...

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]: ...

    def query_records(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...

    def iter_batches(self, sql: str, batch_size: int = 50_000) -> Iterator[pa.RecordBatch]: ...

    def transaction(self, *, snapshot: bool = False) -> contextlib.AbstractContextManager[None]: ...

    def columns(self, table: str) -> dict[str, str] | None: ...

    def upsert(self, table: str, keys: Sequence[str], rows: pa.Table) -> None: ...

    def load(self, table: str, rows: pa.Table, *, create: bool = False) -> None: ...

    def close(self) -> None: ...


class TransactionMixin:
    """``transaction()`` for every adapter: all-or-nothing, and nested use joins the outer transaction.

    The adapter holds ``_lock`` (an ``RLock``) and ``_in_transaction``, and says how its warehouse
    begins, commits and rolls back, and how it begins a transaction that reads one snapshot
    (:meth:`_begin_snapshot`, :meth:`transaction`'s ``snapshot``).
    """

    _lock: threading.RLock
    _in_transaction: bool
    #: whether the open transaction was begun with ``snapshot=True``
    _snapshot: bool = False

    def _begin(self) -> None:
        raise NotImplementedError

    def _begin_snapshot(self) -> None:
        """Begin a transaction whose reads all see one snapshot; the same as :meth:`_begin` where every
        transaction does (DuckDB, BigQuery) or none can (Snowflake)."""
        self._begin()

    def _commit(self) -> None:
        raise NotImplementedError

    def _rollback(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def transaction(self, *, snapshot: bool = False) -> Iterator[None]:
        """All-or-nothing: on any exception everything done inside is rolled back.

        :param snapshot: every statement inside reads the same snapshot of the database, so rows other
            connections commit meanwhile are not half seen (the evaluation counts each ingest load's rows,
            then reads the new loads' rows, and records the counts as seen). What each warehouse gives:

            * **DuckDB**: every transaction is snapshot isolated (MVCC), asked or not;
            * **PostgreSQL**: ``REPEATABLE READ``, one snapshot taken at the first statement; a write that
              conflicts with a concurrent committed one fails with SQLSTATE 40001 (serialization failure),
              which a retry of the whole transaction resolves;
            * **BigQuery**: multi-statement transactions are snapshot isolated, asked or not;
            * **Snowflake**: ``READ COMMITTED`` only: each statement sees what was committed when it
              began, so rows committed between two statements can be seen by the second and not the first.
              (DDL inside a Snowflake transaction also commits it.) No snapshot is available there.
        :raises RuntimeError: a snapshot is asked for inside a transaction begun without one (joining it
            would silently read without the snapshot).
        """
        with self._lock:
            if self._in_transaction:  # nested use joins the outer transaction
                if snapshot and not self._snapshot:
                    raise RuntimeError("transaction(snapshot=True) inside a transaction begun without a snapshot: "
                                       "begin the outer transaction with snapshot=True")
                yield
                return
            if snapshot:
                self._begin_snapshot()
            else:
                self._begin()
            self._in_transaction, self._snapshot = True, snapshot
            try:
                yield
            except BaseException:
                self._in_transaction = self._snapshot = False
                try:
                    self._rollback()
                except Exception:  # noqa: BLE001 - the error that ended the transaction is the one to report
                    logging.getLogger(__name__).warning("rollback failed after an error", exc_info=True)
                raise
            else:
                self._in_transaction = self._snapshot = False
                self._commit()

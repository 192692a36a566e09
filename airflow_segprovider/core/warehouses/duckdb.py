"""The embedded default warehouse: DuckDB, in-process, one file.

DuckDB lets one process open a file for writing at a time. Opening a file another process holds
raises :class:`WarehouseInUseError` (transient: waiting helps; ``lock_wait_s`` retries with a
bounded backoff), and a path that is a folder or another kind of file raises
:class:`WarehouseFileError` (terminal), each naming the file, instead of DuckDB's ``IOException``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.errors import TerminalError, TransientError
from airflow_segprovider.core.sql.dialects import text_literal
from airflow_segprovider.core.state.staging import DUCKDB_LOAD_ROWS, DUCKDB_UPSERT_ROWS
from airflow_segprovider.core.warehouses.base import TransactionMixin

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


#: Longest pause between two attempts to open a file another process holds.
LOCK_RETRY_MAX_PAUSE_S = 2.0
DUCKDB_MAGIC = b"DUCK"
_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")
#: A DB-API ``pyformat`` placeholder (``%(name)s``) or an escaped percent sign (``%%``).
_PYFORMAT = re.compile(r"%\((\w+)\)s|%%")


def duckdb_parameters(sql: str, parameters: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``sql`` with ``pyformat`` placeholders (``%(name)s``) rewritten to DuckDB's named ``$name``.

    The values stay apart from the text: DuckDB binds them. Only the parameters the SQL names are passed
    (DuckDB refuses unused ones).

    :raises KeyError: the SQL names a parameter that ``parameters`` does not hold.
    """
    used: dict[str, Any] = {}

    def placeholder(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        used[name] = parameters[name]
        return f"${name}"

    return _PYFORMAT.sub(placeholder, sql), used


class WarehouseInUseError(TransientError):
    """Another process holds the DuckDB file's write lock (DuckDB allows one writing process per file).

    :param path: the database file.
    :param pid: the process holding it, when DuckDB names it.
    :param waited_s: how long the open was retried before giving up.
    """

    def __init__(self, path: str, pid: int | None = None, waited_s: float = 0.0) -> None:
        self.path, self.pid, self.waited_s = path, pid, waited_s
        holder = f" (pid {pid} holds its lock)" if pid is not None else " (it holds the file's lock)"
        waited = f" after waiting {waited_s:g}s" if waited_s else ""
        super().__init__(f"the warehouse {path} is in use by another process{holder}{waited}; DuckDB lets one "
                         "process write a file at a time: wait for it to finish, or pass --wait-for-lock SECONDS")

    def __reduce__(self):  # picklable with its fields, like every error of the package
        return (type(self), (self.path, self.pid, self.waited_s))


class WarehouseFileError(TerminalError):
    """The warehouse path cannot be opened as a DuckDB database: a folder, another kind of file, no access.

    :param path: the path given.
    :param problem: what is wrong with it, starting with the path.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(problem)

    def __reduce__(self):
        return (type(self), (self.path, self.problem))


def connect(path: str, lock_wait_s: float = 0.0) -> duckdb.DuckDBPyConnection:
    """Open DuckDB file ``path``, translating its ``IOException`` into the two errors above.

    :param lock_wait_s: while another process holds the file, retry for up to this many seconds,
        pausing 0.1 s, then twice as long each time, up to :data:`LOCK_RETRY_MAX_PAUSE_S`.
    """
    import duckdb

    if _foreign_file(path):  # DuckDB would open some (a .csv) as a view over the file, not as a warehouse
        raise WarehouseFileError(path, _file_problem(path, "not a valid DuckDB database"))
    started, pause = time.monotonic(), 0.1
    while True:
        try:
            return duckdb.connect(path)
        except duckdb.IOException as exc:
            message = str(exc)
            if "lock" not in message.lower():
                raise WarehouseFileError(path, _file_problem(path, message)) from None
            waited = time.monotonic() - started
            if waited >= lock_wait_s:
                holder = _LOCK_HOLDER.search(message)
                raise WarehouseInUseError(path, int(holder.group(1)) if holder else None,
                                          round(lock_wait_s)) from None
            time.sleep(min(pause, lock_wait_s - waited))
            pause = min(pause * 2, LOCK_RETRY_MAX_PAUSE_S)


def _foreign_file(path: str) -> bool:
    """Whether ``path`` is an existing, non-empty file without DuckDB's magic bytes (``DUCK`` at offset 8)."""
    target = Path(path)
    try:
        if path == ":memory:" or not target.is_file() or target.stat().st_size == 0:
            return False
        with target.open("rb") as handle:
            return handle.read(12)[8:12] != DUCKDB_MAGIC
    except OSError:
        return False  # DuckDB reports what it cannot read


def _file_problem(path: str, message: str) -> str:
    target = Path(path)
    if target.is_dir():
        return f"{path} is a directory, not a DuckDB database file; give the path of a .duckdb file (--db)"
    if "not a valid DuckDB database" in message:
        return (f"{path} is not a DuckDB database (it exists and holds something else); give a .duckdb file, "
                "or a path where a new one may be created")
    if not target.parent.is_dir():
        return f"cannot open the warehouse {path}: folder {target.parent} does not exist"
    return f"cannot open the warehouse {path}: {message.removeprefix('IO Error: ')}"


class DuckDBWarehouse(TransactionMixin):
    """The embedded default warehouse.

    :param path: database file (created if missing), or ``":memory:"``.
    :param connection: an open DuckDB connection to use instead of ``path`` (e.g. from ``DuckDBHook``).
    :param schema: schema of the project's tables.
    :param threads: worker threads; None lets DuckDB use every core.
    :param memory_limit: e.g. ``"4GB"``; None keeps DuckDB's default.
    :param lock_wait_s: seconds to keep retrying while another process holds ``path`` (see :func:`connect`).
    :raises WarehouseInUseError: another process holds ``path``.
    :raises WarehouseFileError: ``path`` is a folder, not a DuckDB file, or cannot be opened.
    """

    dialect = "duckdb"

    def __init__(self, path: str | Path = ":memory:", *, connection: duckdb.DuckDBPyConnection | None = None,
                 schema: str | None = "main", threads: int | None = None, memory_limit: str | None = None,
                 lock_wait_s: float = 0.0) -> None:
        self.path = str(path)
        self.schema = schema
        self.connection = connection if connection is not None else connect(self.path, lock_wait_s)
        self._lock = threading.RLock()
        # Evaluation is defined in UTC; results are sets, so row order need not be preserved
        # (keeping insertion order costs seconds on large writes).
        self.connection.execute("SET TimeZone = 'UTC'")
        self.connection.execute("SET preserve_insertion_order = false")
        if threads:
            self.connection.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.connection.execute(f"SET memory_limit = '{memory_limit}'")
        self._in_transaction = False

    def execute(self, sql: str) -> None:
        with self._lock:
            self.connection.execute(sql)

    def _run(self, sql: str, parameters: Mapping[str, Any] | None) -> duckdb.DuckDBPyConnection:
        if parameters is None:
            return self.connection.execute(sql)
        text, values = duckdb_parameters(sql, parameters)
        return self.connection.execute(text, values)

    def query(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of ``sql``; ``parameters`` are bound to its ``%(name)s`` placeholders."""
        with self._lock:
            return self._run(sql, parameters).fetchall()

    def query_records(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Small results as dicts keyed by column name; ``parameters`` as in :meth:`query`."""
        with self._lock:
            cursor = self._run(sql, parameters)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def iter_batches(self, sql: str, batch_size: int = 50_000) -> Iterator[pa.RecordBatch]:
        with self._lock:
            cursor = self.connection.cursor()
        # a relation streams its result in Arrow batches without materialising it first
        reader = cursor.sql(sql).to_arrow_reader(batch_size)
        try:
            yield from reader
        finally:
            cursor.close()

    def _begin(self) -> None:
        # snapshot isolated (MVCC): transaction(snapshot=True) asks nothing more
        self.connection.execute("BEGIN TRANSACTION")

    def _commit(self) -> None:
        self.connection.execute("COMMIT")

    def _rollback(self) -> None:
        self.connection.execute("ROLLBACK")

    def columns(self, table: str) -> dict[str, str] | None:
        """Column name -> upper-case type of ``table``, or None when it does not exist."""
        parts = table.split(".")
        name, schema = parts[-1], parts[-2] if len(parts) > 1 else (self.schema or "main")
        rows = self.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = {text_literal(schema)} AND table_name = {text_literal(name)} "
            "ORDER BY ordinal_position"
        )
        return {column: data_type.upper() for column, data_type in rows} or None

    def upsert(self, table: str, keys: Sequence[str], rows: pa.Table) -> None:
        """Insert ``rows`` into ``table``, replacing rows with the same ``keys`` (the table's primary key)."""
        if rows.num_rows == 0:
            return
        columns = ", ".join(f'"{name}"' for name in rows.column_names)
        updates = ", ".join(f'"{name}" = excluded."{name}"' for name in rows.column_names if name not in keys)
        conflict = ", ".join(f'"{k}"' for k in keys)
        with self._lock:
            self.connection.register(DUCKDB_UPSERT_ROWS, rows)
            try:
                self.connection.execute(
                    f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {DUCKDB_UPSERT_ROWS} "
                    f"ON CONFLICT ({conflict}) DO " + (f"UPDATE SET {updates}" if updates else "NOTHING"))
            finally:
                self.connection.unregister(DUCKDB_UPSERT_ROWS)

    def load(self, table: str, rows: pa.Table, *, create: bool = False) -> None:
        """Append ``rows`` (columns matched by name) to ``table``.

        :param create: create the table from the Arrow schema first when it does not exist.
        """
        with self._lock:
            if create and self.columns(table) is None:
                from airflow_segprovider.core.warehouses.dbapi import arrow_table_ddl

                self.execute(arrow_table_ddl(table, rows.schema, self.dialect))
            if rows.num_rows == 0:
                return
            columns = ", ".join(f'"{name}"' for name in rows.column_names)
            self.connection.register(DUCKDB_LOAD_ROWS, rows)
            try:
                self.connection.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {DUCKDB_LOAD_ROWS}")
            finally:
                self.connection.unregister(DUCKDB_LOAD_ROWS)

    def close(self) -> None:
        self.connection.close()

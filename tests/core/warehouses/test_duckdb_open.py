"""Opening the embedded DuckDB file: a held lock, a folder or a foreign file is named, never a raw IOException.

DuckDB lets one process write a file at a time. A second ``segprovider`` command on the same file
(a ``preview`` during a ``sync``) gets :class:`WarehouseInUseError` naming the file and the process
holding it, or waits for it with ``--wait-for-lock``; a ``--db`` that is a folder or another kind of
file gets :class:`WarehouseFileError` saying so.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from airflow_segprovider.cli.main import EXIT_ERROR, main
from airflow_segprovider.core.errors import TerminalError, TransientError
from airflow_segprovider.core.warehouses import duckdb as duckdb_warehouse
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse


def hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that opens ``path`` for writing and keeps it ``seconds`` (it prints once it holds it)."""
    code = textwrap.dedent(f"""
        import duckdb, sys, time
        connection = duckdb.connect({str(path)!r})
        print("held", flush=True)
        time.sleep({seconds})
        connection.close()
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    DuckDBWarehouse(path).close()
    return path


def test_a_file_held_by_another_process_is_reported_as_in_use_with_its_pid(database: Path) -> None:
    holder = hold_lock(database, 30)
    try:
        with pytest.raises(duckdb_warehouse.WarehouseInUseError) as raised:
            DuckDBWarehouse(database)
    finally:
        holder.kill()
        holder.wait()

    error = raised.value
    assert isinstance(error, TransientError)  # waiting (or a retry) can help
    assert error.path == str(database) and error.pid == holder.pid
    assert str(error).startswith(f"the warehouse {database} is in use by another process (pid {holder.pid}")
    assert "--wait-for-lock" in str(error)


def test_wait_for_lock_opens_the_file_once_the_other_process_lets_go(database: Path) -> None:
    holder = hold_lock(database, 1.5)
    started = time.monotonic()
    try:
        warehouse = DuckDBWarehouse(database, lock_wait_s=30)
    finally:
        holder.wait()
    warehouse.close()

    assert 1.0 < time.monotonic() - started < 15


def test_wait_for_lock_is_bounded(database: Path) -> None:
    holder = hold_lock(database, 30)
    started = time.monotonic()
    try:
        with pytest.raises(duckdb_warehouse.WarehouseInUseError, match="after waiting 1s"):
            DuckDBWarehouse(database, lock_wait_s=1)
    finally:
        holder.kill()
        holder.wait()

    assert time.monotonic() - started < 5


def test_a_folder_is_not_a_warehouse(tmp_path: Path) -> None:
    with pytest.raises(duckdb_warehouse.WarehouseFileError) as raised:
        DuckDBWarehouse(tmp_path)

    assert isinstance(raised.value, TerminalError)
    assert str(raised.value).startswith(f"{tmp_path} is a directory, not a DuckDB database file")


@pytest.mark.parametrize("content", [b"customer_id,email\n1,a@example.com\n", b"\x00" * 8192])
def test_a_file_of_another_kind_is_not_a_duckdb_database(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(content)

    with pytest.raises(duckdb_warehouse.WarehouseFileError) as raised:
        DuckDBWarehouse(path)

    assert str(raised.value).startswith(f"{path} is not a DuckDB database")
    assert path.read_bytes() == content  # left as it was


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "warehouse.duckdb"

    with pytest.raises(duckdb_warehouse.WarehouseFileError, match="cannot open the warehouse .*warehouse.duckdb"):
        DuckDBWarehouse(path)


def test_cli_reports_a_held_warehouse_without_traceback(project_copy: Path, database: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    holder = hold_lock(database, 30)
    try:
        code = main(["evaluate", str(project_copy), "--db", str(database), "--as-of", "2026-11-24"])
    finally:
        holder.kill()
        holder.wait()

    err = capsys.readouterr().err
    assert code == EXIT_ERROR
    assert "Traceback" not in err
    assert f"the warehouse {database} is in use by another process (pid {holder.pid}" in err


@pytest.mark.parametrize("command", [["evaluate"], ["preview", "vip"], ["sync", "--dry-run"], ["ingest"]])
def test_cli_names_a_db_that_is_a_folder(project_copy: Path, tmp_path: Path, command: list[str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code = main([command[0], str(project_copy), *command[1:], "--db", str(tmp_path)])

    out = capsys.readouterr()
    assert code == EXIT_ERROR
    assert "Traceback" not in out.err + out.out
    assert f"{tmp_path} is a directory, not a DuckDB database file" in out.err + out.out


@pytest.mark.parametrize("command", [["evaluate"], ["preview", "vip"], ["explain", "vip", "1"]])
def test_cli_names_the_missing_table_of_an_empty_warehouse(project_copy: Path, tmp_path: Path, command: list[str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "new.duckdb"

    code = main([command[0], str(project_copy), *command[1:], "--db", str(empty), "--as-of", "2026-11-24"])

    err = capsys.readouterr().err
    assert code == EXIT_ERROR
    assert "Traceback" not in err and "table 'customers' does not exist in the warehouse" in err

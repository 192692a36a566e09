"""The incremental state and the run record, written by full and incremental runs alike."""


from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from airflow_segprovider.core.evaluate.incremental.plan import base_query
from airflow_segprovider.core.sql.dialects import render, text_literal, to_sql, ts_literal
from airflow_segprovider.core.state import incremental as state_tables

if TYPE_CHECKING:
    from airflow_segprovider.core.evaluate.compiler import CompiledEvaluation
    from airflow_segprovider.core.warehouses.base import Warehouse

def write_base(warehouse: Warehouse, compiled: CompiledEvaluation) -> int:
    """Materialise the plan's ``base`` at the compiled as_of as the state; returns its rows."""
    warehouse.execute(render(f"DROP TABLE IF EXISTS {state_tables.BASE}", warehouse.dialect))
    warehouse.execute(state_tables.create_as(state_tables.BASE, to_sql(base_query(compiled), warehouse.dialect),
                                             temporary=False))
    return int(warehouse.query(render(f"SELECT COUNT(*) FROM {state_tables.BASE}", warehouse.dialect))[0][0])


def save_state(warehouse: Warehouse, as_of: dt.datetime, write_id: str, print_: str, run_id: str,
               base_rows: int, delta_rows: int, deltas: int, loads: dict[str, dict[str, int]]) -> None:
    d = warehouse.dialect
    warehouse.execute(render(f"DELETE FROM {state_tables.STATE}", d))
    warehouse.execute(render(
        f"INSERT INTO {state_tables.STATE} (as_of, write_id, fingerprint, run_id, base_rows, delta_rows, deltas) "
        f"VALUES ({ts_literal(as_of)}, {text_literal(write_id)}, {text_literal(print_)}, {text_literal(run_id)}, "
        f"{base_rows}, {delta_rows}, {deltas})", d))
    warehouse.execute(render(f"DELETE FROM {state_tables.LOADS}", d))
    rows = [(table, load_id, count) for table, per_load in loads.items() for load_id, count in per_load.items()]
    for start in range(0, len(rows), 500):
        values = ", ".join(f"({text_literal(t)}, {text_literal(load)}, {count})"
                           for t, load, count in rows[start:start + 500])
        warehouse.execute(render(
            f"INSERT INTO {state_tables.LOADS} (table_name, load_id, row_count) VALUES {values}", d))


def forget_state(warehouse: Warehouse) -> None:
    """Drop the state: the next run is full (a run that could not keep the state calls this)."""
    warehouse.execute(render(f"DELETE FROM {state_tables.STATE}", warehouse.dialect))


def record_run(warehouse: Warehouse, run_id: str, as_of: dt.datetime, mode: str, reason: str,
               touched: int | None, customers: int | None, seconds: float, evaluated_at: dt.datetime) -> None:
    def number(value: int | None) -> str:
        return "NULL" if value is None else str(int(value))

    warehouse.execute(render(
        f"INSERT INTO {state_tables.RUNS} (run_id, as_of, mode, reason, touched, customers, seconds, evaluated_at) "
        f"VALUES ({text_literal(run_id)}, {ts_literal(as_of)}, {text_literal(mode)}, {text_literal(reason[:1000])}, "
        f"{number(touched)}, {number(customers)}, {seconds:.6f}, {ts_literal(evaluated_at)})", warehouse.dialect))



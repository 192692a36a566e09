"""The incremental state and the run record, written by full and incremental runs alike."""


from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Mapping

from airflow_segprovider.core.evaluate.incremental.plan import base_query, cte_body
from airflow_segprovider.core.sql.dialects import quote_identifier, render, text_literal, to_sql, ts_literal
from airflow_segprovider.core.state import incremental as state_tables
from airflow_segprovider.core.warehouses.base import ddl_outside_transaction

if TYPE_CHECKING:
    from airflow_segprovider.core.evaluate.compiler import CompiledEvaluation
    from airflow_segprovider.core.warehouses.base import Warehouse

def stage_base(warehouse: Warehouse, compiled: CompiledEvaluation) -> str:
    """Before the transaction of a full run on a warehouse that takes no DDL inside one
    (:func:`~airflow_segprovider.core.warehouses.base.ddl_outside_transaction`): compute the plan's ``base``
    into a table of this run's own (``BASE_NEXT`` and a random suffix: two runs never share it), and create
    ``BASE`` anew, empty, with exactly its column types (a full run replaces every row anyway; comparing type
    names would miss a widened ``VARCHAR(n)``, which Snowflake's catalogue names ``TEXT`` either way). The
    state is forgotten first, so that a run failing later leaves a full evaluation to the next run, never an
    empty base to continue. Returns the staged table's name."""
    d = warehouse.dialect
    staged = f"{state_tables.BASE_NEXT}_{uuid.uuid4().hex[:12]}"
    warehouse.execute(state_tables.create_as(staged, to_sql(base_query(compiled), d), temporary=False))
    forget_state(warehouse)
    warehouse.execute(render(f"DROP TABLE IF EXISTS {state_tables.BASE}", d))
    warehouse.execute(render(f"CREATE TABLE {state_tables.BASE} AS SELECT * FROM {staged} WHERE 1 = 0", d))
    return staged


def drop_staged_base(warehouse: Warehouse, staged: str) -> None:
    warehouse.execute(render(f"DROP TABLE IF EXISTS {staged}", warehouse.dialect))


def write_base(warehouse: Warehouse, compiled: CompiledEvaluation, staged: str | None = None) -> int:
    """Materialise the plan's ``base`` at the compiled as_of as the state; returns its rows.

    Where the warehouse takes no DDL inside a transaction, the rows :func:`stage_base` computed (into
    ``staged``) are copied into ``BASE`` (DML); elsewhere ``BASE`` is created anew from the plan.
    """
    d = warehouse.dialect
    if ddl_outside_transaction(d):
        assert staged is not None, "stage_base() first: no DDL inside this warehouse's transactions"
        columns = ", ".join(quote_identifier(c) for c in cte_body(compiled.flags_query, "base").named_selects)
        warehouse.execute(render(f"DELETE FROM {state_tables.BASE} WHERE 1 = 1", d))
        warehouse.execute(render(f"INSERT INTO {state_tables.BASE} ({columns}) SELECT {columns} "
                                 f"FROM {staged}", d))
    else:
        warehouse.execute(render(f"DROP TABLE IF EXISTS {state_tables.BASE}", d))
        warehouse.execute(state_tables.create_as(state_tables.BASE, to_sql(base_query(compiled), d),
                                                 temporary=False))
    return int(warehouse.query(render(f"SELECT COUNT(*) FROM {state_tables.BASE}", d))[0][0])


def save_state(warehouse: Warehouse, as_of: dt.datetime, write_id: str, print_: str, run_id: str,
               base_rows: int, delta_rows: int, deltas: int,
               loads: Mapping[str, Mapping[str, tuple[int, str | None]]]) -> None:
    """Replace the state: the snapshot it continues, and per table read the rows and checksum of each load."""
    d = warehouse.dialect
    warehouse.execute(render(f"DELETE FROM {state_tables.STATE}", d))
    warehouse.execute(render(
        f"INSERT INTO {state_tables.STATE} (as_of, write_id, fingerprint, run_id, base_rows, delta_rows, deltas) "
        f"VALUES ({ts_literal(as_of)}, {text_literal(write_id)}, {text_literal(print_)}, {text_literal(run_id)}, "
        f"{base_rows}, {delta_rows}, {deltas})", d))
    warehouse.execute(render(f"DELETE FROM {state_tables.LOADS}", d))
    rows = [(table, load_id, count, checksum) for table, per_load in loads.items()
            for load_id, (count, checksum) in per_load.items()]
    for start in range(0, len(rows), 500):
        values = ", ".join(f"({text_literal(t)}, {text_literal(load)}, {int(count)}, {text_literal(checksum)})"
                           for t, load, count, checksum in rows[start:start + 500])
        warehouse.execute(render(
            f"INSERT INTO {state_tables.LOADS} (table_name, load_id, row_count, checksum) VALUES {values}", d))


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



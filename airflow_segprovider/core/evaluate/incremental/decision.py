"""Whether a run can be incremental, and why not: the state, the plan's fingerprint, the loads seen."""


from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from sqlglot import exp

from airflow_segprovider.core.evaluate.incremental import limits
from airflow_segprovider.core.sql.dialects import render, to_sql, ts_literal
from airflow_segprovider.core.sql.expressions import col, table_ref
from airflow_segprovider.core.state import incremental as state_tables
from airflow_segprovider.core.state.ingest import LOAD_COLUMN
from airflow_segprovider.core.state.membership import BITS, SNAPSHOTS

if TYPE_CHECKING:
    from airflow_segprovider.core.evaluate.compiler import CompiledEvaluation
    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.state.membership import Slot
    from airflow_segprovider.core.warehouses.base import Warehouse

#: The as_of the fingerprint compiles the plan at: any fixed time (the plan's SQL depends on as_of).
FINGERPRINT_AS_OF = dt.datetime(2000, 1, 1)

FULL = "full"
INCREMENTAL = "incremental"


@dataclass
class Decision:
    """Whether a run evaluates incrementally, and why (or why not)."""

    mode: str
    reason: str
    previous_as_of: dt.datetime | None = None
    write_id: str | None = None
    #: table -> {load id: rows} now, for the tables the plan reads that carry a load column
    loads: dict[str, dict[str, int]] = field(default_factory=dict)
    base_rows: int = 0
    delta_rows: int = 0
    deltas: int = 0
    #: every table the plan reads has a load column: a full run keeps the state an incremental one needs
    trackable: bool = True


def temporary_tables(warehouse: Warehouse) -> bool:
    # BigQuery: temporary tables of the adapter's session (https://cloud.google.com/bigquery/docs/sessions-intro),
    # so two runs never share a scratch table and none outlives its session
    return warehouse.dialect in ("duckdb", "postgres", "snowflake", "bigquery")


def ensure_tables(warehouse: Warehouse) -> None:
    """Create the incremental state's tables when missing (DDL: call outside a transaction)."""
    for statement in state_tables.DDL:
        warehouse.execute(render(statement, warehouse.dialect))


def fingerprint(compiled_at_reference: CompiledEvaluation, slots: Sequence[Slot], schema: str | None) -> str:
    """A hash of the plan (compiled at a fixed as_of), its bit layout and schema: a changed rule or model changes it."""
    text = "\n".join([compiled_at_reference.sql(pretty=False), repr(list(slots)), repr(schema),
                      compiled_at_reference.dialect])
    return hashlib.sha256(text.encode()).hexdigest()


def _tables_read(project: Project, compiled: CompiledEvaluation) -> list[str]:
    """The event, order and consent tables the plan reads (their new rows are what changed)."""
    tables = list(dict.fromkeys(project.model.events[key.source].table for key in compiled.aggregates))
    if "consent_latest" in cte_names(compiled) and project.model.consent is not None:
        tables.append(project.model.consent.table)
    return tables


def cte_names(compiled: CompiledEvaluation) -> list[str]:
    return [cte.alias for cte in compiled.flags_query.ctes]


def _has_column(warehouse: Warehouse, table: str, column: str) -> bool:
    columns = warehouse.columns(table) or {}
    return column.lower() in {c.lower() for c in columns}


def load_counts(warehouse: Warehouse, tables: Sequence[str]) -> dict[str, dict[str, int]]:
    """Rows per ingest load of each table that has a load column (a NULL load counts under '')."""
    out: dict[str, dict[str, int]] = {}
    for table in tables:
        if not _has_column(warehouse, table, LOAD_COLUMN):
            continue
        load = exp.Coalesce(this=exp.cast(col(LOAD_COLUMN), exp.DataType.build("VARCHAR")),
                            expressions=[exp.Literal.string("")])
        query = (exp.select(exp.alias_(load, "l"), exp.Count(this=exp.Star()))
                 .from_(table_ref(table, warehouse.schema)).group_by(load.copy()))
        out[table] = {str(name): int(count) for name, count in warehouse.query(to_sql(query, warehouse.dialect))}
    return out


def decide(project: Project, warehouse: Warehouse, compiled: CompiledEvaluation, slots: Sequence[Slot],
           as_of: dt.datetime, print_: str, *, full: bool, whole_project: bool) -> Decision:
    """Whether the run at ``as_of`` can be incremental (call inside the evaluation's transaction).

    :param print_: the plan's fingerprint (:func:`fingerprint`).
    """
    tables = _tables_read(project, compiled)
    loads = load_counts(warehouse, tables)

    def full_because(reason: str) -> Decision:
        return Decision(FULL, reason, loads=loads)

    if full:
        return full_because("full evaluation requested")
    if not whole_project:
        return full_because("a subset of the segments is evaluated (incremental runs evaluate the whole project)")
    for table in tables:
        if table not in loads:
            return Decision(FULL, f"table {table} has no {LOAD_COLUMN} column (not loaded by an append source): "
                                  "the rows that arrived since the last snapshot cannot be told apart", loads=loads,
                            trackable=False)
    state = warehouse.query(render(
        f"SELECT as_of, write_id, fingerprint, base_rows, delta_rows, deltas FROM {state_tables.STATE}",
        warehouse.dialect))
    if not state:
        return full_because("first run: no incremental state yet")
    previous, write_id, stored_print, base_rows, delta_rows, deltas = state[0]
    if stored_print != print_:
        return full_because("the plan changed since the state's snapshot (rules, data model or schema)")
    latest = warehouse.query(render(f"SELECT MAX(as_of) FROM {SNAPSHOTS}", warehouse.dialect))[0][0]
    if latest != previous:
        return full_because(f"the latest snapshot ({latest}) is not the one the state was kept for ({previous})")
    if as_of <= previous:
        return full_because(f"backfill or re-run: as_of is not after the latest snapshot ({previous})")
    held = warehouse.query(render(
        f"SELECT write_id, segment, arm, word, mask FROM {BITS} WHERE as_of = {ts_literal(previous)}",
        warehouse.dialect))
    if sorted((str(w), s, a or "", int(word), int(mask)) for w, s, a, word, mask in held) != sorted(
            (write_id, slot.segment, slot.arm or "", slot.word, slot.mask) for slot in slots):
        return full_because(f"the snapshot at {previous} was rewritten since the state was kept")
    if delta_rows >= limits.MAX_DELTA_SHARE * max(base_rows, 1):
        return full_because(f"the snapshot's write holds {delta_rows} delta rows for {base_rows} base rows: "
                            "a new full write keeps reads fast")
    seen = {}
    for table_name, load_id, count in warehouse.query(render(
            f"SELECT table_name, load_id, row_count FROM {state_tables.LOADS}", warehouse.dialect)):
        seen.setdefault(table_name, {})[load_id] = int(count)
    for table in tables:
        before, now = seen.get(table, {}), loads[table]
        for load_id, count in before.items():
            if now.get(load_id) != count:
                return full_because(f"load {load_id!r} of table {table} held {count} rows at the last snapshot "
                                    f"and holds {now.get(load_id, 0)} now (rows removed or rewritten)")
        new_rows = sum(count for load_id, count in now.items() if load_id not in before)
        total = sum(now.values())
        if new_rows > limits.MAX_NEW_ROWS_SHARE * total:
            return full_because(f"{new_rows} new rows in {table} ({new_rows / max(total, 1):.0%} of it): "
                                "a full evaluation is cheaper")
    return Decision(INCREMENTAL, f"{len(tables)} table(s) read by their new loads and window edges since {previous}",
                    previous, str(write_id), loads, int(base_rows), int(delta_rows), int(deltas))



"""Whether a run can be incremental, and why not: the state, the plan's fingerprint, the loads seen."""


from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Sequence

from sqlglot import exp

from airflow_segprovider.core.evaluate.incremental import limits
from airflow_segprovider.core.project.rules import EventCondition, iter_conditions
from airflow_segprovider.core.sql.dialects import load_checksum, render, to_sql, ts_literal
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


class Loads(dict):
    """table -> {load id: (rows, checksum)} for the tables the plan reads that carry a load column; the
    checksum (text) is of the load's rows over :attr:`columns` of the table, the columns the plan reads.

    Compared with the loads of the state's snapshot (a seen load whose rows or checksum changed: full run) and
    counted again after a run staged what it read (:func:`load_counts` of :attr:`columns`)."""

    def __init__(self, loads: Mapping[str, dict[str, tuple[int, str | None]]] | None = None,
                 columns: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__(loads or {})
        #: table -> the columns its checksum covers
        self.columns: dict[str, tuple[str, ...]] = {t: tuple(c) for t, c in (columns or {}).items()}


@dataclass
class Decision:
    """Whether a run evaluates incrementally, and why (or why not)."""

    mode: str
    reason: str
    previous_as_of: dt.datetime | None = None
    write_id: str | None = None
    #: table -> {load id: (rows, checksum)} now, for the tables the plan reads that carry a load column
    loads: Loads = field(default_factory=Loads)
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
    """Create the incremental state's tables when missing, and add the columns an earlier version lacked
    (DDL: call outside a transaction)."""
    for statement in state_tables.DDL:
        warehouse.execute(render(statement, warehouse.dialect))
    for table, column, kind in state_tables.ADDED_COLUMNS:
        warehouse.execute(render(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}", warehouse.dialect))


def fingerprint(compiled_at_reference: CompiledEvaluation, slots: Sequence[Slot], schema: str | None,
                column_types: Sequence[tuple[str, str, str]] = ()) -> str:
    """A hash of the plan (compiled at a fixed as_of), its bit layout and schema, and the warehouse types of
    the columns it reads (``(table, column, type)``): a changed rule, model or column type changes it (the
    state's rows keep the types they were written with, a customer key's text among them)."""
    text = "\n".join([compiled_at_reference.sql(pretty=False), repr(list(slots)), repr(schema),
                      compiled_at_reference.dialect, repr(sorted(column_types))])
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


def columns_read(project: Project, tables: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Per event, order or consent table, the columns the project's rules read from it (key, timestamp, type,
    the properties used; the consent columns), as ``engine.required_columns`` lists them for these tables:
    what a load's checksum covers. A change to another column changes no membership."""
    model = project.model
    needed: dict[str, set[str]] = {table: set() for table in tables}
    for segment in project.segments.values():
        for node in iter_conditions(segment.rule):
            if isinstance(node, EventCondition) and model.events[node.event].table in needed:
                source = model.events[node.event]
                needed[source.table] |= {source.customer_key, source.timestamp, *filter(None, [source.type_column]),
                                         *filter(None, [node.property]), *(flt.property for flt in node.where)}
        consent = model.consent
        if segment.suppress_channels and consent is not None and consent.table in needed:
            needed[consent.table] |= {consent.customer_key, consent.channel_column, consent.opted_in_column,
                                      consent.updated_at_column}
    return {table: tuple(sorted((c for c in columns if c.lower() != LOAD_COLUMN.lower()), key=str.lower))
            for table, columns in needed.items()}


def load_counts(warehouse: Warehouse, columns: Mapping[str, Sequence[str]]) -> Loads:
    """Rows and checksum (:func:`~airflow_segprovider.core.sql.dialects.load_checksum` of ``columns[table]``)
    per ingest load of each table of ``columns`` that has a load column (a NULL load counts under '')."""
    out = Loads(columns={t: c for t, c in columns.items() if _has_column(warehouse, t, LOAD_COLUMN)})
    for table, hashed in out.columns.items():
        load = exp.Coalesce(this=exp.cast(col(LOAD_COLUMN), exp.DataType.build("VARCHAR")),
                            expressions=[exp.Literal.string("")])
        checksum = load_checksum(warehouse.dialect, [col(c) for c in hashed] or [col(LOAD_COLUMN)])
        query = (exp.select(exp.alias_(load, "l"), exp.Count(this=exp.Star()), exp.alias_(checksum, "c"))
                 .from_(table_ref(table, warehouse.schema)).group_by(load.copy()))
        out[table] = {str(name): (int(count), None if checksum_ is None else str(checksum_))
                      for name, count, checksum_ in warehouse.query(to_sql(query, warehouse.dialect))}
    return out


def decide(project: Project, warehouse: Warehouse, compiled: CompiledEvaluation, slots: Sequence[Slot],
           as_of: dt.datetime, print_: str, *, full: bool, whole_project: bool) -> Decision:
    """Whether the run at ``as_of`` can be incremental (call inside the evaluation's transaction).

    :param print_: the plan's fingerprint (:func:`fingerprint`).
    """
    tables = _tables_read(project, compiled)
    loads = load_counts(warehouse, columns_read(project, tables))

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
        return full_because("first run: no incremental state yet (or an erasure dropped it)")
    previous, write_id, stored_print, base_rows, delta_rows, deltas = state[0]
    if stored_print != print_:
        return full_because("the plan changed since the state's snapshot (rules, data model, schema or a column type)")
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
    seen: dict[str, dict[str, tuple[int, str | None]]] = {}
    for table_name, load_id, count, checksum in warehouse.query(render(
            f"SELECT table_name, load_id, row_count, checksum FROM {state_tables.LOADS}", warehouse.dialect)):
        seen.setdefault(table_name, {})[load_id] = (int(count), None if checksum is None else str(checksum))
    for table in tables:
        before, now = seen.get(table, {}), loads[table]
        for load_id, (count, checksum) in before.items():
            rows, checksum_now = now.get(load_id, (0, None))
            if rows != count:
                return full_because(f"load {load_id!r} of table {table} held {count} rows at the last snapshot "
                                    f"and holds {rows} now (rows removed or rewritten)")
            if checksum is None:
                return full_because(f"load {load_id!r} of table {table} has no checksum in the state (kept by an "
                                    "earlier version): a full run records one")
            if checksum_now != checksum:
                return full_because(f"load {load_id!r} of table {table} holds {count} rows as at the last snapshot, "
                                    "but they changed (checksum of the columns read: "
                                    f"{', '.join(loads.columns[table])})")
        new_rows = sum(count for load_id, (count, _) in now.items() if load_id not in before)
        total = sum(count for count, _ in now.values())
        if new_rows > limits.MAX_NEW_ROWS_SHARE * total:
            return full_because(f"{new_rows} new rows in {table} ({new_rows / max(total, 1):.0%} of it): "
                                "a full evaluation is cheaper")
    return Decision(INCREMENTAL, f"{len(tables)} table(s) read by their new loads and window edges since {previous}",
                    previous, str(write_id), loads, int(base_rows), int(delta_rows), int(deltas))



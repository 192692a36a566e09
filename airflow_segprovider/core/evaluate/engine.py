"""Evaluate every segment of a project in the warehouse and store the snapshot.

:func:`evaluate` is the one entry point used by the CLI, the Airflow operators
and the benchmarks. It checks that every table and column the plan reads exists
with a compatible type (naming the segment that needs it), runs the compiled
query once, and writes the snapshot, its diff and the registry rows in a single
transaction: an error leaves no partial snapshot behind.

A number beyond the range of the language (10^15 in magnitude, infinities, NaN) reads as missing
rather than stopping the evaluation (:mod:`~airflow_segprovider.core.sql.numbers`); the rows holding
one are counted per column and reported in the result, and logged, so a bad load is seen.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from airflow_segprovider.core.errors import EvaluationError, TerminalEvaluationError, TransientEvaluationError
from airflow_segprovider.core.evaluate import incremental
from airflow_segprovider.core.evaluate.columns import member_column
from airflow_segprovider.core.evaluate.compiler import CompiledEvaluation, SegmentCompiler
from airflow_segprovider.core.evaluate.insights import ensure_insights_tables, refresh_insights
from airflow_segprovider.core.project.rules import AttributeCondition, EventCondition, iter_conditions
from airflow_segprovider.core.project.spec import Project
from airflow_segprovider.core.sql.dialects import render, text_literal, to_sql, ts_literal
from airflow_segprovider.core.state.incremental import STATE as INCREMENTAL_STATE
from airflow_segprovider.core.state.membership import SNAPSHOTS, WORDS, MembershipStore, SegmentDiff, bit_layout
from airflow_segprovider.core.warehouses.base import ddl_outside_transaction

if TYPE_CHECKING:
    from airflow_segprovider.core.warehouses.base import Warehouse

log = logging.getLogger(__name__)

_TYPE_FAMILIES = {
    "string": re.compile(r"^(VARCHAR|TEXT|STRING|CHAR|CHARACTER|CHARACTER VARYING|BPCHAR|NVARCHAR)\b"),
    "number": re.compile(r"^(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|"
                         r"UHUGEINT|INT64|FLOAT|FLOAT64|DOUBLE|DOUBLE PRECISION|REAL|DECIMAL|NUMERIC|BIGNUMERIC|"
                         r"NUMBER)\b"),
    "boolean": re.compile(r"^(BOOLEAN|BOOL)\b"),
    "date": re.compile(r"^DATE$"),
    "timestamp": re.compile(r"^(TIMESTAMP|DATETIME|TIMESTAMPTZ|TIMESTAMP_NS|TIMESTAMP_MS|TIMESTAMP_S|"
                            r"TIMESTAMP WITH(OUT)? TIME ZONE|TIMESTAMP_NTZ|TIMESTAMP_LTZ|TIMESTAMP_TZ)\b"),
}


def parse_as_of(value: str | dt.datetime | dt.date) -> dt.datetime:
    """Evaluation time as naive UTC. Text is ISO 8601; a value without offset is taken as UTC.

    :raises EvaluationError: when the value cannot be parsed, saying what is accepted.
    """
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise TerminalEvaluationError(
                f"cannot parse as_of {text!r}: give an ISO 8601 date or timestamp, e.g. 2026-11-24 or "
                "2026-11-24T06:00:00Z (a timestamp without offset is read as UTC)") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return parsed


@dataclass
class EvaluationResult:
    """What one evaluation wrote: the snapshot's ``as_of``, run id, and each segment's diff."""

    as_of: dt.datetime
    run_id: str
    diffs: list[SegmentDiff]
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    #: ``table.column`` -> rows whose number is out of range (read as missing); only columns that have some
    out_of_range: dict[str, int] = field(default_factory=dict)
    #: ``full`` or ``incremental``, and why (:mod:`~airflow_segprovider.core.evaluate.incremental`)
    mode: str = "full"
    reason: str = ""
    #: customers evaluated: all of them on a full run that keeps the incremental state, the touched ones
    #: on an incremental run (None: a full run that keeps no state)
    touched: int | None = None

    def by_segment(self) -> dict[str, SegmentDiff]:
        return {d.segment: d for d in self.diffs}

    def to_dict(self) -> dict:
        out = {
            "as_of": self.as_of.isoformat(), "run_id": self.run_id, "seconds": round(self.seconds, 3),
            "mode": self.mode, "reason": self.reason, "touched": self.touched,
            "segments": {d.segment: {"members": d.members, "added": d.added, "removed": d.removed,
                                     "unchanged": d.unchanged,
                                     "previous_as_of": d.previous_as_of.isoformat() if d.previous_as_of else None}
                         for d in self.diffs},
        }
        if self.out_of_range:
            out["out_of_range"] = dict(self.out_of_range)
        return out


def required_columns(project: Project, segments: Sequence[str]) -> dict[tuple[str, str], tuple[str | None, set[str]]]:
    """``(table, column) -> (expected type or None, segments needing it)`` for a plan over ``segments``."""
    model = project.model
    needs: dict[tuple[str, str], tuple[str | None, set[str]]] = {}

    def need(table: str, column: str, value_type: str | None, segment: str) -> None:
        expected, users = needs.setdefault((table, column), (value_type, set()))
        users.add(segment)

    history = model.customer.history  # with history, an evaluation reads the versions valid at its as_of
    customers = history.table if history else model.customer.table
    for name in segments:
        segment = project.segments[name]
        need(customers, model.customer.key, None, name)
        if history:
            need(customers, history.valid_from, "timestamp", name)
            need(customers, history.valid_to, "timestamp", name)
        for node in iter_conditions(segment.rule):
            if isinstance(node, AttributeCondition):
                attribute = model.customer.attributes[node.attribute]
                need(customers, attribute.column, attribute.type, name)
            elif isinstance(node, EventCondition):
                source = model.events[node.event]
                need(source.table, source.customer_key, None, name)
                need(source.table, source.timestamp, "timestamp", name)
                if source.type_column:
                    need(source.table, source.type_column, "string", name)
                if node.property:
                    need(source.table, node.property, source.properties[node.property], name)
                for flt in node.where:
                    need(source.table, flt.property, source.properties[flt.property], name)
        if segment.suppress_channels and model.consent:
            consent = model.consent
            for column, value_type in ((consent.customer_key, None), (consent.channel_column, "string"),
                                       (consent.opted_in_column, "boolean"), (consent.updated_at_column, "timestamp")):
                need(consent.table, column, value_type, name)
    return needs


def check_sources(project: Project, warehouse: Warehouse, segments: Sequence[str]) -> list[tuple[str, str, str]]:
    """Fail before running anything if a table or column is missing or has the wrong type.

    :returns: ``(table, column, warehouse type)`` of every column the plan reads.
    :raises EvaluationError: listing every problem, each naming the segments that need the column.
    """
    problems: list[str] = []
    types: list[tuple[str, str, str]] = []
    described: dict[str, dict[str, str] | None] = {}
    for (table, column), (expected, users) in sorted(required_columns(project, segments).items()):
        if table not in described:
            described[table] = warehouse.columns(table)
        columns = described[table]
        who = ", ".join(sorted(users))
        if columns is None:
            continue
        actual = {c.lower(): t for c, t in columns.items()}.get(column.lower())
        if actual is not None:
            types.append((table, column, actual))
        if actual is None:
            problems.append(f"column {table}.{column} does not exist (needed by segment(s) {who}); "
                            f"columns of {table}: {', '.join(columns)}")
        elif expected is not None and not _TYPE_FAMILIES[expected].match(actual):
            problems.append(f"column {table}.{column} is {actual}, but the data model declares it {expected} "
                            f"(needed by segment(s) {who}); fix the load or the model's type")
    missing_tables = sorted(t for t, c in described.items() if c is None)
    for table in missing_tables:
        users = sorted({s for (t, _), (_, seg) in required_columns(project, segments).items() if t == table
                        for s in seg})
        # the table and the warehouse named, quoted: a mistyped --db is the usual cause
        where = f" '{warehouse.path}'" if isinstance(getattr(warehouse, "path", None), str) else ""
        problems.insert(0, f"table '{table}' does not exist in the warehouse{where} (needed by segment(s) "
                           f"{', '.join(users)}); load it first (segprovider generate writes example data)")
    if problems:
        raise TerminalEvaluationError("cannot evaluate: " + "; ".join(problems))
    return types


def count_out_of_range(project: Project, warehouse: Warehouse, segments: Sequence[str],
                       as_of: dt.datetime | None = None) -> dict[str, int]:
    """``table.column`` -> rows whose number the evaluation reads as missing because it is out of range.

    One scan per table with number columns the plan reads; columns without such a row are left out. With
    attribute history, the customers' rows are the versions valid at ``as_of`` (the rows the evaluation
    reads), not every version the history holds.
    """
    from sqlglot import exp

    from airflow_segprovider.core.evaluate.customers import customer_relation
    from airflow_segprovider.core.sql.expressions import col, table_ref
    from airflow_segprovider.core.sql.numbers import out_of_range

    history = project.model.customer.history

    by_table: dict[str, list[str]] = {}
    for (table, column), (expected, _users) in sorted(required_columns(project, segments).items()):
        if expected == "number":
            by_table.setdefault(table, []).append(column)
    found: dict[str, int] = {}
    for table, columns in by_table.items():
        counts = [exp.alias_(exp.Sum(this=exp.Case(ifs=[exp.If(this=out_of_range(col(c)), true=exp.Literal.number(1))],
                                                   default=exp.Literal.number(0))), f"n{i}", quoted=True)
                  for i, c in enumerate(columns)]
        relation = (customer_relation(project, warehouse.schema, as_of, alias="c")
                    if history and table == history.table and as_of is not None
                    else table_ref(table, warehouse.schema))
        query = to_sql(exp.select(*counts).from_(relation), warehouse.dialect)
        row = warehouse.query(query)[0]
        for column, count in zip(columns, row):
            if count:
                found[f"{table}.{column}"] = int(count)
    return found


def check_customer_keys(project: Project, warehouse: Warehouse, as_of: dt.datetime | None = None) -> None:
    """Every customer needs a key, and one row per key: members are identified by it.

    With attribute history, one version per key valid at ``as_of`` (overlapping versions are refused).

    :raises EvaluationError: naming the table, the column and sample offending keys.
    """
    from airflow_segprovider.core.evaluate.customers import customer_relation_sql
    from airflow_segprovider.core.sql.dialects import quote_identifier

    customer = project.model.customer
    table = customer_relation_sql(project, warehouse.schema, as_of, alias="c")
    key = quote_identifier(customer.key)
    missing = warehouse.query(render(f"SELECT COUNT(*) FROM {table} WHERE {key} IS NULL", warehouse.dialect))[0][0]
    duplicates = warehouse.query(render(
        f"SELECT CAST({key} AS VARCHAR), COUNT(*) FROM {table} WHERE {key} IS NOT NULL GROUP BY {key} "
        f"HAVING COUNT(*) > 1 ORDER BY COUNT(*) DESC, 1 LIMIT 5", warehouse.dialect))
    problems = []
    if missing:
        problems.append(f"{missing} row(s) of {customer.table} have no {customer.key}")
    if duplicates:
        sample = ", ".join(f"{k!r} ({n} rows)" for k, n in duplicates)
        if customer.history and as_of:
            problems.append(f"{customer.history.table}.{customer.key} has overlapping versions valid at "
                            f"{as_of.isoformat(sep=' ')}: {sample}")
        else:
            problems.append(f"{customer.table}.{customer.key} is not unique: {sample}")
    if problems:
        raise TerminalEvaluationError("cannot evaluate: " + "; ".join(problems)
                                      + "; each customer must have exactly one "
                                      "row with a key (deduplicate the load, or upsert by key)")


def evaluate(project: Project, warehouse: Warehouse, as_of: str | dt.datetime | dt.date, *,
             run_id: str | None = None, segments: Sequence[str] | None = None,
             full: bool = False) -> EvaluationResult:
    """Evaluate ``segments`` (default: all) at ``as_of``, write the snapshot and its diff.

    Incremental when it can be (:mod:`~airflow_segprovider.core.evaluate.incremental`: only the
    customers whose membership can have changed since the latest snapshot are evaluated, with the same
    result), full otherwise; the result and the run record (``segprovider_evaluation_runs``) say which
    and why.

    :param run_id: identifies the run in the membership store (e.g. the Airflow run id).
    :param full: evaluate every customer even when an incremental run could.
    :raises EvaluationError: bad ``as_of``, missing or mistyped source column, or a query failure;
        nothing is written in that case.
    """
    started = time.perf_counter()
    at = parse_as_of(as_of)
    run_id = run_id or f"manual__{uuid.uuid4().hex[:12]}"
    compiler = SegmentCompiler(project, warehouse.dialect, warehouse.schema)
    compiled = compiler.compile(at, segments=segments)
    names = [n for n in compiled.project.evaluation_order() if member_column(n) in compiled.flags_query.named_selects]
    column_types = check_sources(project, warehouse, names)
    check_customer_keys(project, warehouse, at)
    out_of_range = count_out_of_range(project, warehouse, names, at)
    for column, count in out_of_range.items():
        log.warning("%s: %d row(s) hold a number out of range (10^15 or more in magnitude, infinite or NaN); "
                    "they read as missing in this evaluation", column, count)
    store = MembershipStore(warehouse)
    store.ensure_tables()
    ensure_insights_tables(warehouse)
    timings: dict[str, float] = {}
    dialect = warehouse.dialect
    slots = bit_layout([(name, [arm.name for arm in project.segments[name].split.arms]
                         if project.segments[name].split else []) for name in names])
    whole_project = set(names) == set(project.segments)
    plan_print = incremental.fingerprint(compiler.compile(incremental.FINGERPRINT_AS_OF), slots, warehouse.schema,
                                         column_types)
    incremental.ensure_tables(warehouse)
    touched: int | None = None
    customers: int | None = None
    # Snowflake commits an open transaction at any DDL and BigQuery refuses DDL on permanent tables inside one:
    # there, what the run computes into tables is computed before its transaction, which then only writes (DML)
    ddl_outside = ddl_outside_transaction(dialect)
    staged: incremental.Staged | None = None
    staged_base: str | None = None
    keep_state: bool | None = None
    seen: tuple | None = None

    def keeps_state(decision: incremental.Decision) -> bool:
        # a whole-project run at or after the latest snapshot keeps the state the next run starts from
        latest = warehouse.query(render(f"SELECT MAX(as_of) FROM {SNAPSHOTS}", dialect))[0][0]
        return whole_project and decision.trackable and (latest is None or at >= latest)

    try:
        if ddl_outside:
            t0 = time.perf_counter()
            seen = _state_marker(warehouse)
            decision = incremental.decide(project, warehouse, compiled, slots, at, plan_print, full=full,
                                          whole_project=whole_project)
            timings["decide_s"] = time.perf_counter() - t0
            if decision.mode == incremental.INCREMENTAL:
                prepared = incremental.stage(project, warehouse, compiled, slots, decision, at, timings)
                if isinstance(prepared, incremental.IncrementalOutcome):
                    touched, customers = prepared.touched, prepared.customers
                    decision = incremental.Decision(incremental.FULL, prepared.reason, loads=decision.loads)
                else:
                    staged = prepared
            if decision.mode == incremental.FULL:
                keep_state = keeps_state(decision)
                if keep_state:
                    staged_base = incremental.stage_base(warehouse, compiled)
                    seen = ((), seen[1])  # this run forgot the state itself; the snapshots must not have moved
            if (staged is not None or staged_base is not None) and decision.loads and \
                    incremental.load_counts(warehouse, decision.loads.columns) != decision.loads:
                # rows of a load committed (or of a seen load rewritten: its checksum) after the decision may be
                # in what was staged, though the state would not record them as seen (the next run would count
                # them again, or miss the rewrite): decide again
                raise TransientEvaluationError(
                    f"evaluation at {at.isoformat()}: a load was committed to "
                    f"{', '.join(sorted(decision.loads))} while this evaluation read them; it wrote nothing: retry")
        with warehouse.transaction(snapshot=True):  # one snapshot: the loads counted are the loads read
            now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
            t0 = time.perf_counter()
            if ddl_outside and _state_marker(warehouse) != seen:
                # another evaluation committed since this one decided: what it computed may be stale
                raise TransientEvaluationError(
                    f"evaluation at {at.isoformat()}: another evaluation of this warehouse committed while this one "
                    "was computing (the incremental state or the latest snapshot changed); it wrote nothing: retry")
            if not ddl_outside:
                decision = incremental.decide(project, warehouse, compiled, slots, at, plan_print, full=full,
                                              whole_project=whole_project)
                timings["decide_s"] = time.perf_counter() - t0
            diffs = None
            state_current = False  # the state's base holds every customer's row at this as_of
            if decision.mode == incremental.INCREMENTAL:
                if staged is not None:
                    outcome = incremental.apply(warehouse, compiled, store, slots, decision, staged, at, run_id,
                                                now, timings)
                else:
                    outcome = incremental.run(project, warehouse, compiled, store, slots, decision, at, run_id,
                                              now, timings)
                touched, customers = outcome.touched, outcome.customers
                diffs = outcome.diffs
                if diffs is None:
                    decision = incremental.Decision(incremental.FULL, outcome.reason, loads=decision.loads)
                else:
                    state_current = True
                    timings["evaluate_s"] = time.perf_counter() - t0
                    t0 = time.perf_counter()
            if diffs is None:
                if keep_state is None:
                    keep_state = keeps_state(decision)
                t0 = time.perf_counter()
                if keep_state:
                    base_rows = incremental.write_base(warehouse, compiled, staged_base)
                    state_current = True
                    evaluation = incremental.flags_from_state(compiled, touched_only=False)
                else:
                    # One statement evaluates every segment and writes the packed snapshot: the per-customer
                    # flags are a CTE read once, never a table of their own (materialising them cost about
                    # as much as the packed write, benchmarks/evaluation.py).
                    evaluation = compiled
                packed = to_sql(evaluation.packed_evaluation(slots), dialect)
                write_id = store.replace_snapshot(packed, slots, at, run_id)
                timings["evaluate_s"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                diffs = store.write_diff(names, at, run_id, now)
                if keep_state:
                    words = warehouse.query(render(
                        f"SELECT COUNT(*) FROM {WORDS} WHERE write_id = {text_literal(write_id)}", dialect))[0][0]
                    incremental.save_state(warehouse, at, write_id, plan_print, run_id, int(words), 0, 0,
                                           decision.loads)
                    touched = customers = base_rows
            # A backfill inserts a snapshot before later ones: their diffs must now be against it.
            for later_at, later_names in _group(store.next_as_of(names, at)).items():
                later_run = warehouse.query(render(
                    f"SELECT MAX(run_id) FROM {SNAPSHOTS} WHERE as_of = {ts_literal(later_at)}", dialect)
                )[0][0]
                store.write_diff(later_names, later_at, later_run or run_id, now)
            refresh_insights(project, warehouse, at, run_id, names, compiled if state_current else None)
            timings["diff_s"] = time.perf_counter() - t0
            incremental.record_run(warehouse, run_id, at, decision.mode, decision.reason, touched,
                                   customers, time.perf_counter() - started, now)
        if ddl_outside:  # committed: a failure to drop the scratch tables is only logged
            _drop_scratch(warehouse, staged, staged_base, quietly=True)
    except EvaluationError:
        if ddl_outside:
            _drop_scratch(warehouse, staged, staged_base, quietly=True)
        raise
    except Exception as exc:  # driver errors: say which evaluation failed, keep the cause
        if ddl_outside:
            _drop_scratch(warehouse, staged, staged_base, quietly=True)
        raise TransientEvaluationError(f"evaluation at {at.isoformat()} failed and wrote nothing: {exc}") from exc
    log.info("evaluation at %s: %s (%s)", at.isoformat(), decision.mode, decision.reason)
    return EvaluationResult(at, run_id, diffs, time.perf_counter() - started, timings, out_of_range,
                            decision.mode, decision.reason, touched)


def _state_marker(warehouse: Warehouse) -> tuple:
    """What an evaluation decides from: the incremental state's snapshot and the latest snapshot."""
    state = warehouse.query(render(f"SELECT as_of, write_id, run_id FROM {INCREMENTAL_STATE}",
                                   warehouse.dialect))
    latest = warehouse.query(render(f"SELECT MAX(as_of), COUNT(*) FROM {SNAPSHOTS}", warehouse.dialect))
    return tuple(sorted(tuple(row) for row in state)), tuple(latest[0])


def _drop_scratch(warehouse: Warehouse, staged: incremental.Staged | None, staged_base: str | None,
                  quietly: bool = False) -> None:
    """After the transaction, where DDL cannot run inside one: drop the run's scratch tables."""
    try:
        incremental.cleanup(warehouse, staged)
        if staged_base:
            incremental.drop_staged_base(warehouse, staged_base)
    except Exception:  # noqa: BLE001 - the run's own error is the one to report; the next run replaces them
        if not quietly:
            raise
        log.warning("could not drop the evaluation's scratch tables", exc_info=True)


def _group(mapping: dict[str, dt.datetime]) -> dict[dt.datetime, list[str]]:
    out: dict[dt.datetime, list[str]] = {}
    for name, value in mapping.items():
        out.setdefault(value, []).append(name)
    return out


def compile_for(project: Project, warehouse: Warehouse, as_of: dt.datetime, **kwargs) -> CompiledEvaluation:
    return SegmentCompiler(project, warehouse.dialect, warehouse.schema).compile(as_of, **kwargs)


@dataclass
class Preview:
    segment: str
    as_of: dt.datetime
    members: int
    sample: list[str]
    arms: dict[str, int]


def preview(project: Project, warehouse: Warehouse, segment: str, as_of: str | dt.datetime | dt.date,
            sample_size: int = 10) -> Preview:
    """Count and sample a segment's members at ``as_of`` without writing a snapshot."""
    if segment not in project.segments:
        raise TerminalEvaluationError(f"unknown segment {segment!r}; segments: {', '.join(project.segments)}")
    at = parse_as_of(as_of)
    compiled = compile_for(project, warehouse, at, segments=[segment])
    names = [n for n in project.evaluation_order() if member_column(n) in compiled.flags_query.named_selects]
    check_sources(project, warehouse, names)
    rows_sql = to_sql(compiled.membership_query("flags", [segment]), warehouse.dialect)
    query = f"WITH flags AS ({compiled.sql(pretty=False)}), members AS ({rows_sql}) "
    arms = {arm or "": count for arm, count in warehouse.query(
        query + "SELECT arm, COUNT(*) FROM members GROUP BY arm ORDER BY arm")}
    sample = [key for (key,) in warehouse.query(
        query + f"SELECT customer_key FROM members ORDER BY customer_key LIMIT {int(sample_size)}")]
    return Preview(segment, at, sum(arms.values()), sample, {k: v for k, v in arms.items() if k})

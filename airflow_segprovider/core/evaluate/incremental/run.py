"""The incremental run: what changed since the state's snapshot, the touched customers' new ``base`` rows,
their flags and the membership delta."""


from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from sqlglot import exp

from airflow_segprovider.core.evaluate.columns import attribute_column, consent_column, count_column
from airflow_segprovider.core.evaluate.conditions import predicate_sql
from airflow_segprovider.core.evaluate.incremental import limits
from airflow_segprovider.core.evaluate.incremental.decision import Decision, cte_names, temporary_tables
from airflow_segprovider.core.evaluate.incremental.plan import (
    base_query,
    cte_body,
    flags_from_state,
    touched_keys,
    with_ctes,
)
from airflow_segprovider.core.evaluate.incremental.state import save_state
from airflow_segprovider.core.project.rules import AttributeCondition, EventCondition, iter_conditions
from airflow_segprovider.core.sql import dialects
from airflow_segprovider.core.sql.dialects import render, text_literal, to_sql, ts_literal
from airflow_segprovider.core.sql.expressions import and_all, col, false_if_null, ident, literal, or_any, table_ref
from airflow_segprovider.core.sql.numbers import exact_number
from airflow_segprovider.core.state import incremental as state_tables
from airflow_segprovider.core.state.ingest import LOAD_COLUMN
from airflow_segprovider.core.state.membership import WORDS

if TYPE_CHECKING:
    from airflow_segprovider.core.evaluate.aggregates import AggregateKey
    from airflow_segprovider.core.evaluate.compiler import CompiledEvaluation
    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.state.membership import MembershipStore, SegmentDiff, Slot
    from airflow_segprovider.core.warehouses.base import Warehouse

@dataclass
class IncrementalOutcome:
    diffs: list[SegmentDiff] | None
    touched: int
    customers: int
    reason: str = ""


#: Relative operators: their bounds move with as_of.
RELATIVE_OPS = ("within_last", "more_than_ago")


def _ts(dialect: str, column: str) -> exp.Expression:
    return dialects.wall_clock(dialect, col(column), "timestamp")


def _read(dialect: str, column: str, value_type: str) -> exp.Expression:
    # as the compiler reads a source column: numbers as exact decimals, timestamps as UTC wall-clock time
    if value_type == "number":
        return exact_number(col(column))
    return dialects.wall_clock(dialect, col(column), value_type)


def _counts(project: Project, dialect: str, key: AggregateKey, as_of: dt.datetime) -> exp.Expression:
    """Whether an event row counts in the aggregate ``key`` at ``as_of`` (the compiler's FILTER, its WHERE's bounds)."""
    source = project.model.events[key.source]
    ts = _ts(dialect, source.timestamp)
    parts: list[exp.Expression] = [exp.LTE(this=ts, expression=literal(as_of))]
    if key.within is not None:
        parts.append(exp.GTE(this=ts.copy(), expression=literal(as_of - key.within)))
    for flt in key.where:
        value_type = source.properties[flt.property]
        parts.append(false_if_null(predicate_sql(dialect, _read(dialect, flt.property, value_type), flt.predicate,
                                                 value_type, as_of)))
    return exp.Paren(this=and_all(parts))


def _when(condition: exp.Expression, then: exp.Expression, default: exp.Expression | None = None) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=condition.copy(), true=then)], default=default)


def _new_load(seen_loads: list[str]) -> exp.Expression:
    """Whether a row belongs to an ingest load the state had not seen."""
    load = exp.Coalesce(this=exp.cast(col(LOAD_COLUMN), exp.DataType.build("VARCHAR")),
                        expressions=[exp.Literal.string("")])
    return (exp.Not(this=exp.In(this=load, expressions=[exp.Literal.string(s) for s in seen_loads]))
            if seen_loads else exp.true())


def _change_filter(project: Project, dialect: str, source_name: str, keys: list[tuple[AggregateKey, str]],
                   previous: dt.datetime, as_of: dt.datetime, seen_loads: list[str]) -> exp.Expression | None:
    """The rows of one event source an aggregate can count differently at ``as_of`` than at ``previous``:
    rows of new loads, and rows dated across an edge of a window. None: any row can (a ``where`` filter
    relative to as_of), the whole source is read."""
    source = project.model.events[source_name]
    if any(flt.predicate.op in RELATIVE_OPS for key, _ in keys for flt in key.where):
        return None
    ts = _ts(dialect, source.timestamp)
    edges: list[exp.Expression] = [exp.and_(exp.GT(this=ts.copy(), expression=literal(previous)),
                                            exp.LTE(this=ts.copy(), expression=literal(as_of)))]
    for within in sorted({key.within for key, _ in keys if key.within is not None}):
        edges.append(exp.Between(this=ts.copy(), low=literal(previous - within), high=literal(as_of - within)))
    return exp.Paren(this=or_any([_new_load(seen_loads), *edges]))


def _type_filter(project: Project, source_name: str) -> exp.Expression | None:
    source = project.model.events[source_name]
    if source.type_column is None:
        return None
    return exp.EQ(this=col(source.type_column), expression=literal(source.type_value))


def _delta_query(project: Project, dialect: str, rows: exp.Expression, source_name: str,
                 keys: list[tuple[AggregateKey, str]], previous: dt.datetime, as_of: dt.datetime,
                 seen_loads: list[str]) -> exp.Select:
    """Per customer of one event source: each aggregate's change between ``previous`` and ``as_of``.

    :param rows: the relation to read: the source's table, or the rows of it staged for this run
        (:func:`_stage_rows`), which hold every row the source's :func:`_change_filter` selects.
    """
    source = project.model.events[source_name]
    one, zero = exp.Literal.number(1), exp.Literal.number(0)
    new_load = _new_load(seen_loads)
    projections: list[exp.Expression] = [exp.alias_(col(source.customer_key), "k", quoted=True)]
    leaving: list[exp.Expression] = []
    for key, column in keys:
        old = exp.Paren(this=exp.and_(exp.Not(this=exp.Paren(this=new_load.copy())),
                                      _counts(project, dialect, key, previous)))
        new = _counts(project, dialect, key, as_of)
        ts = _ts(dialect, source.timestamp)
        value: exp.Expression | None = None if key.aggregate == "count" else (
            ts if key.property is None else _read(dialect, key.property, "number"))
        if key.aggregate in ("count", "sum", "avg"):
            if value is None:
                new_term, old_term = exp.Sum(this=_when(new, one, zero)), exp.Sum(this=_when(old, one, zero))
            else:
                new_term = exp.Coalesce(this=exp.Sum(this=_when(new, value)), expressions=[zero.copy()])
                old_term = exp.Coalesce(this=exp.Sum(this=_when(old, value)), expressions=[zero.copy()])
            projections.append(exp.alias_(exp.Sub(this=new_term, expression=old_term), f"d_{column}", quoted=True))
            if key.aggregate == "avg":
                assert value is not None
                present = exp.Not(this=exp.Is(this=value.copy(), expression=exp.null()))
                projections.append(exp.alias_(exp.Sub(
                    this=exp.Sum(this=_when(exp.and_(new.copy(), present.copy()), one, zero)),
                    expression=exp.Sum(this=_when(exp.and_(old.copy(), present.copy()), one, zero))),
                    f"n_{column}", quoted=True))
        else:
            assert value is not None
            func = exp.Min if key.aggregate in ("min", "first") else exp.Max
            projections.append(exp.alias_(func(this=_when(new, value)), f"e_{column}", quoted=True))
            # an event counted before and not now: the old extreme may be gone, recompute the customer
            leaving.append(exp.Sum(this=_when(old.copy(), _when(new.copy(), zero, one), zero)))
    recompute = zero.copy()
    if leaving:
        total = leaving[0]
        for term in leaving[1:]:
            total = exp.Add(this=total, expression=term)
        recompute = _when(exp.GT(this=total, expression=zero.copy()), one.copy(), zero.copy())
    projections.append(exp.alias_(recompute, "recompute", quoted=True))
    where = [w for w in (_type_filter(project, source_name),
                         _change_filter(project, dialect, source_name, keys, previous, as_of, seen_loads))
             if w is not None]
    query = exp.select(*projections).from_(rows.copy())
    if where:
        query = query.where(and_all(where))
    return query.group_by(col(source.customer_key))


def _stage_rows(project: Project, warehouse: Warehouse, by_source: dict[str, list[tuple[AggregateKey, str]]],
                previous: dt.datetime, as_of: dt.datetime, seen: dict[str, list[str]]) -> dict[str, str]:
    """Source name -> a scratch table holding the rows its delta reads, for every event table two or more
    sources read without a filter relative to as_of: one scan of the table instead of one per source (the
    staged rows are a day's loads and window edges, a small part of the table)."""
    tables: dict[str, list[str]] = {}
    for source_name, keys in by_source.items():
        if _change_filter(project, warehouse.dialect, source_name, keys, previous, as_of, []) is not None:
            tables.setdefault(project.model.events[source_name].table, []).append(source_name)
    out: dict[str, str] = {}
    for index, (table, sources) in enumerate(t for t in tables.items() if len(t[1]) > 1):
        staged = f"{state_tables.ROWS_PREFIX}{index}"
        # a superset of every source's rows (each source's delta filters its own again): rows of new loads, or
        # dated in one of the sources' edge ranges, merged where they overlap; no event-type filter (comparing
        # the type of every row cost as much as the date ranges, and the staged rows are few anyway)
        timestamps = {project.model.events[name].timestamp for name in sources}
        ranges: list[tuple[dt.datetime, dt.datetime]] = [(previous, as_of)]
        for name in sources:
            ranges += [(previous - w, as_of - w) for w in {k.within for k, _ in by_source[name] if k.within}]
        merged: list[list[dt.datetime]] = []
        for low, high in sorted(ranges):
            if merged and low <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], high)
            else:
                merged.append([low, high])
        wanted = [_new_load(seen.get(table, []))]
        for column in sorted(timestamps):
            ts = _ts(warehouse.dialect, column)
            wanted += [exp.Between(this=ts.copy(), low=literal(low), high=literal(high)) for low, high in merged]
        query = exp.select(exp.Star()).from_(table_ref(table, warehouse.schema)).where(or_any(wanted))
        _drop(warehouse, staged)
        warehouse.execute(state_tables.create_as(staged, to_sql(query, warehouse.dialect),
                                                 temporary_tables(warehouse)))
        out.update({source_name: staged for source_name in sources})
    return out


def _crossing(project: Project, compiled: CompiledEvaluation, previous: dt.datetime,
              as_of: dt.datetime) -> list[exp.Expression]:
    """Conditions on the state's ``base`` columns: a relative predicate's outcome can differ between the runs."""
    out: list[exp.Expression] = []
    seen: set[tuple[str, str, dt.timedelta]] = set()
    for name in compiled.project.evaluation_order():
        for node in iter_conditions(project.segments[name].rule):
            if isinstance(node, (AttributeCondition, EventCondition)) and node.predicate.op in RELATIVE_OPS:
                if isinstance(node, AttributeCondition):
                    column = attribute_column(node.attribute)
                    is_date = project.model.customer.attributes[node.attribute].type == "date"
                else:
                    column = compiled.aggregates.get(_aggregate_key(node))
                    if column is None:
                        continue
                    is_date = False
                if (column, node.predicate.op, node.predicate.value) in seen:
                    continue
                seen.add((column, node.predicate.op, node.predicate.value))
                # within_last holds between as_of - v and as_of, more_than_ago below as_of - v
                offsets = (node.predicate.value, dt.timedelta(0)) if node.predicate.op == "within_last" else (
                    node.predicate.value,)
                for offset in offsets:
                    low, high = previous - offset, as_of - offset
                    bounds = (low.date(), high.date()) if is_date else (low, high)
                    out.append(exp.Between(this=col(column, "s"), low=literal(bounds[0]), high=literal(bounds[1])))
    return out


def _aggregate_key(node: EventCondition) -> AggregateKey:
    from airflow_segprovider.core.evaluate.aggregates import AggregateKey

    return AggregateKey(node.event, node.aggregate, node.property, node.within, node.where)


def _drop(warehouse: Warehouse, table: str) -> None:
    warehouse.execute(render(f"DROP TABLE IF EXISTS {table}", warehouse.dialect))


@dataclass
class Staged:
    """An incremental run computed and not yet written: its scratch tables hold the touched customers
    (:data:`~airflow_segprovider.core.state.incremental.TOUCHED`), their new ``base`` rows (``STAGED``) and the
    membership words that changed (``CHANGED``)."""

    deltas: list[tuple[str, list[tuple[AggregateKey, str]]]]
    touched: int
    customers: int
    changed_rows: int


def run(project: Project, warehouse: Warehouse, compiled: CompiledEvaluation, store: MembershipStore,
        slots: Sequence[Slot], decision: Decision, as_of: dt.datetime, run_id: str,
        evaluated_at: dt.datetime, timings: dict[str, float] | None = None) -> IncrementalOutcome:
    """The incremental run, for a warehouse whose transactions hold DDL (inside the evaluation's transaction):
    :func:`stage`, :func:`apply`, :func:`cleanup`. Returns diffs None when the touched customers are too many
    (the caller evaluates in full; nothing of the store was changed).

    :param timings: receives the seconds of each step (``detect_s``, ``base_s``, ``flags_s``, ``write_s``).
    """
    staged = stage(project, warehouse, compiled, slots, decision, as_of, timings)
    if isinstance(staged, IncrementalOutcome):
        return staged
    outcome = apply(warehouse, compiled, store, slots, decision, staged, as_of, run_id, evaluated_at, timings)
    cleanup(warehouse, staged)
    return outcome


def cleanup(warehouse: Warehouse, staged: Staged | None) -> None:
    """Drop the run's scratch tables (DDL: after the transaction where the warehouse commits or refuses DDL
    inside one)."""
    for table, _ in (staged.deltas if staged else []):
        _drop(warehouse, table)
    for table in (state_tables.TOUCHED, state_tables.CHANGED, state_tables.STAGED):
        _drop(warehouse, table)


def stage(project: Project, warehouse: Warehouse, compiled: CompiledEvaluation, slots: Sequence[Slot],
          decision: Decision, as_of: dt.datetime, timings: dict[str, float] | None = None,
          ) -> Staged | IncrementalOutcome:
    """Everything an incremental run computes before it writes: the touched customers, their new ``base``
    rows and the membership words that changed, in scratch tables (reads and DDL only: nothing the store or
    the state holds changes). An :class:`IncrementalOutcome` without diffs when the touched customers are
    too many (its scratch tables are dropped)."""
    timings = timings if timings is not None else {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = time.perf_counter() - clock
        clock = time.perf_counter()

    assert decision.previous_as_of is not None and decision.write_id is not None
    dialect, schema = warehouse.dialect, warehouse.schema
    previous = decision.previous_as_of
    temporary = temporary_tables(warehouse)
    seen = {t: sorted(loads) for t, loads in _seen_loads(warehouse).items()}
    deltas: list[tuple[str, list[tuple[AggregateKey, str]]]] = []
    by_source: dict[str, list[tuple[AggregateKey, str]]] = {}
    for key, column in compiled.aggregates.items():
        by_source.setdefault(key.source, []).append((key, column))
    staged_rows = _stage_rows(project, warehouse, by_source, previous, as_of, seen)
    for index, (source_name, keys) in enumerate(by_source.items()):
        table = f"{state_tables.DELTA_PREFIX}{index}"
        _drop(warehouse, table)
        source_table = project.model.events[source_name].table
        rows = (table_ref(staged_rows[source_name]) if source_name in staged_rows
                else table_ref(source_table, schema))
        query = _delta_query(project, dialect, rows, source_name, keys, previous, as_of, seen.get(source_table, []))
        warehouse.execute(state_tables.create_as(table, to_sql(query, dialect), temporary))
        deltas.append((table, keys))
    for table in sorted(set(staged_rows.values())):
        _drop(warehouse, table)
    # the touched customers: (k, recompute, consent)
    parts: list[exp.Select] = []
    zero, one = exp.Literal.number(0), exp.Literal.number(1)
    for table, _keys in deltas:
        parts.append(exp.select(col("k"), col("recompute"), exp.alias_(zero.copy(), "consent")).from_(table_ref(table)))
    if "consent_latest" in cte_names(compiled):
        consent = project.model.consent
        assert consent is not None
        updated = _ts(dialect, consent.updated_at_column)
        changed = [exp.and_(exp.GT(this=updated, expression=literal(previous)),
                            exp.LTE(this=updated.copy(), expression=literal(as_of)))]
        seen_consent = seen.get(consent.table, [])
        load = exp.Coalesce(this=exp.cast(col(LOAD_COLUMN), exp.DataType.build("VARCHAR")),
                            expressions=[exp.Literal.string("")])
        changed.append(exp.Not(this=exp.In(this=load, expressions=[exp.Literal.string(s) for s in seen_consent]))
                       if seen_consent else exp.true())
        parts.append(exp.select(exp.alias_(col(consent.customer_key), "k"), exp.alias_(zero.copy(), "recompute"),
                                exp.alias_(one.copy(), "consent"))
                     .from_(table_ref(consent.table, schema)).where(or_any(changed)))
    # attributes: now (through the plan's own customer relation and filters) against the state
    base = cte_body(compiled.flags_query, "base").copy()
    attributes = [name for name in compiled.value_columns if name.startswith("attribute:")]
    attribute_columns = [compiled.value_columns[name] for name in attributes]
    now_columns = [p for p in base.expressions if p.alias_or_name in ("k", *attribute_columns)]
    now = base.copy()
    now.set("joins", None)
    now.set("expressions", [p.copy() for p in now_columns])
    differs = [exp.Is(this=col("k", "a"), expression=exp.null()), exp.Is(this=col("k", "s"), expression=exp.null())]
    differs += [exp.NullSafeNEQ(this=col(c, "a"), expression=col(c, "s")) for c in attribute_columns]
    parts.append(exp.select(exp.alias_(exp.Coalesce(this=col("k", "a"), expressions=[col("k", "s")]), "k"),
                            exp.alias_(_when(exp.Is(this=col("k", "s"), expression=exp.null()), one.copy(),
                                             zero.copy()), "recompute"), exp.alias_(zero.copy(), "consent"))
                 .from_(now.subquery("a"))
                 .join(table_ref(state_tables.BASE, alias="s"), on=exp.EQ(this=col("k", "s"), expression=col("k", "a")),
                       join_type="FULL OUTER")
                 .where(or_any(differs)))
    crossing = _crossing(project, compiled, previous, as_of)
    if crossing:
        parts.append(exp.select(col("k", "s"), exp.alias_(zero.copy(), "recompute"), exp.alias_(zero.copy(), "consent"))
                     .from_(table_ref(state_tables.BASE, alias="s")).where(or_any(crossing)))
    union: exp.Expression = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False)
    touched_query = (exp.select(col("k"), exp.alias_(exp.Max(this=col("recompute")), "recompute"),
                                exp.alias_(exp.Max(this=col("consent")), "consent"))
                     .from_(exp.Subquery(this=union, alias=exp.TableAlias(this=ident("t"))))
                     .where(exp.Not(this=exp.Is(this=col("k"), expression=exp.null())))
                     .group_by(col("k")))
    _drop(warehouse, state_tables.TOUCHED)
    warehouse.execute(state_tables.create_as(state_tables.TOUCHED, to_sql(touched_query, dialect), temporary))
    touched = int(warehouse.query(render(f"SELECT COUNT(*) FROM {state_tables.TOUCHED}", dialect))[0][0])
    customers = int(warehouse.query(render(f"SELECT COUNT(*) FROM {state_tables.BASE}", dialect))[0][0])

    if touched > limits.MAX_TOUCHED_SHARE * max(customers, 1):
        cleanup(warehouse, Staged(deltas, touched, customers, 0))
        return IncrementalOutcome(None, touched, customers,
                                  f"{touched} of {customers} customers touched since {previous} "
                                  f"(more than {limits.MAX_TOUCHED_SHARE:.0%}): a full evaluation is cheaper")
    lap("detect_s")
    _stage_base(project, warehouse, compiled, deltas)
    lap("base_s")
    # the touched customers' flags, from their new rows, packed, against their words in the previous snapshot
    packed = to_sql(flags_from_state(compiled, touched_only=False, table=state_tables.STAGED)
                    .packed_evaluation(slots), dialect)
    key_text = exp.cast(col("k"), exp.DataType.build("VARCHAR"))
    old = (f"SELECT word, customer_key, bits FROM {WORDS} WHERE write_id = {text_literal(decision.write_id)} "
           f"AND as_of <= {ts_literal(previous)} AND valid_to IS NULL AND customer_key IN "
           f"(SELECT {to_sql(key_text, 'duckdb')} FROM {state_tables.TOUCHED})")
    changed_sql = render(
        "SELECT COALESCE(n.customer_key, o.customer_key) AS customer_key, COALESCE(n.word, o.word) AS word, "
        "COALESCE(o.bits, 0) AS old_bits, COALESCE(n.bits, 0) AS new_bits "
        f"FROM {state_tables.NEW_WORDS} AS n FULL OUTER JOIN ({old}) AS o "
        "ON o.customer_key = n.customer_key AND o.word = n.word WHERE COALESCE(o.bits, 0) <> COALESCE(n.bits, 0)",
        dialect).replace(state_tables.NEW_WORDS, f"({packed})", 1)
    _drop(warehouse, state_tables.CHANGED)
    warehouse.execute(state_tables.create_as(state_tables.CHANGED, changed_sql, temporary))
    changed_rows = int(warehouse.query(render(f"SELECT COUNT(*) FROM {state_tables.CHANGED}", dialect))[0][0])
    lap("flags_s")
    return Staged(deltas, touched, customers, changed_rows)


def apply(warehouse: Warehouse, compiled: CompiledEvaluation, store: MembershipStore, slots: Sequence[Slot],
          decision: Decision, staged: Staged, as_of: dt.datetime, run_id: str, evaluated_at: dt.datetime,
          timings: dict[str, float] | None = None) -> IncrementalOutcome:
    """Write what :func:`stage` computed (DML only, inside the evaluation's transaction): the touched
    customers' ``base`` rows replaced, the membership delta and its diff, the state."""
    assert decision.previous_as_of is not None and decision.write_id is not None
    started = time.perf_counter()
    dialect = warehouse.dialect
    columns = ", ".join(dialects.quote_identifier(c) for c in cte_body(compiled.flags_query, "base").named_selects)
    warehouse.execute(render(f"DELETE FROM {state_tables.BASE} WHERE k IN (SELECT k FROM {state_tables.TOUCHED})",
                             dialect))
    warehouse.execute(render(f"INSERT INTO {state_tables.BASE} ({columns}) SELECT {columns} FROM {state_tables.STAGED}",
                             dialect))
    diffs = store.write_delta(decision.write_id, state_tables.CHANGED, slots, as_of, decision.previous_as_of, run_id,
                              evaluated_at)
    save_state(warehouse, as_of, decision.write_id, _stored_fingerprint(warehouse), run_id, decision.base_rows,
               decision.delta_rows + staged.changed_rows, decision.deltas + 1, decision.loads)
    if timings is not None:
        timings["write_s"] = time.perf_counter() - started
    return IncrementalOutcome(diffs, staged.touched, staged.customers)


def _stored_fingerprint(warehouse: Warehouse) -> str:
    return str(warehouse.query(render(f"SELECT fingerprint FROM {state_tables.STATE}", warehouse.dialect))[0][0])


def _seen_loads(warehouse: Warehouse) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for table, load_id in warehouse.query(render(f"SELECT table_name, load_id FROM {state_tables.LOADS}",
                                                 warehouse.dialect)):
        out.setdefault(table, set()).add(load_id)
    return out


def _stage_base(project: Project, warehouse: Warehouse, compiled: CompiledEvaluation,
                deltas: list[tuple[str, list[tuple[AggregateKey, str]]]]) -> None:
    """The touched customers' rows of the state's ``base`` at the new as_of, into the scratch table ``STAGED``
    (:func:`apply` replaces their stored rows with them); a customer gone has no row there."""
    dialect = warehouse.dialect
    recompute = touched_keys("recompute = 1")
    restrict: dict[str, exp.Select] = {"base": touched_keys()}
    for cte in cte_names(compiled):
        if cte.startswith("agg__"):
            restrict[cte] = recompute.copy()
    if "consent_latest" in cte_names(compiled):
        restrict["consent_latest"] = touched_keys("recompute = 1 OR consent = 1")
    fresh = base_query(compiled, restrict)
    base_columns = list(cte_body(compiled.flags_query, "base").named_selects)
    kinds: dict[str, tuple[str, AggregateKey | None, str | None]] = {}
    for table, keys in deltas:
        for key, column in keys:
            kinds[column] = (table, key, None)
            if key.aggregate == "avg":
                kinds[count_column(column)] = (table, key, column)
    consent_columns = {consent_column(c) for c in _channels(compiled)}
    zero = exp.Literal.number(0)
    recomputed = exp.EQ(this=col("recompute", "t"), expression=exp.Literal.number(1))
    projections: list[exp.Expression] = []
    joins: dict[str, str] = {}
    for name in base_columns:
        fresh_value = col(name, "f")
        if name in kinds:
            table, key, avg_of = kinds[name]
            assert key is not None
            alias = joins.setdefault(table, f"d{len(joins)}")
            stored = col(name, "s")
            if avg_of is not None:  # the count of an average
                value = exp.Add(this=exp.Coalesce(this=stored, expressions=[zero.copy()]),
                                expression=exp.Coalesce(this=col(f"n_{avg_of}", alias), expressions=[zero.copy()]))
            elif key.aggregate in ("count", "sum"):
                value = exp.Add(this=exp.Coalesce(this=stored, expressions=[zero.copy()]),
                                expression=exp.Coalesce(this=col(f"d_{name}", alias), expressions=[zero.copy()]))
            elif key.aggregate == "avg":
                count = exp.Add(this=exp.Coalesce(this=col(count_column(name), "s"), expressions=[zero.copy()]),
                                expression=exp.Coalesce(this=col(f"n_{name}", alias), expressions=[zero.copy()]))
                value = _when(exp.EQ(this=count, expression=zero.copy()), exp.null(),
                              exp.Add(this=exp.Coalesce(this=stored, expressions=[zero.copy()]),
                                      expression=exp.Coalesce(this=col(f"d_{name}", alias),
                                                              expressions=[zero.copy()])))
            else:
                entering = col(f"e_{name}", alias)
                better = exp.LT if key.aggregate in ("min", "first") else exp.GT
                missing = exp.Is(this=stored.copy(), expression=exp.null())
                none_new = exp.Is(this=entering.copy(), expression=exp.null())
                value = exp.Case(ifs=[exp.If(this=missing, true=entering.copy()),
                                      exp.If(this=none_new, true=stored.copy()),
                                      exp.If(this=better(this=entering.copy(), expression=stored.copy()),
                                             true=entering.copy())],
                                 default=stored.copy())
            projections.append(exp.alias_(_when(recomputed, fresh_value, value), name, quoted=True))
        elif name in consent_columns:
            fresh_consent = exp.or_(recomputed.copy(),
                                    exp.EQ(this=col("consent", "t"), expression=exp.Literal.number(1)))
            projections.append(exp.alias_(_when(fresh_consent, fresh_value, col(name, "s")), name, quoted=True))
        else:  # the key and the attributes, read fresh
            projections.append(exp.alias_(fresh_value, name, quoted=True))
    ctes = fresh.args.pop("with_")
    rows = (exp.select(*projections).from_(table_ref("base", alias="f"))
            .join(table_ref(state_tables.TOUCHED, alias="t"), on=exp.EQ(this=col("k", "t"), expression=col("k", "f")))
            .join(table_ref(state_tables.BASE, alias="s"), on=exp.EQ(this=col("k", "s"), expression=col("k", "f")),
                  join_type="LEFT"))
    for table, alias in joins.items():
        rows = rows.join(table_ref(table, alias=alias), on=exp.EQ(this=col("k", alias), expression=col("k", "f")),
                         join_type="LEFT")
    rows = with_ctes(rows, [(cte.alias, cte.this) for cte in ctes.expressions])
    rows_sql = to_sql(rows, dialect)
    _drop(warehouse, state_tables.STAGED)
    warehouse.execute(state_tables.create_as(state_tables.STAGED, rows_sql, temporary_tables(warehouse)))


def _channels(compiled: CompiledEvaluation) -> list[str]:
    return [name.split(":", 1)[1] for name in compiled.value_columns if name.startswith("consent:")]


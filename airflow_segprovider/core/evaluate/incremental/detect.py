"""What changed between an incremental run's two ``as_of``: per event source, each aggregate's change per
customer (read from the rows its sources can count differently: new loads and window edges, staged once per
table), and the relative predicates whose outcome can differ; the SQL pieces :mod:`.run` assembles."""


from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlglot import exp

from airflow_segprovider.core.evaluate.columns import attribute_column
from airflow_segprovider.core.evaluate.conditions import predicate_sql
from airflow_segprovider.core.evaluate.incremental.decision import temporary_tables
from airflow_segprovider.core.project.rules import AttributeCondition, EventCondition, iter_conditions
from airflow_segprovider.core.sql import dialects
from airflow_segprovider.core.sql.dialects import render, to_sql
from airflow_segprovider.core.sql.expressions import and_all, col, false_if_null, literal, or_any, table_ref
from airflow_segprovider.core.sql.numbers import exact_number
from airflow_segprovider.core.state import incremental as state_tables
from airflow_segprovider.core.state.ingest import LOAD_COLUMN

if TYPE_CHECKING:
    from airflow_segprovider.core.evaluate.aggregates import AggregateKey
    from airflow_segprovider.core.evaluate.compiler import CompiledEvaluation
    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.warehouses.base import Warehouse


#: Relative operators: their bounds move with as_of.
RELATIVE_OPS = ("within_last", "more_than_ago")


def wall_ts(dialect: str, column: str) -> exp.Expression:
    return dialects.wall_clock(dialect, col(column), "timestamp")


def read_value(dialect: str, column: str, value_type: str) -> exp.Expression:
    # as the compiler reads a source column: numbers as exact decimals, timestamps as UTC wall-clock time
    if value_type == "number":
        return exact_number(col(column))
    return dialects.wall_clock(dialect, col(column), value_type)


def counted_at(project: Project, dialect: str, key: AggregateKey, as_of: dt.datetime) -> exp.Expression:
    """Whether an event row counts in the aggregate ``key`` at ``as_of`` (the compiler's FILTER, its WHERE's bounds)."""
    source = project.model.events[key.source]
    ts = wall_ts(dialect, source.timestamp)
    parts: list[exp.Expression] = [exp.LTE(this=ts, expression=literal(as_of))]
    if key.within is not None:
        parts.append(exp.GTE(this=ts.copy(), expression=literal(as_of - key.within)))
    for flt in key.where:
        value_type = source.properties[flt.property]
        parts.append(false_if_null(predicate_sql(dialect, read_value(dialect, flt.property, value_type), flt.predicate,
                                                 value_type, as_of)))
    return exp.Paren(this=and_all(parts))


def when(condition: exp.Expression, then: exp.Expression, default: exp.Expression | None = None) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=condition.copy(), true=then)], default=default)


def new_load_filter(seen_loads: list[str]) -> exp.Expression:
    """Whether a row belongs to an ingest load the state had not seen."""
    load = exp.Coalesce(this=exp.cast(col(LOAD_COLUMN), exp.DataType.build("VARCHAR")),
                        expressions=[exp.Literal.string("")])
    return (exp.Not(this=exp.In(this=load, expressions=[exp.Literal.string(s) for s in seen_loads]))
            if seen_loads else exp.true())


def change_filter(project: Project, dialect: str, source_name: str, keys: list[tuple[AggregateKey, str]],
                   previous: dt.datetime, as_of: dt.datetime, seen_loads: list[str]) -> exp.Expression | None:
    """The rows of one event source an aggregate can count differently at ``as_of`` than at ``previous``:
    rows of new loads, and rows dated across an edge of a window. None: any row can (a ``where`` filter
    relative to as_of), the whole source is read."""
    source = project.model.events[source_name]
    if any(flt.predicate.op in RELATIVE_OPS for key, _ in keys for flt in key.where):
        return None
    ts = wall_ts(dialect, source.timestamp)
    edges: list[exp.Expression] = [exp.and_(exp.GT(this=ts.copy(), expression=literal(previous)),
                                            exp.LTE(this=ts.copy(), expression=literal(as_of)))]
    for within in sorted({key.within for key, _ in keys if key.within is not None}):
        edges.append(exp.Between(this=ts.copy(), low=literal(previous - within), high=literal(as_of - within)))
    return exp.Paren(this=or_any([new_load_filter(seen_loads), *edges]))


def type_filter(project: Project, source_name: str) -> exp.Expression | None:
    source = project.model.events[source_name]
    if source.type_column is None:
        return None
    return exp.EQ(this=col(source.type_column), expression=literal(source.type_value))


def delta_query(project: Project, dialect: str, rows: exp.Expression, source_name: str,
                 keys: list[tuple[AggregateKey, str]], previous: dt.datetime, as_of: dt.datetime,
                 seen_loads: list[str]) -> exp.Select:
    """Per customer of one event source: each aggregate's change between ``previous`` and ``as_of``.

    :param rows: the relation to read: the source's table, or the rows of it staged for this run
        (:func:`_stage_rows`), which hold every row the source's :func:`_change_filter` selects.
    """
    source = project.model.events[source_name]
    one, zero = exp.Literal.number(1), exp.Literal.number(0)
    new_load = new_load_filter(seen_loads)
    projections: list[exp.Expression] = [exp.alias_(col(source.customer_key), "k", quoted=True)]
    leaving: list[exp.Expression] = []
    for key, column in keys:
        old = exp.Paren(this=exp.and_(exp.Not(this=exp.Paren(this=new_load.copy())),
                                      counted_at(project, dialect, key, previous)))
        new = counted_at(project, dialect, key, as_of)
        ts = wall_ts(dialect, source.timestamp)
        value: exp.Expression | None = None if key.aggregate == "count" else (
            ts if key.property is None else read_value(dialect, key.property, "number"))
        if key.aggregate in ("count", "sum", "avg"):
            if value is None:
                new_term, old_term = exp.Sum(this=when(new, one, zero)), exp.Sum(this=when(old, one, zero))
            else:
                new_term = exp.Coalesce(this=exp.Sum(this=when(new, value)), expressions=[zero.copy()])
                old_term = exp.Coalesce(this=exp.Sum(this=when(old, value)), expressions=[zero.copy()])
            projections.append(exp.alias_(exp.Sub(this=new_term, expression=old_term), f"d_{column}", quoted=True))
            if key.aggregate == "avg":
                assert value is not None
                present = exp.Not(this=exp.Is(this=value.copy(), expression=exp.null()))
                projections.append(exp.alias_(exp.Sub(
                    this=exp.Sum(this=when(exp.and_(new.copy(), present.copy()), one, zero)),
                    expression=exp.Sum(this=when(exp.and_(old.copy(), present.copy()), one, zero))),
                    f"n_{column}", quoted=True))
        else:
            assert value is not None
            func = exp.Min if key.aggregate in ("min", "first") else exp.Max
            projections.append(exp.alias_(func(this=when(new, value)), f"e_{column}", quoted=True))
            # an event counted before and not now: the old extreme may be gone, recompute the customer
            leaving.append(exp.Sum(this=when(old.copy(), when(new.copy(), zero, one), zero)))
    recompute = zero.copy()
    if leaving:
        total = leaving[0]
        for term in leaving[1:]:
            total = exp.Add(this=total, expression=term)
        recompute = when(exp.GT(this=total, expression=zero.copy()), one.copy(), zero.copy())
    projections.append(exp.alias_(recompute, "recompute", quoted=True))
    where = [w for w in (type_filter(project, source_name),
                         change_filter(project, dialect, source_name, keys, previous, as_of, seen_loads))
             if w is not None]
    query = exp.select(*projections).from_(rows.copy())
    if where:
        query = query.where(and_all(where))
    query = query.group_by(col(source.customer_key))
    # only the customers something changed for: a row no aggregate counts at either as_of (a late event older
    # than every window, one dated after as_of) is not read by a full evaluation either, and its key, which
    # may not even convert to the customers' key type ('guest-1'), must not reach the join to the state
    changes = [exp.EQ(this=col("recompute"), expression=one.copy())]
    for key, column in keys:
        if key.aggregate in ("count", "sum", "avg"):
            changes.append(exp.NEQ(this=col(f"d_{column}"), expression=zero.copy()))
            if key.aggregate == "avg":
                changes.append(exp.NEQ(this=col(f"n_{column}"), expression=zero.copy()))
        else:
            changes.append(exp.Not(this=exp.Is(this=col(f"e_{column}"), expression=exp.null())))
    return exp.select(exp.Star()).from_(query.subquery("d")).where(or_any(changes))


def stage_rows(project: Project, warehouse: Warehouse, by_source: dict[str, list[tuple[AggregateKey, str]]],
                previous: dt.datetime, as_of: dt.datetime, seen: dict[str, list[str]]) -> dict[str, str]:
    """Source name -> a scratch table holding the rows its delta reads, for every event table two or more
    sources read without a filter relative to as_of: one scan of the table instead of one per source (the
    staged rows are a day's loads and window edges, a small part of the table)."""
    tables: dict[str, list[str]] = {}
    for source_name, keys in by_source.items():
        if change_filter(project, warehouse.dialect, source_name, keys, previous, as_of, []) is not None:
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
        wanted = [new_load_filter(seen.get(table, []))]
        for column in sorted(timestamps):
            ts = wall_ts(warehouse.dialect, column)
            wanted += [exp.Between(this=ts.copy(), low=literal(low), high=literal(high)) for low, high in merged]
        query = exp.select(exp.Star()).from_(table_ref(table, warehouse.schema)).where(or_any(wanted))
        drop(warehouse, staged)
        warehouse.execute(state_tables.create_as(staged, to_sql(query, warehouse.dialect),
                                                 temporary_tables(warehouse)))
        out.update({source_name: staged for source_name in sources})
    return out


def crossing(project: Project, compiled: CompiledEvaluation, previous: dt.datetime,
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
                    column = compiled.aggregates.get(aggregate_key(node))
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


def aggregate_key(node: EventCondition) -> AggregateKey:
    from airflow_segprovider.core.evaluate.aggregates import AggregateKey

    return AggregateKey(node.event, node.aggregate, node.property, node.within, node.where)


def drop(warehouse: Warehouse, table: str) -> None:
    warehouse.execute(render(f"DROP TABLE IF EXISTS {table}", warehouse.dialect))

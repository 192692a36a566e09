"""The incremental run: what changed since the state's snapshot, the touched customers' new ``base`` rows,
their flags and the membership delta."""


from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from sqlglot import exp

from airflow_segprovider.core.evaluate.columns import consent_column, count_column
from airflow_segprovider.core.evaluate.incremental import limits
from airflow_segprovider.core.evaluate.incremental.decision import Decision, cte_names, temporary_tables
from airflow_segprovider.core.evaluate.incremental.detect import (
    crossing,
    delta_query,
    drop,
    stage_rows,
    wall_ts,
    when,
)
from airflow_segprovider.core.evaluate.incremental.plan import (
    base_query,
    cte_body,
    flags_from_state,
    touched_keys,
    with_ctes,
)
from airflow_segprovider.core.evaluate.incremental.state import save_state
from airflow_segprovider.core.sql import dialects
from airflow_segprovider.core.sql.dialects import render, text_literal, to_sql, ts_literal
from airflow_segprovider.core.sql.expressions import col, ident, literal, or_any, table_ref
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
        drop(warehouse, table)
    for table in (state_tables.TOUCHED, state_tables.CHANGED, state_tables.STAGED):
        drop(warehouse, table)


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
    staged_rows = stage_rows(project, warehouse, by_source, previous, as_of, seen)
    for index, (source_name, keys) in enumerate(by_source.items()):
        table = f"{state_tables.DELTA_PREFIX}{index}"
        drop(warehouse, table)
        source_table = project.model.events[source_name].table
        rows = (table_ref(staged_rows[source_name]) if source_name in staged_rows
                else table_ref(source_table, schema))
        query = delta_query(project, dialect, rows, source_name, keys, previous, as_of, seen.get(source_table, []))
        warehouse.execute(state_tables.create_as(table, to_sql(query, dialect), temporary))
        deltas.append((table, keys))
    for table in sorted(set(staged_rows.values())):
        drop(warehouse, table)
    # the touched customers: (k, recompute, consent)
    parts: list[exp.Select] = []
    zero, one = exp.Literal.number(0), exp.Literal.number(1)
    for table, _keys in deltas:
        parts.append(_as_stored_key(exp.select(col("k"), col("recompute"), exp.alias_(zero.copy(), "consent"))
                                    .from_(table_ref(table))))
    if "consent_latest" in cte_names(compiled):
        consent = project.model.consent
        assert consent is not None
        updated = wall_ts(dialect, consent.updated_at_column)
        changed = [exp.and_(exp.GT(this=updated, expression=literal(previous)),
                            exp.LTE(this=updated.copy(), expression=literal(as_of)))]
        seen_consent = seen.get(consent.table, [])
        load = exp.Coalesce(this=exp.cast(col(LOAD_COLUMN), exp.DataType.build("VARCHAR")),
                            expressions=[exp.Literal.string("")])
        changed.append(exp.Not(this=exp.In(this=load, expressions=[exp.Literal.string(s) for s in seen_consent]))
                       if seen_consent else exp.true())
        # only answers the plan reads at as_of (its channels, dated by then), as the consent CTE reads them: a key
        # of another answer may not even convert to the customers' key type
        read = exp.and_(exp.LTE(this=updated.copy(), expression=literal(as_of)),
                        exp.In(this=col(consent.channel_column), expressions=[literal(c) for c in _channels(compiled)]))
        parts.append(_as_stored_key(
            exp.select(exp.alias_(col(consent.customer_key), "k"), exp.alias_(zero.copy(), "recompute"),
                       exp.alias_(one.copy(), "consent"))
            .from_(table_ref(consent.table, schema)).where(exp.and_(exp.Paren(this=or_any(changed)), read))))
    # attributes: now (through the plan's own customer relation and filters) against the state
    base = cte_body(compiled.flags_query, "base").copy()
    attributes = [name for name in compiled.value_columns if name.startswith("attribute:")]
    attribute_columns = [compiled.value_columns[name] for name in attributes]
    now_columns = [p for p in base.expressions if p.alias_or_name in ("k", *attribute_columns)]
    now = base.copy()
    now.set("joins", None)
    now.set("expressions", [p.copy() for p in now_columns])
    differs = [exp.Is(this=col("k", "a"), expression=exp.null()), exp.Is(this=col("k", "s"), expression=exp.null())]
    texts = {compiled.value_columns[name] for name in attributes
             if project.model.customer.attributes[name.split(":", 1)[1]].type == "string"}

    def compared(column: str, side: str) -> exp.Expression:
        # text by code point, as the rules compare it: under a case-insensitive collation 'apple' and 'Apple'
        # are equal to the column, not to the language (PostgreSQL's nondeterministic ICU collations)
        return dialects.byte_order(dialect, col(column, side)) if column in texts else col(column, side)

    differs += [exp.NullSafeNEQ(this=compared(c, "a"), expression=compared(c, "s")) for c in attribute_columns]
    parts.append(exp.select(exp.alias_(exp.Coalesce(this=col("k", "a"), expressions=[col("k", "s")]), "k"),
                            exp.alias_(when(exp.Is(this=col("k", "s"), expression=exp.null()), one.copy(),
                                             zero.copy()), "recompute"), exp.alias_(zero.copy(), "consent"))
                 .from_(now.subquery("a"))
                 .join(table_ref(state_tables.BASE, alias="s"), on=exp.EQ(this=col("k", "s"), expression=col("k", "a")),
                       join_type="FULL OUTER")
                 .where(or_any(differs)))
    crossed = crossing(project, compiled, previous, as_of)
    if crossed:
        parts.append(exp.select(col("k", "s"), exp.alias_(zero.copy(), "recompute"), exp.alias_(zero.copy(), "consent"))
                     .from_(table_ref(state_tables.BASE, alias="s")).where(or_any(crossed)))
    union: exp.Expression = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False)
    touched_query = (exp.select(col("k"), exp.alias_(exp.Max(this=col("recompute")), "recompute"),
                                exp.alias_(exp.Max(this=col("consent")), "consent"))
                     .from_(exp.Subquery(this=union, alias=exp.TableAlias(this=ident("t"))))
                     .where(exp.Not(this=exp.Is(this=col("k"), expression=exp.null())))
                     .group_by(col("k")))
    drop(warehouse, state_tables.TOUCHED)
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
    drop(warehouse, state_tables.CHANGED)
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


def _as_stored_key(part: exp.Select) -> exp.Select:
    """A part of the touched customers keyed by an event or consent table (its ``k``, ``recompute`` and
    ``consent``), with each key replaced by the customer's key as the state stores it.

    A source's key may be typed otherwise than the customers' (``7.0`` in a ``DOUBLE`` column, ``'7'`` in a
    ``VARCHAR`` one, for the customer ``7``): the state's rows and membership words are keyed by the customer
    key's own type and text, so the part is matched to them by the equality the plan's joins use. A key of no
    stored customer needs no part: a customer new since the state is touched (and recomputed) as new.
    """
    return (exp.select(col("k", "s"), col("recompute", "p"), col("consent", "p"))
            .from_(part.subquery("p"))
            .join(table_ref(state_tables.BASE, alias="s"), on=exp.EQ(this=col("k", "s"), expression=col("k", "p"))))


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
                value = when(exp.EQ(this=count, expression=zero.copy()), exp.null(),
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
            projections.append(exp.alias_(when(recomputed, fresh_value, value), name, quoted=True))
        elif name in consent_columns:
            fresh_consent = exp.or_(recomputed.copy(),
                                    exp.EQ(this=col("consent", "t"), expression=exp.Literal.number(1)))
            projections.append(exp.alias_(when(fresh_consent, fresh_value, col(name, "s")), name, quoted=True))
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
    drop(warehouse, state_tables.STAGED)
    warehouse.execute(state_tables.create_as(state_tables.STAGED, rows_sql, temporary_tables(warehouse)))


def _channels(compiled: CompiledEvaluation) -> list[str]:
    return [name.split(":", 1)[1] for name in compiled.value_columns if name.startswith("consent:")]


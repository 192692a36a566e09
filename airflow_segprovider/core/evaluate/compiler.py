"""Compile a segments project into SQL, as a sqlglot syntax tree, for one ``as_of``.

The plan evaluates **every segment of the project in one query**:

* one scan per event or order table computes every aggregate any segment needs
  (count, sum, min, max, avg, first, last), each distinct (event, aggregate,
  property, window, filters) once, over the widest window in use;
* one pass over the consent table keeps the latest consent per customer and channel;
* one pass over the customers joins those and computes each segment's flag;
  segments that reference other segments (or yield to higher-priority ones) are
  computed in later projection levels, so the whole dependency graph resolves
  inside the same query.

User values are typed literals (``CAST('2026-01-01' AS DATE)``), identifiers are
quoted, and relative windows become literal bounds computed from ``as_of`` in
Python: the same ``as_of`` gives the same SQL, whenever it runs.

Rules use two-valued logic: a comparison with a missing (NULL) value is false,
so ``not`` of it is true; ``is_null`` selects missing values explicitly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

from sqlglot import exp

from airflow_segprovider.core.evaluate.aggregates import AggregateKey, CompileState
from airflow_segprovider.core.evaluate.columns import (
    admitted_column,
    aggregate_cte,
    arm_column,
    attribute_column,
    bucket_column,
    consent_column,
    count_column,
    member_column,
    rule_column,
)
from airflow_segprovider.core.evaluate.conditions import ConditionSql, predicate_sql
from airflow_segprovider.core.evaluate.customers import customer_relation
from airflow_segprovider.core.project.rules import AttributeCondition, EventCondition, Segment, iter_conditions
from airflow_segprovider.core.project.spec import Project
from airflow_segprovider.core.sql import dialects
from airflow_segprovider.core.sql.expressions import and_all, col, false_if_null, ident, literal, or_any, table_ref
from airflow_segprovider.core.sql.numbers import EXACT_NUMBER, exact_number

if TYPE_CHECKING:
    from airflow_segprovider.core.state.membership import Slot

__all__ = ["EXACT_NUMBER", "KEY", "KEY_TEXT", "AggregateKey", "CompiledEvaluation", "SegmentCompiler"]

KEY = "k"
FLAGS_CTE = "segprovider_flags"
KEY_TEXT = "k_text"  # the key as stored in the membership tables, cast once per customer
AGG_FUNCS: dict[str, type[exp.AggFunc]] = {
    "count": exp.Count, "sum": exp.Sum, "min": exp.Min, "max": exp.Max, "avg": exp.Avg,
    "first": exp.Min, "last": exp.Max,
}


@dataclass
class CompiledEvaluation:
    """The SQL of one evaluation, plus what is needed to read its result.

    :param flags_query: one row per customer: ``k`` and, per segment, ``m__<segment>`` (final
        membership) and, for split segments, ``arm__<segment>`` (named by
        :mod:`~airflow_segprovider.core.evaluate.columns`); with ``explain`` also the observed values
        and each rule node's outcome.
    """

    project: Project
    as_of: dt.datetime
    dialect: str
    flags_query: exp.Select
    aggregates: dict[AggregateKey, str]
    node_columns: dict[tuple[str, int], str] = field(default_factory=dict)
    value_columns: dict[str, str] = field(default_factory=dict)

    def membership_query(self, flags_table: str, segments: Sequence[str] | None = None) -> exp.Expression:
        """Rows ``(segment, customer_key, arm)`` for every member, read from the materialised flags."""
        selects = []
        for name in segments or list(self.project.segments):
            segment = self.project.segments[name]
            arm: exp.Expression = col(arm_column(name)) if segment.split else exp.cast(exp.null(), "VARCHAR")
            selects.append(
                exp.select(
                    exp.alias_(exp.Literal.string(name), "segment", quoted=True),
                    exp.alias_(col(KEY_TEXT), "customer_key", quoted=True),
                    exp.alias_(arm, "arm", quoted=True),
                ).from_(table_ref(flags_table)).where(col(member_column(name)))
            )
        query: exp.Expression = selects[0]
        for select in selects[1:]:
            query = exp.union(query, select, distinct=False)
        return query

    def packed_query(self, flags_table: str, slots: Sequence[Slot]) -> exp.Select:
        """Rows ``(word, customer_key, bits)`` read from the flags in ``flags_table``, laid out as ``slots``.

        One row per customer and word with a bit set: ``bits`` is the sum of the masks of the slots
        the customer holds (a member of the segment, in the slot's arm for a split segment). The
        flags are read once, whatever the number of words: a project of more than 63 slots crosses
        each customer with its words instead of scanning the flags once per word.
        """
        bigint = exp.DataType.build("BIGINT")
        words = sorted({slot.word for slot in slots})
        per_word: dict[int, exp.Expression] = {}
        held_by_word: dict[int, list[exp.Expression]] = {}
        for word in words:
            terms: list[exp.Expression] = []
            for slot in (s for s in slots if s.word == word):
                held: exp.Expression = col(member_column(slot.segment), "f")
                if slot.arm is not None:
                    held = exp.and_(held, exp.EQ(this=col(arm_column(slot.segment), "f"),
                                                 expression=exp.Literal.string(slot.arm)))
                held_by_word.setdefault(word, []).append(held.copy())
                terms.append(exp.Case(ifs=[exp.If(this=held, true=exp.cast(exp.Literal.number(slot.mask), bigint))],
                                      default=exp.cast(exp.Literal.number(0), bigint)))
            bits = terms[0]
            for term in terms[1:]:
                bits = exp.Add(this=bits, expression=term)
            per_word[word] = bits
        customer_key = exp.alias_(col(KEY_TEXT, "f"), "customer_key", quoted=True)
        if len(words) == 1:
            # the customers holding any slot, tested on the flags: a filter on ``bits <> 0`` is
            # inlined by DuckDB, which then computes the sum of every mask twice per customer
            return (exp.select(exp.alias_(exp.Literal.number(words[0]), "word", quoted=True), customer_key,
                               exp.alias_(per_word[words[0]], "bits", quoted=True))
                    .from_(table_ref(flags_table, alias="f")).where(or_any(held_by_word[words[0]])))
        numbers = exp.select(exp.alias_(exp.Literal.number(words[0]), "word", quoted=True))
        for word in words[1:]:
            numbers = exp.union(numbers, exp.select(exp.alias_(exp.Literal.number(word), "word", quoted=True)),
                                distinct=False)
        bits = exp.Case(this=col("word", "n"),
                        ifs=[exp.If(this=exp.Literal.number(w), true=per_word[w]) for w in words])
        packed = (exp.select(exp.alias_(col("word", "n"), "word", quoted=True), customer_key,
                             exp.alias_(bits, "bits", quoted=True))
                  .from_(table_ref(flags_table, alias="f"))
                  .join(exp.Subquery(this=numbers, alias=exp.TableAlias(this=ident("n"))), join_type="CROSS"))
        return (exp.select(col("word"), col("customer_key"), col("bits"))
                .from_(packed.subquery("p"))
                .where(exp.NEQ(this=col("bits"), expression=exp.Literal.number(0))))

    def packed_evaluation(self, slots: Sequence[Slot]) -> exp.Select:
        """The whole evaluation as one query of packed rows (see :meth:`packed_query`): the flags are
        a CTE read once, never materialised as a table of their own."""
        flags = self.flags_query.copy()
        ctes = flags.args.pop("with_", None)
        query = self.packed_query(FLAGS_CTE, slots)
        for cte in (ctes.expressions if ctes else []):
            query = query.with_(ident(cte.alias), as_=cte.this)
        return query.with_(ident(FLAGS_CTE), as_=flags)

    def sql(self, pretty: bool = True) -> str:
        return dialects.to_sql(self.flags_query, self.dialect, pretty=pretty)


class SegmentCompiler:
    """Builds the evaluation query of a project for one ``as_of`` and one dialect.

    :param project: a validated project.
    :param dialect: ``duckdb`` (default), ``postgres``, ``snowflake`` or ``bigquery``.
    :param schema: schema holding the source tables when their names are unqualified.
    """

    def __init__(self, project: Project, dialect: str = "duckdb", schema: str | None = None) -> None:
        self.project = project
        self.dialect = dialects.check_dialect(dialect)
        self.schema = schema

    def compile(self, as_of: dt.datetime, *, segments: Sequence[str] | None = None,
                customers: Sequence[str | int] | None = None, explain: bool = False,
                admitted: bool = False) -> CompiledEvaluation:
        """Compile the evaluation of ``segments`` (default: all) and everything they depend on.

        :param as_of: evaluation time, naive UTC; every relative window is computed from it.
        :param customers: restrict to these customer keys (``explain``), each typed as the key columns are
            (an ``int`` for an integer key): they are compared with the columns as stored.
        :param explain: also return every rule node's outcome and the observed values.
        :param admitted: also return, for each segment below others in a priority group, whether its rule and
            consent admit the customer before the group (``p__<segment>``, what the insights count).
        """
        if as_of.tzinfo is not None:
            as_of = as_of.astimezone(dt.timezone.utc).replace(tzinfo=None)
        names = self._closure(segments or list(self.project.segments))
        state = CompileState(as_of=as_of)
        for name in names:
            for node in iter_conditions(self.project.segments[name].rule):
                if isinstance(node, EventCondition):
                    state.aggregate_column(node)
                elif isinstance(node, AttributeCondition):
                    state.attributes.add(node.attribute)
        ctes: list[tuple[str, exp.Select]] = []
        agg_ctes: dict[str, str] = {}  # CTE name -> the event source it aggregates
        for source, keys in state.aggregates_by_table(self.project).items():
            agg_ctes[aggregate_cte(source)] = source
            ctes.append((aggregate_cte(source), self._aggregate_cte(keys, state, customers)))
        channels = sorted({c for n in names for c in self.project.segments[n].suppress_channels})
        if channels:
            ctes.append(("consent_latest", self._consent_cte(channels, as_of, customers)))
        ctes.append(("base", self._base_cte(state, agg_ctes, channels, customers, explain)))
        previous = "base"
        node_columns: dict[tuple[str, int], str] = {}
        pending_arms: list[Segment] = []
        for level, level_names in enumerate(self._levels(names)):
            projections: list[exp.Expression] = [exp.Star()]
            for segment in pending_arms:
                projections.extend(self._arm_columns(segment))
            pending_arms = []
            for name in level_names:
                segment = self.project.segments[name]
                projections.extend(self._segment_columns(segment, state, explain, node_columns, admitted))
                if segment.split:
                    pending_arms.append(segment)
            cte_name = f"level_{level}"
            ctes.append((cte_name, exp.select(*projections).from_(table_ref(previous))))
            previous = cte_name
        if pending_arms:
            ctes.append(("arms", exp.select(exp.Star(), *[c for s in pending_arms for c in self._arm_columns(s)])
                         .from_(table_ref(previous))))
            previous = "arms"
        outputs: list[exp.Expression] = [
            col(KEY), exp.alias_(exp.cast(col(KEY), exp.DataType.build("VARCHAR")), KEY_TEXT, quoted=True)]
        for name in names:
            outputs.append(col(member_column(name)))
            if self.project.segments[name].split:
                outputs.append(col(arm_column(name)))
            if admitted and self.project.segments[name].higher_priority:
                outputs.append(col(admitted_column(name)))
        if explain:
            outputs = [exp.Star()]
        query = exp.select(*outputs).from_(table_ref(previous))
        for cte_name, cte_query in ctes:
            query = query.with_(ident(cte_name), as_=cte_query)
        value_columns = {**{f"attribute:{a}": attribute_column(a) for a in state.attributes},
                         **{f"consent:{c}": consent_column(c) for c in channels}}
        return CompiledEvaluation(self.project, as_of, self.dialect, query, dict(state.aggregates),
                                  node_columns, value_columns)

    def _closure(self, names: Sequence[str]) -> list[str]:
        wanted: set[str] = set()
        stack = list(names)
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                stack.extend(self.project.dependencies(name))
        return [n for n in self.project.evaluation_order() if n in wanted]

    def _levels(self, names: list[str]) -> list[list[str]]:
        level: dict[str, int] = {}
        for name in names:  # evaluation order: dependencies come first
            level[name] = 1 + max((level[d] for d in self.project.dependencies(name)), default=-1)
        out: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
        for name in names:
            out[level[name]].append(name)
        return out

    def _customer_filter(self, column: exp.Expression, customers: Sequence[str | int] | None) -> exp.Expression | None:
        if customers is None:
            return None
        # the column as stored, against keys typed as it is (explain passes an integer for an integer key):
        # a cast of the column would keep the warehouse from pruning the tables by key
        return exp.In(this=column, expressions=[literal(c) for c in customers])

    def _aggregate_cte(self, keys: list[tuple[AggregateKey, str]], state: CompileState,
                       customers: Sequence[str | int] | None) -> exp.Select:
        sources = [self.project.model.events[key.source] for key, _ in keys]
        first = sources[0]
        ts = dialects.wall_clock(self.dialect, col(first.timestamp), "timestamp")
        projections: list[exp.Expression] = [exp.alias_(col(first.customer_key), KEY, quoted=True)]
        for (key, column), source in zip(keys, sources):
            conditions: list[exp.Expression] = []  # the event type is filtered once, in WHERE
            if key.within is not None:
                conditions.append(exp.GTE(this=ts.copy(), expression=literal(state.as_of - key.within)))
            for flt in key.where:
                value_type = source.properties[flt.property]
                conditions.append(false_if_null(predicate_sql(
                    self.dialect, self._read(col(flt.property), value_type), flt.predicate,
                    value_type, state.as_of)))
            arg = None if key.aggregate == "count" else (
                ts.copy() if key.property is None else self._read(col(key.property), "number"))
            # exact decimals (see core.sql.numbers): a floating-point sum depends on the (parallel) order
            # of its terms, and a customer right at a threshold would flip between runs. An average is
            # kept as its sum and count, which conditions compare without dividing.
            func = exp.Sum if key.aggregate == "avg" else AGG_FUNCS[key.aggregate]
            projections.append(exp.alias_(self._aggregate(func, arg, conditions), column, quoted=True))
            if key.aggregate == "avg":
                projections.append(exp.alias_(self._aggregate(exp.Count, arg, conditions), count_column(column),
                                              quoted=True))
        where: list[exp.Expression] = [exp.LTE(this=ts.copy(), expression=literal(state.as_of))]
        if all(key.within is not None for key, _ in keys):
            widest = max(key.within for key, _ in keys)  # type: ignore[type-var]
            where.append(exp.GTE(this=ts.copy(), expression=literal(state.as_of - widest)))
        if first.type_column is not None:
            where.append(exp.EQ(this=col(first.type_column), expression=literal(first.type_value)))
        only = self._customer_filter(col(first.customer_key), customers)
        if only is not None:
            where.append(only)
        return (exp.select(*projections).from_(table_ref(first.table, self.schema)).where(and_all(where))
                .group_by(col(first.customer_key)))

    def _aggregate(self, func: type[exp.AggFunc], arg: exp.Expression | None,
                   conditions: list[exp.Expression]) -> exp.Expression:
        if conditions:
            return dialects.filtered_aggregate(self.dialect, func, None if arg is None else arg.copy(),
                                               and_all([c.copy() for c in conditions]))
        return func(this=exp.Star() if arg is None else arg.copy())

    def _read(self, column: exp.Expression, value_type: str) -> exp.Expression:
        """A source column as rules see it: timestamps as UTC wall-clock time, numbers as exact decimals
        (out-of-range values missing)."""
        if value_type == "number":
            return exact_number(column)
        return dialects.wall_clock(self.dialect, column, value_type)

    def _consent_cte(self, channels: list[str], as_of: dt.datetime,
                     customers: Sequence[str | int] | None) -> exp.Select:
        consent = self.project.model.consent
        assert consent is not None  # validation requires a consent model for channels
        updated_at = dialects.wall_clock(self.dialect, col(consent.updated_at_column), "timestamp")
        ranked_where = [exp.LTE(this=updated_at, expression=literal(as_of)),
                        exp.In(this=col(consent.channel_column), expressions=[literal(c) for c in channels])]
        only = self._customer_filter(col(consent.customer_key), customers)
        if only is not None:
            ranked_where.append(only)
        # latest row per (customer, channel); on a tie the opt-out wins, the safe reading
        rank = exp.Window(
            this=exp.RowNumber(),
            partition_by=[col(consent.customer_key), col(consent.channel_column)],
            order=exp.Order(expressions=[exp.Ordered(this=updated_at.copy(), desc=True),
                                         exp.Ordered(this=col(consent.opted_in_column), desc=False)]),
        )
        ranked = exp.select(
            exp.alias_(col(consent.customer_key), KEY, quoted=True),
            exp.alias_(col(consent.channel_column), "channel", quoted=True),
            exp.alias_(col(consent.opted_in_column), "opted_in", quoted=True),
            exp.alias_(rank, "rn", quoted=True),
        ).from_(table_ref(consent.table, self.schema)).where(and_all(ranked_where))
        pivots: list[exp.Expression] = [col(KEY)]
        for channel in channels:
            when = exp.Case(ifs=[exp.If(this=exp.EQ(this=col("channel"), expression=literal(channel)),
                                        true=exp.cast(col("opted_in"), exp.DataType.build("INT")))])
            pivots.append(exp.alias_(exp.Max(this=when), consent_column(channel), quoted=True))
        return (exp.select(*pivots).from_(exp.Subquery(this=ranked, alias=exp.TableAlias(this=ident("ranked"))))
                .where(exp.EQ(this=col("rn"), expression=exp.Literal.number(1))).group_by(col(KEY)))

    def _base_cte(self, state: CompileState, agg_ctes: dict[str, str], channels: list[str],
                  customers: Sequence[str] | None, explain: bool) -> exp.Select:
        customer = self.project.model.customer
        projections: list[exp.Expression] = [exp.alias_(col(customer.key, "c"), KEY, quoted=True)]
        for name in sorted(state.attributes):
            attribute = customer.attributes[name]
            projections.append(exp.alias_(self._read(col(attribute.column, "c"), attribute.type),
                                          attribute_column(name), quoted=True))
        for cte, source in agg_ctes.items():
            for key, column in state.aggregates.items():
                if key.source == source:
                    value: exp.Expression = col(column, cte)
                    if key.aggregate in ("count", "sum"):  # no occurrence counts as zero
                        value = exp.Coalesce(this=value, expressions=[exp.Literal.number(0)])
                    projections.append(exp.alias_(value, column, quoted=True))
                    if key.aggregate == "avg":
                        projections.append(exp.alias_(col(count_column(column), cte), count_column(column),
                                                      quoted=True))
        for channel in channels:
            projections.append(exp.alias_(col(consent_column(channel), "consent_latest"), consent_column(channel),
                                          quoted=True))
        query = exp.select(*projections).from_(customer_relation(self.project, self.schema, state.as_of))
        for cte in [*agg_ctes, *(["consent_latest"] if channels else [])]:
            query = query.join(table_ref(cte), on=exp.EQ(this=col(KEY, cte), expression=col(customer.key, "c")),
                               join_type="LEFT")
        only = self._customer_filter(col(customer.key, "c"), customers)
        return query.where(only) if only is not None else query

    def _segment_columns(self, segment: Segment, state: CompileState, explain: bool,
                         node_columns: dict[tuple[str, int], str], admitted: bool = False) -> list[exp.Expression]:
        name = segment.name
        rule = ConditionSql(self.project, self.dialect, state, name, node_columns if explain else None)
        raw = rule.build(segment.rule)
        parts = [exp.Paren(this=raw)]
        consent_policies = self.project.model.consent.channels if self.project.model.consent else {}
        for channel in segment.suppress_channels:
            default = exp.Literal.number(0 if consent_policies[channel].require_opt_in else 1)
            parts.append(exp.EQ(this=exp.Coalesce(this=col(consent_column(channel)), expressions=[default]),
                                expression=exp.Literal.number(1)))
        admits = and_all([part.copy() for part in parts]) if admitted and segment.higher_priority else None
        for higher in segment.higher_priority:
            parts.append(exp.Not(this=col(member_column(higher))))
        columns: list[exp.Expression] = []
        if admits is not None:
            columns.append(exp.alias_(admits, admitted_column(name), quoted=True))
        if explain:
            columns.extend(rule.explained)
            columns.append(exp.alias_(raw.copy(), rule_column(name), quoted=True))
        columns.append(exp.alias_(and_all(parts), member_column(name), quoted=True))
        if segment.split:
            # hashed once, and only for members: the arm is computed from the bucket in the next level
            bucket = dialects.hash_bucket(self.dialect, dialects.split_input(segment.split.salt, col(KEY)))
            member = and_all(parts)
            columns.append(exp.alias_(exp.Case(ifs=[exp.If(this=member.copy(), true=bucket)]) if not explain
                                      else bucket, bucket_column(name), quoted=True))
        return columns

    def _arm_columns(self, segment: Segment) -> list[exp.Expression]:
        """``arm__<segment>`` from the bucket computed one level earlier."""
        assert segment.split is not None
        bucket = col(bucket_column(segment.name))
        ifs = [exp.If(this=exp.LT(this=bucket.copy(), expression=exp.Literal.number(high)),
                      true=exp.Literal.string(arm)) for arm, _low, high in segment.split.bucket_bounds()]
        return [exp.alias_(exp.Case(ifs=ifs), arm_column(segment.name), quoted=True)]


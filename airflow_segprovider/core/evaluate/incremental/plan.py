"""The compiled plan's pieces incremental runs reuse: its ``base`` relation, restricted or read from the state."""


from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Sequence

from sqlglot import exp

from airflow_segprovider.core.sql.expressions import col, ident, table_ref
from airflow_segprovider.core.state import incremental as state_tables

if TYPE_CHECKING:
    from airflow_segprovider.core.evaluate.aggregates import AggregateKey
    from airflow_segprovider.core.evaluate.compiler import CompiledEvaluation
    from airflow_segprovider.core.project.spec import Project

def cte_body(query: exp.Select, name: str) -> exp.Select:
    for cte in query.ctes:
        if cte.alias == name:
            return cte.this
    raise KeyError(name)


def with_ctes(query: exp.Select, ctes: Sequence[tuple[str, exp.Expression]]) -> exp.Select:
    for name, body in ctes:
        query = query.with_(ident(name), as_=body, copy=False)  # the caller owns query: no copy per CTE
    return query


#: The touched customers' alias inside a restriction's subquery.
TOUCHED_ALIAS = "touched_t"


def restrict(select: exp.Select, column: exp.Expression, keys: exp.Select) -> exp.Select:
    """``select`` with ``EXISTS (keys whose k = column)`` added to its WHERE.

    An equality, as the plan's own joins compare a source's key with the customers' key: ``IN`` would refuse
    two key types a join compares (an event key typed ``VARCHAR`` against an ``INTEGER`` customer key: "an
    explicit cast is required" on DuckDB), and a cast to text would miss ``7.0`` against ``7``.
    """
    match = keys.copy()
    match.set("expressions", [exp.Literal.number(1)])
    match = match.where(exp.EQ(this=col("k", TOUCHED_ALIAS), expression=column), copy=False)
    return select.where(exp.Exists(this=match), copy=False)


def touched_keys(condition: str | None = None) -> exp.Select:
    """The touched customers' keys (``condition`` on their ``recompute``/``consent`` columns)."""
    query = exp.select(col("k", TOUCHED_ALIAS)).from_(table_ref(state_tables.TOUCHED, alias=TOUCHED_ALIAS))
    return query.where(condition) if condition else query


def _table_name(table: str) -> str:
    # a table read without an alias is qualified by its own name, without its schema
    return table.split(".")[-1]


def base_query(compiled: CompiledEvaluation, keys_for: dict[str, exp.Select] | None = None) -> exp.Select:
    """The plan's ``base`` relation as one query (its aggregate and consent CTEs attached).

    :param keys_for: restrict CTEs by name (``base``, ``agg__*``, ``consent_latest``) to customer keys.
    """
    project = compiled.project
    keys_for = keys_for or {}
    ctes: list[tuple[str, exp.Expression]] = []
    for cte in compiled.flags_query.ctes:
        if cte.alias.startswith("level_") or cte.alias == "arms":
            continue
        body = cte.this.copy()
        if cte.alias == "consent_latest" and cte.alias in keys_for:
            # restricted before its window function ranks the answers
            ranked = body.args["from_" if "from_" in body.args else "from"].this.this
            assert project.model.consent is not None
            consent = project.model.consent
            restrict(ranked, col(consent.customer_key, _table_name(consent.table)), keys_for[cte.alias])
        elif cte.alias in keys_for:
            body = restrict(body, _key_column(project, compiled, cte.alias), keys_for[cte.alias])
        ctes.append((cte.alias, body))
    return with_ctes(exp.select(exp.Star()).from_(table_ref("base")), ctes)


def _key_column(project: Project, compiled: CompiledEvaluation, cte: str) -> exp.Expression:
    if cte == "base":
        return col(project.model.customer.key, "c")
    source = next(project.model.events[key.source] for key in compiled.aggregates
                  if _agg_cte_name(key) == cte)
    return col(source.customer_key, _table_name(source.table))


def _agg_cte_name(key: AggregateKey) -> str:
    from airflow_segprovider.core.evaluate.columns import aggregate_cte

    return aggregate_cte(key.source)


def flags_from_state(compiled: CompiledEvaluation, touched_only: bool, table: str = state_tables.BASE,
                     ) -> CompiledEvaluation:
    """The plan with its ``base`` read from the state table (all customers, or the touched ones), or from
    another table of the same columns (``table``: an incremental run's staged rows)."""
    query = compiled.flags_query.copy()
    ctes = query.args.pop("with_", None)
    base = exp.select(exp.Star()).from_(table_ref(table))
    if touched_only:
        base = restrict(base, col("k", _table_name(table)), touched_keys())
    kept = [(cte.alias, base if cte.alias == "base" else cte.this)
            for cte in (ctes.expressions if ctes else [])
            if cte.alias == "base" or cte.alias.startswith("level_") or cte.alias == "arms"]
    return dataclasses.replace(compiled, flags_query=with_ctes(query, kept))



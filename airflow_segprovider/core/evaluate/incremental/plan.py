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


def restrict(select: exp.Select, column: exp.Expression, keys: exp.Select) -> exp.Select:
    """``select`` with ``column IN (keys)`` added to its WHERE."""
    return select.where(exp.In(this=column, query=keys.subquery()), copy=False)


def touched_keys(condition: str | None = None) -> exp.Select:
    query = exp.select(col("k")).from_(table_ref(state_tables.TOUCHED))
    return query.where(condition) if condition else query


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
            restrict(ranked, col(project.model.consent.customer_key), keys_for[cte.alias])
        elif cte.alias in keys_for:
            body = restrict(body, _key_column(project, compiled, cte.alias), keys_for[cte.alias])
        ctes.append((cte.alias, body))
    return with_ctes(exp.select(exp.Star()).from_(table_ref("base")), ctes)


def _key_column(project: Project, compiled: CompiledEvaluation, cte: str) -> exp.Expression:
    if cte == "base":
        return col(project.model.customer.key, "c")
    source = next(project.model.events[key.source] for key in compiled.aggregates
                  if _agg_cte_name(key) == cte)
    return col(source.customer_key)


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
        base = restrict(base, col("k"), touched_keys())
    kept = [(cte.alias, base if cte.alias == "base" else cte.this)
            for cte in (ctes.expressions if ctes else [])
            if cte.alias == "base" or cte.alias.startswith("level_") or cte.alias == "arms"]
    return dataclasses.replace(compiled, flags_query=with_ctes(query, kept))



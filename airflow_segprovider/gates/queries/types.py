"""The ``types`` gate's queries: which customer attributes to check, and a sample of their values."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow_segprovider.core.evaluate.customers import customer_relation_sql
from airflow_segprovider.core.project.rules import AttributeCondition, iter_conditions
from airflow_segprovider.core.sql.dialects import quote_identifier as quote
from airflow_segprovider.core.sql.dialects import render
from airflow_segprovider.gates.queries.common import GateConfigError

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Attribute, Project, Sync

DEFAULT_SAMPLE_ROWS = 10_000
SAMPLE_SEED = 42


def type_attributes(project: Project, syncs: Sequence[Sync] | None = None) -> list[Attribute]:
    """Customer attributes whose type matters: those any segment's rule reads, and those the syncs send."""
    model = project.model
    names: list[str] = []
    for segment in project.segments.values():
        for node in iter_conditions(segment.rule):
            if isinstance(node, AttributeCondition) and node.attribute not in names:
                names.append(node.attribute)
    for sync in project.syncs if syncs is None else syncs:
        destination = project.destinations[sync.destination]
        for name in (destination.identity, *destination.field_mapping.values()):
            if name not in names:
                names.append(name)
    return [model.customer.attributes[name] for name in names]


def types_sql(project: Project, columns: Sequence[str], *, sample_rows: int = DEFAULT_SAMPLE_ROWS,
              dialect: str = "duckdb", schema: str | None = None, as_of: dt.datetime | None = None) -> str:
    """A sample of at most ``sample_rows`` customer rows, ``columns`` only, with the values valid at ``as_of``
    (None: the current values).

    DuckDB and Snowflake draw a uniform sample; elsewhere the first rows are taken.
    """
    if not columns:
        raise GateConfigError("the types gate has no customer attribute to check: no segment reads one and "
                              "no destination sends one")
    rows = int(sample_rows)
    if rows <= 0:
        raise GateConfigError(f"sample_rows must be positive, got {sample_rows!r}")
    ref = customer_relation_sql(project, schema, as_of)
    select = f"SELECT {', '.join(quote(c) for c in columns)} FROM {ref}"
    if dialect == "duckdb":
        return f"{select} USING SAMPLE reservoir({rows} ROWS) REPEATABLE ({SAMPLE_SEED})"
    if dialect == "snowflake":
        return render(select, dialect) + f" SAMPLE ({rows} ROWS)"
    return render(f"{select} LIMIT {rows}", dialect)

"""SQL fragments of the typing engine: quoted names, and the casts that type a source's values.

Every load reads and types its rows in DuckDB (see :mod:`.loader`), so these speak
DuckDB's dialect. A value that does not cast becomes NULL here; the load tells it
from a value that was empty and quarantines it.
"""

from __future__ import annotations


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified(name: str, schema: str | None) -> tuple[str, str]:
    """``(SQL reference, dotted name for Warehouse.columns)`` of a table name, qualified by ``schema``."""
    parts = name.split(".")
    if len(parts) == 1 and schema:
        parts = [schema, name]
    return ".".join(quote(p) for p in parts), ".".join(parts)


def engine_type(target_type: str, dialect: str) -> str:
    """A type of the target warehouse (as ``Warehouse.columns`` reports it) as the DuckDB type to cast to."""
    if dialect == "duckdb":
        return target_type
    from sqlglot import exp

    try:
        return exp.DataType.build(target_type, dialect=dialect).sql("duckdb")
    except Exception:  # a type sqlglot does not know: load it as text, the target converts on insert
        return "VARCHAR"


def is_text(sql_type: str) -> bool:
    return sql_type.upper().startswith(("VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR"))


def typed(raw: str, raw_type: str, target: str) -> str:
    """SQL casting ``raw`` to ``target``: NULL when a non-empty value does not cast (the caller quarantines it)."""
    if is_text(target):
        return raw if is_text(raw_type) else f"CAST({raw} AS VARCHAR)"
    value = f"NULLIF(trim({raw}), '')" if is_text(raw_type) else raw
    if target == "TIMESTAMP" and (is_text(raw_type) or "TIME ZONE" in raw_type.upper()):
        # text with an offset is converted to UTC (the session time zone), text without one is read as UTC
        return f"TRY_CAST(TRY_CAST({value} AS TIMESTAMPTZ) AS TIMESTAMP)"
    cast = f"TRY_CAST({value} AS {target})"
    if target == "DOUBLE":
        return f"CASE WHEN isfinite({cast}) THEN {cast} END"
    return cast

"""sqlglot building blocks the compiler writes every query with: quoted names, typed literals, logic.

Every identifier is quoted and every user value becomes a typed literal
(``CAST('2026-01-01' AS DATE)``), so the syntax tree means the same in every
dialect; what differs between dialects lives in :mod:`~airflow_segprovider.core.sql.dialects`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Sequence

from sqlglot import exp

#: The longest generated identifier, in bytes: PostgreSQL's limit (NAMEDATALEN - 1), the smallest of the
#: supported warehouses (Snowflake 255 characters, BigQuery column names 300, DuckDB none).
MAX_IDENTIFIER_BYTES = 63
#: Generated names up to this length are used as written; longer ones are cut and get a hash suffix
#: (``_`` and 10 hex digits) that brings them to exactly MAX_IDENTIFIER_BYTES, so a cut name never equals
#: an uncut one, and two cut names are equal only if their full names share a 40-bit hash too.
_KEPT_BYTES = MAX_IDENTIFIER_BYTES - 11


def generated_name(prefix: str, name: str, suffix: str = "") -> str:
    """``prefix + name + suffix`` when it fits in 52 bytes; else its first 52 bytes, ``_`` and a hash of the
    whole: unique per full name, stable across runs and dialects, and at most 63 bytes."""
    full = f"{prefix}{name}{suffix}"
    encoded = full.encode("utf-8")
    if len(encoded) <= _KEPT_BYTES:
        return full
    head = encoded[:_KEPT_BYTES].decode("utf-8", errors="ignore")
    digest = hashlib.sha256(encoded).hexdigest()[:10]
    return f"{head}_{digest}"


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=ident(name), table=ident(table) if table else None)


def table_ref(name: str, schema: str | None = None, alias: str | None = None) -> exp.Table:
    parts = name.split(".")
    table = exp.Table(this=ident(parts[-1]), db=ident(parts[-2]) if len(parts) > 1 else (ident(schema) if schema else None),
                      catalog=ident(parts[-3]) if len(parts) > 2 else None)
    if alias:
        table.set("alias", exp.TableAlias(this=ident(alias)))
    return table


def literal(value: Any) -> exp.Expression:
    """A typed SQL literal for a parsed spec value."""
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(repr(value) if isinstance(value, float) else str(value))
    if isinstance(value, dt.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.build("TIMESTAMP"))
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))
    if isinstance(value, str):
        return exp.Literal.string(value)
    raise TypeError(f"no SQL literal for {value!r}")


def false_if_null(expression: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=exp.Paren(this=expression), expressions=[exp.false()])


def and_all(parts: Sequence[exp.Expression]) -> exp.Expression:
    parts = list(parts)
    if not parts:
        return exp.true()
    result = parts[0]
    for part in parts[1:]:
        result = exp.And(this=result, expression=part)
    return result


def or_any(parts: Sequence[exp.Expression]) -> exp.Expression:
    result = parts[0]
    for part in parts[1:]:
        result = exp.Or(this=result, expression=part)
    return result

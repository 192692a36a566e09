"""Everything that differs between warehouse dialects, in one place.

The compiler builds one sqlglot syntax tree and asks this module only for the
few constructs that sqlglot cannot transpile with the same meaning everywhere:
a stable hash bucket for split arms, partial regex matching, and filtered
aggregates. Time windows need nothing here: bounds are computed from ``as_of``
in Python and emitted as typed literals, so no dialect does date arithmetic.
"""

from __future__ import annotations

import hashlib

import sqlglot
from sqlglot import exp

SUPPORTED_DIALECTS = ("duckdb", "postgres", "snowflake", "bigquery")
HASH_BUCKETS = 10_000

# First 32 bits of MD5(text) as an unsigned integer, modulo the bucket count.
_HASH_BUCKET_SQL = {
    "duckdb": "CAST('0x' || SUBSTR(MD5(__input__), 1, 8) AS BIGINT) % 10000",
    "postgres": "CAST(CAST(CAST('x' || SUBSTR(MD5(__input__), 1, 8) AS BIT(32)) AS BIGINT) & 4294967295 AS BIGINT) % 10000",
    "snowflake": "TO_NUMBER(SUBSTR(MD5(__input__), 1, 8), 'XXXXXXXX') % 10000",
    "bigquery": "MOD(CAST(CONCAT('0x', SUBSTR(TO_HEX(MD5(__input__)), 1, 8)) AS INT64), 10000)",
}


def check_dialect(dialect: str) -> str:
    if dialect not in SUPPORTED_DIALECTS:
        raise ValueError(f"unsupported warehouse dialect {dialect!r}; supported: {', '.join(SUPPORTED_DIALECTS)}")
    return dialect


def python_hash_bucket(text: str) -> int:
    """The bucket the SQL of every dialect computes for ``text`` (reference and tests use it)."""
    return int(hashlib.md5(text.encode("utf-8")).hexdigest()[:8], 16) % HASH_BUCKETS


def split_input(salt: str, key: exp.Expression) -> exp.Expression:
    """``salt || ':' || CAST(key AS VARCHAR)``: the text whose hash places a customer in an arm."""
    return exp.DPipe(
        this=exp.Literal.string(f"{salt}:"),
        expression=exp.cast(key, exp.DataType.build("VARCHAR")),
        safe=True,
    )


def hash_bucket(dialect: str, text: exp.Expression) -> exp.Expression:
    template = sqlglot.parse_one(_HASH_BUCKET_SQL[dialect], read=dialect)
    return template.transform(
        lambda node: text.copy() if isinstance(node, exp.Column) and node.name == "__input__" else node
    )


def regex_search(dialect: str, value: exp.Expression, pattern: str) -> exp.Expression:
    """True where ``pattern`` matches anywhere in ``value`` (Python ``re.search`` semantics)."""
    literal = exp.Literal.string(pattern)
    if dialect == "snowflake":  # Snowflake's REGEXP_LIKE anchors the pattern at both ends
        return exp.GT(this=exp.Anonymous(this="REGEXP_INSTR", expressions=[value, literal]),
                      expression=exp.Literal.number(0))
    return exp.RegexpLike(this=value, expression=literal)


def filtered_aggregate(dialect: str, func: type[exp.AggFunc], arg: exp.Expression | None,
                       condition: exp.Expression) -> exp.Expression:
    """``FUNC(arg) FILTER (WHERE condition)`` where the dialect has it, else ``FUNC(CASE WHEN ...)``.

    :param arg: the aggregated value; None means ``COUNT(*)``.
    """
    if dialect in ("duckdb", "postgres"):
        inner = func(this=exp.Star() if arg is None else arg)
        return exp.Filter(this=inner, expression=exp.Where(this=condition))
    value = exp.Literal.number(1) if arg is None else arg
    return func(this=exp.Case(ifs=[exp.If(this=condition, true=value)]))


def quote_identifier(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def quoted_table(name: str, schema: str | None) -> str:
    """``"schema"."table"`` as SQL text for the core's own statements (a qualified name keeps its schema)."""
    parts = name.split(".")
    if len(parts) == 1 and schema:
        parts = [schema, name]
    return ".".join(quote_identifier(part) for part in parts)


def render(duckdb_sql: str, dialect: str) -> str:
    """The core's own statements are written once, in DuckDB's dialect, and transpiled for the others."""
    if dialect == "duckdb":
        return duckdb_sql
    return ";\n".join(sqlglot.transpile(duckdb_sql, read="duckdb", write=dialect))

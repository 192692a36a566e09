"""Everything that differs between warehouse dialects, in one place.

The compiler builds one sqlglot syntax tree and asks this module only for the
few constructs that sqlglot cannot transpile with the same meaning everywhere:
a stable hash bucket for split arms, partial regex matching, and filtered
aggregates. Time windows need nothing here: bounds are computed from ``as_of``
in Python and emitted as typed literals, so no dialect does date arithmetic.

The core's own statements (the state tables, the adapters' catalog queries) are SQL
text: the literal helpers here are the one place a Python value becomes SQL text,
portable (:func:`sql_literal`, :func:`text_literal`, :func:`ts_literal`) or in the
escaping rules of one warehouse (:func:`snowflake_literal`, :func:`bigquery_literal`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import re
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # sqlglot loads in the functions that build or render SQL: the literal and quoting
    from sqlglot import exp  # helpers, and the state modules that use them, stay cheap to import at DAG parse

SUPPORTED_DIALECTS = ("duckdb", "postgres", "snowflake", "bigquery")
HASH_BUCKETS = 10_000

# First 32 bits of MD5(text) as an unsigned integer, modulo the bucket count.
_HASH_BUCKET_SQL = {
    "duckdb": "CAST('0x' || SUBSTR(MD5(__input__), 1, 8) AS BIGINT) % 10000",
    "postgres": "CAST(CAST(CAST('x' || SUBSTR(MD5(__input__), 1, 8) AS BIT(32)) AS BIGINT) & 4294967295 AS BIGINT) % 10000",
    # hex digit by digit: TO_NUMBER(.., 'XXXXXXXX') means the same on Snowflake, but fakesnow (the
    # emulator the differential tests run on) lacks format models, and the tested SQL must be the shipped SQL
    "snowflake": "(" + " + ".join(
        f"(POSITION(SUBSTR(MD5(__input__), {i + 1}, 1) IN '0123456789abcdef') - 1) * {16 ** (7 - i)}"
        for i in range(8)) + ") % 10000",
    "bigquery": "MOD(CAST(CONCAT('0x', SUBSTR(TO_HEX(MD5(__input__)), 1, 8)) AS INT64), 10000)",
}


# An order-independent checksum of a group's rows over some columns (__columns__: their list), as text: the
# incremental decision compares it per ingest load. A SUM of 64-bit row hashes, not an XOR: two equal rows
# do not cancel out (a pair of duplicate events re-keyed together still changes it), and a sum in a wider
# type never overflows. Each dialect's row hash takes NULLs deterministically.
_LOAD_CHECKSUM_SQL = {
    # HASH(v, ...) is a UBIGINT of its arguments, NULL included; SUM of UBIGINT is a HUGEINT
    # (https://duckdb.org/docs/stable/sql/functions/utility#hashvalue, .../sql/functions/aggregates#sumarg)
    "duckdb": "CAST(SUM(HASH(__columns__)) AS VARCHAR)",
    # the row hashed field by field with each type's own 64-bit hash by hash_record_extended(record, seed), the
    # record type's "extended" hash support function (PostgreSQL 14+;
    # https://www.postgresql.org/docs/current/xindex.html, "Index Method Support Routines"; not in the function
    # tables, so a major upgrade may change it: one full run then). That hash is linear in its fields
    # (31 * h(a) + h(b)) and hashes NULL as 0, as it does a float 0.0: summed as is, two rows swapping a value
    # or a 0.0 written for a NULL would keep the sum. So the fields' NULL-ness joins the row as one bit mask, and
    # the row's hash is mixed by int8's own hash (hashint8extended) before the sum. At 2M rows of 6 columns on a
    # quiet machine: the count alone 0.12 s, this 0.7-1.0 s, a boolean field per column instead of the mask
    # 1.4 s, the row's text hashed (hashtextextended(CAST(ROW(...) AS TEXT), 0)) 1.7 s.
    # SUM of BIGINT is NUMERIC (https://www.postgresql.org/docs/current/functions-aggregate.html)
    "postgres": "CAST(SUM(HASHINT8EXTENDED(HASH_RECORD_EXTENDED(ROW(__columns__, __nullmask__), 0), 0)) AS VARCHAR)",
    # HASH(expr, ...) is a signed 64-bit NUMBER(19, 0), NULLs hashed too
    # (https://docs.snowflake.com/en/sql-reference/functions/hash); SUM of NUMBER(19, 0) is NUMBER(38, 0)
    "snowflake": "CAST(SUM(HASH(__columns__)) AS VARCHAR)",
    # FARM_FINGERPRINT would be BigQuery's fast 64-bit hash, but the BigQuery SQL the tests run on DuckDB
    # (sqlglot has no DuckDB FARM_FINGERPRINT): the first 60 bits of the MD5 of the row as JSON (NULL as
    # null), summed as BIGNUMERIC, never an INT64 SUM that could overflow
    # (https://cloud.google.com/bigquery/docs/reference/standard-sql/json_functions#to_json_string,
    # .../hash_functions#md5, .../aggregate_functions#sum)
    "bigquery": "CAST(SUM(CAST(CAST(CONCAT('0x', SUBSTR(TO_HEX(MD5(TO_JSON_STRING(STRUCT(__columns__)))), 1, 15)) "
                "AS INT64) AS BIGNUMERIC)) AS STRING)",
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
    from sqlglot import exp

    return exp.DPipe(
        this=exp.Literal.string(f"{salt}:"),
        expression=exp.cast(key, exp.DataType.build("VARCHAR")),
        safe=True,
    )


def hash_bucket(dialect: str, text: exp.Expression) -> exp.Expression:
    import sqlglot
    from sqlglot import exp

    template = sqlglot.parse_one(_HASH_BUCKET_SQL[dialect], read=dialect)
    return template.transform(
        lambda node: text.copy() if isinstance(node, exp.Column) and node.name == "__input__" else node
    )


def load_checksum(dialect: str, columns: Sequence[exp.Expression]) -> exp.Expression:
    """An aggregate: the order-independent checksum (text) of a group's rows over ``columns``."""
    import sqlglot
    from sqlglot import exp

    template = sqlglot.parse_one(
        _LOAD_CHECKSUM_SQL[dialect].replace("__columns__", ", ".join(f"__c{i}__" for i in range(len(columns))))
        .replace("__nullmask__", ", ".join(  # one BIGINT of bits per 62 columns
            "CAST(" + " + ".join(f"{1 << (i % 62)} * CAST(__c{i}__ IS NULL AS INT)" for i in chunk) + " AS BIGINT)"
            for chunk in (range(start, min(start + 62, len(columns))) for start in range(0, len(columns), 62)))),
        read=dialect)
    by_name = {f"__c{i}__": column for i, column in enumerate(columns)}
    return template.transform(
        lambda node: by_name[node.name].copy() if isinstance(node, exp.Column) and node.name in by_name else node)


def regex_search(dialect: str, value: exp.Expression, pattern: str) -> exp.Expression:
    """True where ``pattern`` matches anywhere in ``value`` (Python ``re.search`` semantics)."""
    from sqlglot import exp

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
    from sqlglot import exp

    if dialect in ("duckdb", "postgres"):
        inner = func(this=exp.Star() if arg is None else arg)
        return exp.Filter(this=inner, expression=exp.Where(this=condition))
    value = exp.Literal.number(1) if arg is None else arg
    filtered: exp.Expression = exp.Case(ifs=[exp.If(this=condition, true=value)])
    if isinstance(arg, exp.Cast):  # the type stays outermost: fakesnow sums a CASE of decimals as a DOUBLE
        filtered = exp.cast(filtered, arg.to.copy())
    return func(this=filtered)


def byte_order(dialect: str, value: exp.Expression) -> exp.Expression:
    """Text compared by code point, whatever the column's collation.

    DuckDB, Snowflake (without a collation set) and BigQuery compare text byte by byte, so
    ``'B' < 'a'``. PostgreSQL compares by the column's collation, which is usually the
    database's linguistic one (``en_US.UTF-8``: ``'a' < 'B'``), and refuses ``LIKE`` and
    regular expressions on nondeterministic (ICU case-insensitive) collations: ``COLLATE "C"``
    gives every predicate the byte order and plain equality the other warehouses use.
    """
    from sqlglot import exp

    if dialect == "postgres":
        # parenthesised: POSITION(x IN y) does not accept a bare COLLATE clause
        return exp.Paren(this=exp.Collate(this=value, expression=exp.Identifier(this="C", quoted=True)))
    return value


def wall_clock(dialect: str, value: exp.Expression, value_type: str) -> exp.Expression:
    """A timestamp column as UTC wall-clock time, the type the compiler's bounds are written in.

    Bounds are naive UTC literals (``CAST('...' AS TIMESTAMP)``; BigQuery: ``DATETIME``). BigQuery
    refuses to compare its zoned ``TIMESTAMP`` with ``DATETIME``, and tables there mostly use
    ``TIMESTAMP``: the column is read as ``CAST(col AS DATETIME)``, which is UTC wall-clock time for a
    ``TIMESTAMP`` and the value itself for a ``DATETIME``. Elsewhere a zoned column compares with a
    naive literal in the session's time zone, which every adapter sets to UTC.
    """
    from sqlglot import exp

    if dialect == "bigquery" and value_type == "timestamp":
        return exp.cast(value, exp.DataType.build("DATETIME", dialect="bigquery"))
    return value


def quote_identifier(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def quoted_table(name: str, schema: str | None) -> str:
    """``"schema"."table"`` as SQL text for the core's own statements (a qualified name keeps its schema)."""
    parts = name.split(".")
    if len(parts) == 1 and schema:
        parts = [schema, name]
    return ".".join(quote_identifier(part) for part in parts)


_SIMPLE_LOWER = re.compile(r"^[a-z_][a-z0-9_$]*$")


def fold_identifiers(tree: exp.Expression, dialect: str) -> exp.Expression:
    """Quoted simple lower-case names as the warehouse stores the names users write unquoted.

    Snowflake folds unquoted identifiers to upper case, so a table created as ``customers``
    (by dbt, by a loader, by hand) is ``CUSTOMERS``, and the quoted ``"customers"`` would not
    find it. The compiler quotes every name; on Snowflake a simple lower-case quoted name is
    written upper-case (``"CUSTOMERS"``), which is exactly what the unquoted name means there,
    and still safe for reserved words. Names with other characters keep their exact spelling.
    Other dialects fold to lower case (PostgreSQL) or are case-insensitive (DuckDB, BigQuery
    columns), so they need nothing.
    """
    from sqlglot import exp

    if dialect != "snowflake":
        return tree

    def fold(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Identifier) and node.quoted and _SIMPLE_LOWER.match(node.name):
            return exp.to_identifier(node.name.upper(), quoted=True)
        return node

    return tree.transform(fold)


def to_sql(tree: exp.Expression, dialect: str, *, pretty: bool = False) -> str:
    """The SQL text of a syntax tree in ``dialect``: the one way the core turns trees into SQL."""
    return fold_identifiers(tree, dialect).sql(dialect=dialect, pretty=pretty)


def render(duckdb_sql: str, dialect: str) -> str:
    """The core's own statements are written once, in DuckDB's dialect, and transpiled for the others."""
    if dialect == "duckdb":
        return duckdb_sql
    import sqlglot

    return ";\n".join(to_sql(tree, dialect) for tree in sqlglot.parse(duckdb_sql, read="duckdb") if tree is not None)


def ts_literal(value: dt.datetime) -> str:
    return f"CAST('{value.isoformat(sep=' ')}' AS TIMESTAMP)"


def text_literal(value: str | None) -> str:
    """A SQL string literal (or NULL)."""
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def in_list(values: Sequence[str]) -> str:
    return "(" + ", ".join(text_literal(v) for v in values) + ")"


def sql_literal(value: Any) -> str:
    """A Python value as a SQL literal in the portable form every dialect reads the same way.

    Backslashes are not escapes in standard SQL text, but they are in Snowflake and BigQuery
    string literals: the adapters that need it double them (see :func:`snowflake_literal`).
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, decimal.Decimal)):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"cannot write the float {value!r} as a portable SQL literal")
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return f"'{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'"
    return text_literal(str(value))


def snowflake_literal(value: Any) -> str:
    """A literal; Snowflake string literals treat backslash as an escape, so it is doubled."""
    text = sql_literal(value)
    return text.replace("\\", "\\\\") if text.startswith("'") else text


def bigquery_literal(value: Any) -> str:
    """A BigQuery literal: strings escape quote, backslash and newlines with backslashes."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, decimal.Decimal):
        # NUMERIC holds 29 integer and 9 fractional digits; beyond either, BIGNUMERIC
        fits = abs(value) < 10 ** 29 and -value.as_tuple().exponent <= 9
        return f"CAST('{value}' AS NUMERIC(38, 9))" if fits else f"CAST('{value}' AS BIGNUMERIC(76, 38))"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return f"CAST('{value}' AS FLOAT64)"
        return f"CAST({value!r} AS FLOAT64)"  # a bare 2.5 is FLOAT64 too, but say so: tools read it as DECIMAL
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return f"TIMESTAMP '{value.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(sep=' ')}+00'"
        return f"DATETIME '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return f"'{text}'"

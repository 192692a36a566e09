"""The names the compiled query gives its columns and CTEs, one function per kind.

Each is a kind prefix and a project name (``m__vip``); a name too long for a warehouse's limit is cut
and hashed by :func:`~airflow_segprovider.core.sql.expressions.generated_name`, so two 63-character
segment names sharing their first 60 characters still give two columns on PostgreSQL. The compiler,
explain and the engine read the result through these functions, never by spelling a prefix.
"""

from __future__ import annotations

from airflow_segprovider.core.sql.expressions import generated_name


def member_column(segment: str) -> str:
    """Final membership of ``segment`` (boolean)."""
    return generated_name("m__", segment)


def arm_column(segment: str) -> str:
    return generated_name("arm__", segment)


def bucket_column(segment: str) -> str:
    return generated_name("bucket__", segment)


def rule_column(segment: str) -> str:
    """Whether the rule alone holds (explain)."""
    return generated_name("r__", segment)


def admitted_column(segment: str) -> str:
    """Whether rule and consent admit the customer to ``segment``, before its priority group (insights)."""
    return generated_name("p__", segment)


def node_column(segment: str, position: int) -> str:
    """Outcome of one rule node (explain)."""
    return generated_name("n__", segment, f"__{position}")


def attribute_column(attribute: str) -> str:
    return generated_name("a__", attribute)


def consent_column(channel: str) -> str:
    return generated_name("c__", channel)


def aggregate_cte(source: str) -> str:
    return generated_name("agg__", source)


def count_column(aggregate_column: str) -> str:
    """The number of non-missing values beside an ``avg``'s sum."""
    return f"{aggregate_column}_n"

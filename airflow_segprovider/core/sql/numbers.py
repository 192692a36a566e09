"""The arithmetic of ``number`` values: decimals with 9 places, below 10^15 in magnitude, the same everywhere.

Every number a rule reads (an attribute, an event property in ``where`` or under an aggregate) is
taken as an exact decimal of 9 places: the stored value rounded to the nearest multiple of 10^-9.
Sums are exact decimal sums of those, so they do not depend on the (parallel) order of their terms,
and a customer right at a threshold never flips between runs. Three purchases of 100/3 (a double,
33.333333333333336) are 33.333333333 each and sum to 99.999999999.

Why the value is split into its floor and its fraction before the cast: a plain ``CAST(x AS
DECIMAL(38, 9))`` of a double is not exact anywhere. DuckDB multiplies by 10^9 in floating point
(123456789.12345679 becomes 123456789.123456784) and PostgreSQL first prints the double with 15
significant digits (123456789.123457000). The floor is an integer below 10^15, which both convert
exactly; the fraction lies in [0, 1), where 15 significant digits and a multiplication by 10^9 both
keep far more than 9 places. Measured on this machine, both then give the same 9-place value
for every double tried (tests/core/evaluate/test_numbers.py).

A value whose magnitude is 10^15 or more, an infinity or a NaN is **out of range**: it reads as a
missing value (and :func:`out_of_range` finds such rows, so evaluation can report them)
instead of failing the cast and stopping every segment. The limit keeps every such decimal exact
in each warehouse's conversion, and any sum of them far below DECIMAL(38, 9)'s 10^29.

This module imports sqlglot inside the functions that build SQL: validation (and so DAG parsing)
uses :func:`check_number` without loading it.
"""

from __future__ import annotations

import decimal
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlglot import exp

NUMBER_SCALE = 9
NUMBER_LIMIT = 10 ** 15  # magnitudes from here on are out of range
EXACT_NUMBER = "DECIMAL(38, 9)"  # exact in DuckDB, PostgreSQL, Snowflake and BigQuery (NUMERIC)
_WHOLE = "DECIMAL(18, 0)"  # the floor: an integer below 10^15, exact in every warehouse's cast


def check_number(value: float) -> decimal.Decimal:
    """A rule's number value as the decimal the warehouse compares with.

    :raises ValueError: for infinities, NaN, magnitudes of 10^15 or more, or more than 9 decimals,
        saying what is accepted.
    """
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} is not a number a rule can compare with: numbers are finite decimals "
                         f"below 10^15 in magnitude with at most {NUMBER_SCALE} decimals")
    exact = decimal.Decimal(repr(value)) if isinstance(value, float) else decimal.Decimal(value)
    if abs(exact) >= NUMBER_LIMIT:
        raise ValueError(f"{value!r} is out of range: numbers must be below 10^15 in magnitude "
                         "(larger values in the data read as missing)")
    if exact.as_tuple().exponent < -NUMBER_SCALE:  # type: ignore[operator]
        raise ValueError(f"{value!r} has more than {NUMBER_SCALE} decimals: numbers are compared as decimals of "
                         f"{NUMBER_SCALE} places; write at most {NUMBER_SCALE}")
    return exact


def in_range(value: exp.Expression) -> exp.Expression:
    """True for a value below 10^15 in magnitude: false for NaN (greatest in DuckDB, PostgreSQL and
    Snowflake, unordered in BigQuery: ``<`` is false for it in all four), infinities and NULL."""
    from sqlglot import exp

    return exp.LT(this=exp.Abs(this=value), expression=exp.Literal.number("1e15"))


def exact_number(value: exp.Expression) -> exp.Expression:
    """``value`` as DECIMAL(38, 9), rounded to 9 places, or NULL when out of range (see the module doc)."""
    from sqlglot import exp

    floor = exp.Floor(this=value.copy())
    whole = exp.cast(floor, exp.DataType.build(_WHOLE))
    fraction = exp.cast(exp.Sub(this=value.copy(), expression=floor.copy()), exp.DataType.build(EXACT_NUMBER))
    # the outermost cast keeps the type visible to SUM: fakesnow (the Snowflake emulator the tests run)
    # sums a CASE, or an Add of decimals, as a DOUBLE
    checked = exp.Case(ifs=[exp.If(this=in_range(value.copy()), true=exp.Add(this=whole, expression=fraction))])
    return exp.cast(checked, exp.DataType.build(EXACT_NUMBER))


def out_of_range(value: exp.Expression) -> exp.Expression:
    """True for a present value that :func:`exact_number` reads as missing."""
    from sqlglot import exp

    return exp.and_(exp.Not(this=exp.Is(this=value.copy(), expression=exp.null())),
                    exp.Not(this=in_range(value.copy())))


def number_literal(value: float | decimal.Decimal) -> exp.Expression:
    """A rule's number as an exact DECIMAL(38, 9) literal: a bare ``0.3`` is FLOAT64 in BigQuery."""
    from sqlglot import exp

    exact = value if isinstance(value, decimal.Decimal) else check_number(value)
    return exp.cast(exp.Literal.string(format(exact, "f")), exp.DataType.build(EXACT_NUMBER))

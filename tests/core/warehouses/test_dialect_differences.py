"""Named dialect differences: each is a place where warehouses disagree by default, and each test
shows the compiled SQL means the same on every warehouse anyway.

One project with a segment per difference is evaluated once per warehouse (DuckDB, PostgreSQL,
fakesnow Snowflake, BigQuery SQL on DuckDB) over hand-made rows; each test asserts the exact
members of its segments everywhere, and that the reference evaluator agrees.

PostgreSQL is made deliberately hostile: its session starts in ``Asia/Tokyo``, the customer
name column has a case-insensitive ICU collation and ``signup_at`` is ``timestamptz``.
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import tempfile
from pathlib import Path

import pytest

from airflow_segprovider.core.evaluate.compiler import SegmentCompiler
from airflow_segprovider.core.evaluate.engine import evaluate
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.sql.dialects import hash_bucket, python_hash_bucket, split_input, to_sql
from airflow_segprovider.example import EXAMPLE_PROJECT
from support.engine_harness import COLUMN_TYPES, MODEL, write_project
from support.reference_evaluator import reference_members, split_arm
from support.warehouse_matrix import DIFFERENTIAL_KINDS, load_rows, open_warehouse, stored

pytestmark = pytest.mark.integration

AS_OF = dt.datetime(2026, 3, 15, 12, 0)
US = dt.timedelta(microseconds=1)
DAY = dt.timedelta(days=1)
SPLIT = {"salt": "Frühling:2026", "arms": [{"name": "a", "percent": 33.33}, {"name": "b", "percent": 33.33},
                                          {"name": "c", "percent": 33.34}]}
SPLIT_KEYS = [f"s{i}" for i in range(150)] + ["ü1", "it's", "a:b", "C7", "c7", "顧客", "back\\slash"]

SEGMENTS = {
    # collation: code-point order and exact equality
    "name_before_a": {"attribute": "name", "op": "lt", "value": "a"},
    "name_is_lower_b": {"attribute": "name", "op": "eq", "value": "b"},
    "name_between_a_and_c": {"attribute": "name", "op": "between", "value": ["a", "c"]},
    # string literals: quotes, backslashes, newlines survive every dialect's escaping
    "has_backslash": {"attribute": "name", "op": "contains", "value": "\\"},
    "exact_quote": {"attribute": "name", "op": "eq", "value": "it's \"quoted\""},
    "starts_two_newline": {"attribute": "name", "op": "starts_with", "value": "two\n"},
    "like_wildcards_literal": {"attribute": "name", "op": "contains", "value": "%_"},
    # regex: partial match (Snowflake's REGEXP_LIKE anchors), escaped dot, backslash classes
    "regex_partial": {"attribute": "name", "op": "matches", "value": "ll"},
    "regex_escaped_dot": {"attribute": "name", "op": "matches", "value": r"^x\.y$"},
    "regex_empty": {"attribute": "name", "op": "matches", "value": "^$"},
    # time zones and window bounds: [as_of - 1d, as_of], exact to the microsecond
    "signed_up_last_day": {"attribute": "signup_at", "op": "within_last", "value": "1d"},
    "bought_last_7d": {"event": "buy", "aggregate": "count", "within": "7d", "op": "gte", "value": 1},
    # date arithmetic: day granularity, across a month end
    "birthday_last_30d": {"attribute": "birthday", "op": "within_last", "value": "30d"},
    # decimal sums and integer averages
    "revenue_exactly_point_3": {"event": "buy", "aggregate": "sum", "property": "revenue", "op": "eq", "value": 0.3},
    "avg_order_one_and_half": {"event": "orders", "aggregate": "avg", "property": "amount", "op": "eq",
                               "value": 1.5},
    # split arms: the same MD5 bucket on every warehouse
    "split_all": {"attribute": "score", "op": "is_not_null"},
}
CHANNEL_SEGMENTS = {"mailable": {"attribute": "tier", "op": "eq", "value": "consent"}}


def _customers() -> list[dict]:
    named = {
        "c_upper": "B", "c_lower": "a", "c_slash": "back\\slash", "c_quote": "it's \"quoted\"",
        "c_newline": "two\nlines", "c_regex": "x.y", "c_dotless": "xay", "c_unicode": "héllo", "c_empty": "",
        "c_null": None, "c_percent": "50%_off", "c_b_upper_between": "Bb",
    }
    rows = [{"customer_id": key, "name": name} for key, name in named.items()]
    rows += [
        {"customer_id": "t_bound", "signup_at": AS_OF - DAY},
        {"customer_id": "t_before", "signup_at": AS_OF - DAY - US},
        {"customer_id": "t_asof", "signup_at": AS_OF},
        {"customer_id": "t_after", "signup_at": AS_OF + US},
        {"customer_id": "d_bound", "birthday": dt.date(2026, 2, 13)},  # 2026-03-15 - 30 days
        {"customer_id": "d_before", "birthday": dt.date(2026, 2, 12)},
        {"customer_id": "d_today", "birthday": dt.date(2026, 3, 15)},
        {"customer_id": "d_tomorrow", "birthday": dt.date(2026, 3, 16)},
        {"customer_id": "e_bound"}, {"customer_id": "e_before"}, {"customer_id": "money"}, {"customer_id": "avg"},
        {"customer_id": "k_tie", "tier_code": "consent"}, {"customer_id": "k_null_time", "tier_code": "consent"},
        {"customer_id": "k_in", "tier_code": "consent"},
    ]
    rows += [{"customer_id": key, "score": 1.0} for key in SPLIT_KEYS]
    return rows


TABLES = {
    "customers": _customers(),
    "events": [
        {"customer_id": "e_bound", "occurred_at": AS_OF - 7 * DAY, "event_type": "buy"},
        {"customer_id": "e_before", "occurred_at": AS_OF - 7 * DAY - US, "event_type": "buy"},
        {"customer_id": "money", "occurred_at": AS_OF - DAY, "event_type": "buy", "revenue": 0.1},
        {"customer_id": "money", "occurred_at": AS_OF - DAY, "event_type": "buy", "revenue": 0.2},
    ],
    "orders": [
        {"customer_id": "avg", "ordered_at": AS_OF - DAY, "amount": 1},
        {"customer_id": "avg", "ordered_at": AS_OF - DAY, "amount": 2},
    ],
    "consents": [
        # a tie at the same instant: the opt-out wins (booleans order false < true everywhere)
        {"customer_id": "k_tie", "channel": "email", "opted_in": True, "updated_at": AS_OF - DAY},
        {"customer_id": "k_tie", "channel": "email", "opted_in": False, "updated_at": AS_OF - DAY},
        # an answer without a time never wins (PostgreSQL sorts NULL first in DESC order by default)
        {"customer_id": "k_null_time", "channel": "email", "opted_in": True, "updated_at": None},
        {"customer_id": "k_null_time", "channel": "email", "opted_in": False, "updated_at": AS_OF - 2 * DAY},
        {"customer_id": "k_in", "channel": "email", "opted_in": False, "updated_at": None},
        {"customer_id": "k_in", "channel": "email", "opted_in": True, "updated_at": AS_OF - 2 * DAY},
    ],
}

EXPECTED = {
    "name_before_a": {"c_upper", "c_empty", "c_percent", "c_b_upper_between"},
    "name_is_lower_b": set(),
    "name_between_a_and_c": {"c_lower", "c_slash"},
    "has_backslash": {"c_slash"},
    "exact_quote": {"c_quote"},
    "starts_two_newline": {"c_newline"},
    "like_wildcards_literal": {"c_percent"},
    "regex_partial": {"c_unicode"},
    "regex_escaped_dot": {"c_regex"},
    "regex_empty": {"c_empty"},
    "signed_up_last_day": {"t_bound", "t_asof"},
    "bought_last_7d": {"e_bound", "money"},
    "birthday_last_30d": {"d_bound", "d_today"},
    "revenue_exactly_point_3": {"money"},
    "avg_order_one_and_half": {"avg"},
    "mailable": {"k_in"},
}

COLUMNS = copy.deepcopy(COLUMN_TYPES)
COLUMNS["orders"]["amount"] = "BIGINT"  # integer amounts: AVG must not divide as integers


def _hostile_postgres(warehouse) -> None:
    """Case-insensitive linguistic collation on the name column, timestamptz for signup_at."""
    warehouse.execute("CREATE COLLATION IF NOT EXISTS case_insensitive "
                      "(provider = icu, locale = 'und-u-ks-level2', deterministic = false)")
    warehouse.execute("ALTER TABLE customers ALTER COLUMN name TYPE VARCHAR COLLATE case_insensitive")
    warehouse.execute("ALTER TABLE customers ALTER COLUMN signup_at TYPE TIMESTAMPTZ "
                      "USING signup_at AT TIME ZONE 'UTC'")


@pytest.fixture(scope="module")
def project():
    segments = [{"name": name, "rule": rule} for name, rule in SEGMENTS.items()]
    segments[-1]["split"] = SPLIT
    segments += [{"name": name, "rule": rule, "channels": ["email"]} for name, rule in CHANNEL_SEGMENTS.items()]
    with tempfile.TemporaryDirectory() as folder:
        return write_project(Path(folder), segments, model=MODEL)


@pytest.fixture(scope="module")
def members(project):
    """warehouse kind -> segment -> {key: arm}."""
    out = {}
    for kind in DIFFERENTIAL_KINDS:
        options = {"options": "-c TimeZone=Asia/Tokyo"} if kind == "postgres" else {}
        with open_warehouse(kind, **options) as warehouse:
            load_rows(warehouse, TABLES, COLUMNS)
            if kind == "postgres":
                _hostile_postgres(warehouse)
            evaluate(project, warehouse, AS_OF, run_id="dialects")
            got = stored(warehouse, AS_OF)
        out[kind] = {name: got.get(name, {}) for name in project.segments}
    return out


#: the reference evaluator sums Python floats (0.1 + 0.2 != 0.3); the engine sums exact decimals
FLOAT_REFERENCE_DIFFERS = {"revenue_exactly_point_3"}


def _check(project, members, names) -> None:
    reference = reference_members(project, TABLES, AS_OF)
    for name in names:
        if name not in FLOAT_REFERENCE_DIFFERS:
            assert set(reference[name]) == EXPECTED[name], f"reference evaluator disagrees on {name}"
        for kind in DIFFERENTIAL_KINDS:
            assert set(members[kind][name]) == EXPECTED[name], f"{kind}: {name}"


def test_collation_code_point_order_and_exact_equality(project, members):
    _check(project, members, ["name_before_a", "name_is_lower_b", "name_between_a_and_c"])


def test_postgres_compiles_text_predicates_with_c_collation(project):
    sql = SegmentCompiler(project, "postgres").compile(AS_OF).sql()
    assert 'COLLATE "C"' in sql
    assert 'COLLATE "C"' not in SegmentCompiler(project, "duckdb").compile(AS_OF).sql()


def test_string_literal_escaping_quotes_backslashes_newlines(project, members):
    _check(project, members, ["has_backslash", "exact_quote", "starts_two_newline", "like_wildcards_literal"])


def test_regex_is_a_partial_match_everywhere(project, members):
    _check(project, members, ["regex_partial", "regex_escaped_dot", "regex_empty"])


def test_time_zone_of_the_session_does_not_move_window_bounds(project, members):
    # PostgreSQL's session started in Asia/Tokyo and signup_at is timestamptz there
    _check(project, members, ["signed_up_last_day", "bought_last_7d"])


def test_date_windows_count_calendar_days_across_a_month_end(project, members):
    _check(project, members, ["birthday_last_30d"])


def test_sums_are_exact_decimals_and_integer_averages_do_not_truncate(project, members):
    _check(project, members, ["revenue_exactly_point_3", "avg_order_one_and_half"])


def test_latest_consent_ignores_answers_without_time_and_ties_opt_out(project, members):
    _check(project, members, ["mailable"])


def test_hash_buckets_and_split_arms_are_identical(project, members):
    split = project.segments["split_all"].split
    expected = {key: split_arm(split, key) for key in SPLIT_KEYS}
    assert len(set(expected.values())) == 3
    for kind in DIFFERENTIAL_KINDS:
        assert members[kind]["split_all"] == expected, kind


@pytest.mark.parametrize("kind", DIFFERENTIAL_KINDS)
def test_hash_bucket_sql_equals_python_on_every_warehouse(kind):
    from sqlglot import exp

    keys = ["", "a", "顧客", "it's", "back\\slash", "x" * 300, "0", "-1"]
    selects = " UNION ALL ".join(
        f"SELECT {exp.Literal.string(k).sql(dialect=_dialect(kind))} AS k, "
        f"{to_sql(hash_bucket(_dialect(kind), split_input('salt', exp.Literal.string(k))), _dialect(kind))} AS b"
        for k in keys)
    with open_warehouse(kind) as warehouse:
        got = {k: int(b) for k, b in warehouse.query(selects)}
    assert got == {k: python_hash_bucket(f"salt:{k}") for k in keys}


def _dialect(kind: str) -> str:
    return "bigquery" if kind == "bigquery_sql" else kind


def test_snowflake_names_are_folded_like_unquoted_identifiers(project):
    sql = SegmentCompiler(project, "snowflake").compile(AS_OF).sql()
    assert '"CUSTOMERS"' in sql and '"CUSTOMER_ID"' in sql
    assert '"customers"' not in sql and '"customer_id"' not in sql
    # names that are not plain lower-case identifiers keep their exact spelling
    from airflow_segprovider.core.sql.dialects import render

    assert render('SELECT "Mixed Case" FROM t', "snowflake") == 'SELECT "Mixed Case" FROM t'


def test_bigquery_reads_timestamp_columns_as_utc_datetime():
    """BigQuery refuses ``TIMESTAMP >= DATETIME``: every timestamp column is cast to DATETIME (UTC wall
    clock; a no-op on a DATETIME column), so the bounds compare whichever of the two the table uses."""
    import sqlglot
    from sqlglot import exp

    example = load_project(EXAMPLE_PROJECT)
    model = example.model
    timestamp_columns = {source.timestamp for source in model.events.values()}
    timestamp_columns |= {prop for source in model.events.values() for prop, kind in source.properties.items()
                          if kind == "timestamp"}
    timestamp_columns |= {a.column for a in model.customer.attributes.values() if a.type == "timestamp"}
    timestamp_columns.add(model.consent.updated_at_column)
    sql = SegmentCompiler(example, "bigquery", "main").compile(AS_OF).sql()
    tree = sqlglot.parse_one(sql, read="bigquery")
    found = [column for column in tree.find_all(exp.Column) if column.name in timestamp_columns]
    assert found
    for column in found:
        # sqlglot reads BigQuery's DATETIME as its naive TIMESTAMP type (and BigQuery's TIMESTAMP as TIMESTAMPTZ)
        assert isinstance(column.parent, exp.Cast), column.parent.sql(dialect="bigquery")
        assert column.parent.sql(dialect="bigquery").endswith("AS DATETIME)"), column.parent.sql(dialect="bigquery")


@pytest.mark.parametrize("value", [
    "plain", "", "it's", "back\\slash", "two\nlines", "tab\there", "quote \" and ' both", "ünï ✓", 0, -17,
    2.5, True, False, None, decimal.Decimal("1234.500000001"), dt.date(2026, 2, 28),
    dt.datetime(2026, 3, 15, 12, 0, 0, 1)])
def test_bigquery_adapter_literals_mean_their_value(value):
    """The BigQuery adapter writes rows as literals inside transactions: each reads back as itself
    (parsed as BigQuery, executed transpiled to DuckDB)."""
    from airflow_segprovider.core.sql.dialects import bigquery_literal
    from support.warehouse_matrix import BigQuerySQLOnDuckDB

    warehouse = BigQuerySQLOnDuckDB(":memory:")
    try:
        (got,), = warehouse.query(f"SELECT {bigquery_literal(value)}")
    finally:
        warehouse.close()
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("value", ["it's", "back\\slash", "two\nlines", "\\'", "ünï ✓"])
def test_snowflake_adapter_literals_mean_their_value(value):
    from airflow_segprovider.core.sql.dialects import snowflake_literal

    with open_warehouse("snowflake") as warehouse:
        assert warehouse.query(f"SELECT {snowflake_literal(value)}") == [(value,)]

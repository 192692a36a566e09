"""Incremental evaluation's state in the warehouse: what the latest snapshot was computed from.

``segprovider_evaluation_state`` (:data:`STATE`)
    one row: the ``as_of`` of the snapshot the state belongs to, the membership write it
    continues, the plan's fingerprint (a changed rule or data model starts again from a full
    evaluation), and the size of that write's base and of the deltas written on it since.
``segprovider_evaluation_base`` (:data:`BASE`)
    one row per customer: the evaluation's ``base`` relation at that ``as_of`` (key, the
    attributes as rules read them, every aggregate of the plan, the latest consent per channel).
    Its columns are the compiled plan's, so it is created from the plan (``CREATE TABLE AS``).
``segprovider_evaluation_base_next_<run>`` (:data:`BASE_NEXT` and a random suffix)
    on a warehouse that takes no DDL inside a transaction (Snowflake, BigQuery), the ``base`` a full run
    computes before its transaction, which then copies it into ``BASE`` (DML); dropped after the run.
``segprovider_evaluation_loads`` (:data:`LOADS`)
    per table the state read (event, order and consent tables), the rows of each ingest load
    (``_segprovider_load``) it had seen, and a checksum of those rows over the columns the plan reads
    (``checksum``, text; NULL in a table an earlier version kept: unknown, so the next run is full): a row
    of any other load arrived since, and a seen load whose count or checksum changed was rewritten.
``segprovider_evaluation_runs`` (:data:`RUNS`)
    the run record: one row per evaluation, whether it was ``full`` or ``incremental`` and why,
    how many customers it touched.

Scratch tables of one incremental run, created and dropped inside its transaction (temporary
where the warehouse has session-temporary tables):

``segprovider_incremental_rows_<n>``
    per event table read by two or more sources, the rows any of them can count differently between the
    two ``as_of`` (new loads, window edges): the table is scanned once, not once per source.
``segprovider_incremental_delta_<n>``
    per event source, the change of each aggregate per customer between the two ``as_of``.
``segprovider_incremental_touched``
    the customers the run re-evaluates.
``segprovider_incremental_base``
    the touched customers' new ``base`` rows, staged before their old rows are replaced.
``segprovider_incremental_changed``
    the membership words that changed, handed to the membership store as the delta.
"""

from __future__ import annotations

STATE = "segprovider_evaluation_state"
BASE = "segprovider_evaluation_base"
BASE_NEXT = "segprovider_evaluation_base_next"
LOADS = "segprovider_evaluation_loads"
RUNS = "segprovider_evaluation_runs"
DELTA_PREFIX = "segprovider_incremental_delta_"
ROWS_PREFIX = "segprovider_incremental_rows_"
TOUCHED = "segprovider_incremental_touched"
CHANGED = "segprovider_incremental_changed"
STAGED = "segprovider_incremental_base"
#: stands for the touched customers' packed words in a statement rendered before they are put in
NEW_WORDS = "segprovider_incremental_new_words"

TABLES = (STATE, BASE, BASE_NEXT, LOADS, RUNS, DELTA_PREFIX, ROWS_PREFIX, TOUCHED, CHANGED, STAGED, NEW_WORDS)

#: Written once in DuckDB's dialect and transpiled (core.sql.dialects.render).
DDL = (
    f"""CREATE TABLE IF NOT EXISTS {STATE} (
        as_of TIMESTAMP NOT NULL, write_id VARCHAR NOT NULL, fingerprint VARCHAR NOT NULL, run_id VARCHAR NOT NULL,
        base_rows BIGINT NOT NULL, delta_rows BIGINT NOT NULL, deltas BIGINT NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {LOADS} (
        table_name VARCHAR NOT NULL, load_id VARCHAR NOT NULL, row_count BIGINT NOT NULL, checksum VARCHAR)""",
    f"""CREATE TABLE IF NOT EXISTS {RUNS} (
        run_id VARCHAR NOT NULL, as_of TIMESTAMP NOT NULL, mode VARCHAR NOT NULL, reason VARCHAR NOT NULL,
        touched BIGINT, customers BIGINT, seconds DOUBLE, evaluated_at TIMESTAMP NOT NULL)""",
)

#: columns added after a table was first released, ``(table, column, type)``: a table created by an earlier
#: version gets them on the next ``ensure_tables`` (``ADD COLUMN IF NOT EXISTS``), its old rows NULL there.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    (LOADS, "checksum", "VARCHAR"),
)


def create_as(table: str, query_sql: str, temporary: bool) -> str:
    """``CREATE TABLE ... AS`` of a state or scratch table from a query (in the warehouse's dialect)."""
    return f"CREATE {'TEMPORARY ' if temporary else ''}TABLE {table} AS {query_sql}"

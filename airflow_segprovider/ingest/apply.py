"""Apply a load's units to the target table, inside the load's transaction.

For each unit (see :mod:`.units`) the typing engine (DuckDB) casts each declared field
to the model's type with ``TRY_CAST``; a row whose non-empty value does not cast, or
that lacks a required value (key, timestamp, event type), goes to the quarantine with
its position and reason, never into the table. The valid rows are applied by the
source's mode: ``upsert`` updates the columns this source provides for rows whose key
exists and inserts the others (the last row of a key in one load wins); ``append``
replaces the rows of the same file or page request (``_segprovider_load``), so
reloading is idempotent; ``replace`` empties the table at the start of the load.

On the embedded DuckDB warehouse the engine is the warehouse itself, so rows never
leave it. Elsewhere each unit's valid rows (deduplicated by key for upserts) and its
quarantine rows stream out of the engine in Arrow batches into the target warehouse
(:mod:`.transfer`), where the upsert, the deletes and the quarantine run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import render
from airflow_segprovider.core.sql.dialects import text_literal as text
from airflow_segprovider.core.state.ingest import (
    INVALID_COLUMN,
    LOAD_COLUMN,
    QUARANTINE_COLUMNS,
    ROW_COLUMN,
    UNIT_ALIAS,
    create_as_sql,
    create_stage_sql,
    latest_rows_table,
    quarantine_table,
    rows_table,
    stage_table,
)
from airflow_segprovider.core.warehouses.base import ddl_outside_transaction
from airflow_segprovider.ingest import ledger
from airflow_segprovider.ingest.errors import TerminalIngestError
from airflow_segprovider.ingest.guards import beyond_sql, check_shrink, future_limit, future_reason
from airflow_segprovider.ingest.layout import SQL_TYPES
from airflow_segprovider.ingest.sql import engine_type, is_text, qualified, quote, typed
from airflow_segprovider.ingest.units import TRANSFER_BATCH_ROWS

if TYPE_CHECKING:
    import datetime as dt

    from airflow_segprovider.core.project.spec import Source
    from airflow_segprovider.core.warehouses.base import Warehouse
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.ingest.forgotten import ForgottenKeys
    from airflow_segprovider.ingest.layout import TableLayout
    from airflow_segprovider.ingest.units import Unit

logger = logging.getLogger(__name__)
_REASONS = {"DOUBLE": "not a number", "BOOLEAN": "not a boolean (true or false)", "DATE": "not a date (YYYY-MM-DD)",
            "TIMESTAMP": "not a timestamp (ISO 8601)"}
_WATERMARK_ORDER = ("TRY_CAST(w AS TIMESTAMPTZ) DESC NULLS LAST, TRY_CAST(w AS DOUBLE) DESC NULLS LAST, "
                    "w DESC NULLS LAST")


class Load:
    """The state of one load while its units are applied inside the transaction."""

    def __init__(self, warehouse: Warehouse, engine: DuckDBWarehouse, source: Source, layout: TableLayout,
                 load_id: str, customer_table: str, now: dt.datetime) -> None:
        self.warehouse = warehouse
        self.engine = engine
        self.local = engine is warehouse  # the warehouse is the engine: rows never leave DuckDB
        # In the user's DuckDB the unit's rows live in a temporary table; a private engine uses plain
        # tables, which the cursors that stream them out (other connections) can see.
        self.scratch = "TEMP TABLE" if self.local else "TABLE"
        self.dialect = warehouse.dialect
        self.source = source
        self.layout = layout
        self.load_id = load_id
        self.now = now
        self.target, self.target_dotted = qualified(layout.table, warehouse.schema)
        self.customer_table = customer_table
        self.types: dict[str, str] | None = None  # cast target per column, fixed when the table is prepared
        self.rows_read = self.rows_loaded = self.rows_quarantined = self.units = 0
        #: tombstones whose rows this load drops (:mod:`.forgotten`), and how many it dropped
        self.forgotten: ForgottenKeys | None = None
        self.rows_forgotten = 0
        self.watermarks: list[str] = []
        self.temp = rows_table(load_id)
        self.quarantine = quarantine_table(warehouse)
        self.stage: str | None = None  # the target's staging table of upserted rows (other warehouses)
        self.previous_rows: int | None = None  # replace mode: rows the table held before the load emptied it
        self.future_limit = ledger.timestamp(future_limit(now, source))

    def target_sql(self, duckdb_sql: str) -> None:
        """Run a statement written in DuckDB's dialect in the target warehouse."""
        self.warehouse.execute(render(duckdb_sql, self.dialect))

    def target_table(self, table: str) -> str:
        """A table reference as the target spells it (Snowflake: simple names folded to upper case)."""
        if self.dialect == "duckdb":
            return table
        import sqlglot
        from sqlglot import exp

        from airflow_segprovider.core.sql.dialects import to_sql

        return to_sql(sqlglot.parse_one(table, into=exp.Table, read="duckdb"), self.dialect)

    def transfer(self, select: str, table: str, columns: list[str]) -> None:
        """Append the rows of ``select`` (an engine query) to ``table`` of the target warehouse."""
        names = ", ".join(quote(c) for c in columns)
        if self.local:
            self.engine.execute(f"INSERT INTO {table} ({names}) {select}")
            return
        from airflow_segprovider.ingest.transfer import load_batches

        load_batches(self.warehouse, self.target_table(table), columns,
                     self.engine.iter_batches(select, TRANSFER_BATCH_ROWS))

    def _prepare(self, native: Mapping[str, str]) -> dict[str, str]:
        """Create or widen the target table; return the type each column is cast to."""
        existing = {c.lower(): (c, t) for c, t in (self.warehouse.columns(self.target_dotted) or {}).items()}
        customer_key_type = None
        if self.layout.role != "customer":
            customers = self.warehouse.columns(qualified(self.customer_table, self.warehouse.schema)[1]) or {}
            customer_key_type = {c.lower(): t for c, t in customers.items()}.get(self.layout.customer_key.lower())
        types: dict[str, str] = {}
        for column, model_type in self.layout.columns.items():
            if model_type is not None:
                types[column] = SQL_TYPES[model_type]
            elif column.lower() in existing:
                types[column] = engine_type(existing[column.lower()][1], self.dialect)
            elif column == self.layout.customer_key and customer_key_type:
                types[column] = engine_type(customer_key_type, self.dialect)  # keys join across tables: one type
            else:
                types[column] = native.get(column) or "VARCHAR"
        wanted = dict(types)
        if self.source.mode == "append":
            wanted[LOAD_COLUMN] = "VARCHAR"
        if not existing:
            columns = ", ".join(f"{quote(c)} {t}" for c, t in wanted.items())
            self.target_sql(f"CREATE TABLE {self.target} ({columns})")  # DuckDB's types, rendered for the target
            logger.info("source %s: created table %s", self.source.name, self.target_dotted)
        else:
            for column, sql_type in wanted.items():
                if column.lower() not in existing:
                    self.target_sql(f"ALTER TABLE {self.target} ADD COLUMN {quote(column)} {sql_type}")
        return types

    def prepare_outside_transaction(self) -> None:
        """Create or widen the table before the load's transaction where DDL cannot run inside one
        (Snowflake commits before DDL, BigQuery refuses DDL in a transaction).

        Columns the model does not type (keys) take the customer key's type, else VARCHAR, since
        no unit has been read yet. An empty table may remain when the load then fails; no rows do.
        """
        if ddl_outside_transaction(self.dialect):
            self.types = self._prepare({})

    def apply(self, unit: Unit) -> None:
        started = time.perf_counter()
        described = {row[0].lower(): (row[0], row[1]) for row in self.engine.query(f"DESCRIBE {unit.relation}")}
        fields: dict[str, tuple[str, str]] = {}  # model column -> (source field, its type)
        for column in self.layout.columns:
            if column.lower() in described:
                fields[column] = described[column.lower()]
            elif column in self.layout.required:
                raise TerminalIngestError(
                    f"{unit.origin} has no field {column!r}, which every row of {self.layout.table!r} needs "
                    f"(fields found: {', '.join(name for name, _ in described.values() if name != ROW_COLUMN)})",
                    source=self.source.name, hint="fix the export, or load this table from another source")
        watermark_field = None
        if self.source.incremental is not None:
            watermark_field = described.get(self.source.incremental.column.lower())
            if watermark_field is None:
                raise TerminalIngestError(f"{unit.origin} has no field {self.source.incremental.column!r} "
                                          "(the incremental column)", source=self.source.name,
                                          hint="fix incremental.column in the source definition")
        if self.types is None:
            self.types = self._prepare({column: sql_type for column, (_, sql_type) in fields.items()})
        if self.units == 0 and self.source.mode == "replace":
            self.previous_rows = self._count_target()
            self.target_sql(f"DELETE FROM {self.target}")
            self.target_sql(f"DELETE FROM {self.quarantine} WHERE source = {text(self.source.name)}")
        types = self.types
        columns = list(fields)  # the columns this unit provides, in model order

        select = [f"{quote(ROW_COLUMN)} AS __row"]
        select.append(f"{quote(INVALID_COLUMN)} AS __invalid" if INVALID_COLUMN.lower() in described
                      else "NULL AS __invalid")
        checks: list[tuple[str | None, str, str, str]] = []  # (column, raw SQL, condition, reason)
        dated: set[str] = set()  # columns whose values beyond the future limit are quarantined
        for index, column in enumerate(columns):
            field, raw_type = fields[column]
            raw, value = f"r_{index}", f"v_{index}"
            select += [f"{quote(field)} AS {raw}", f"{typed(quote(field), raw_type, types[column])} AS {value}"]
            present = f"NULLIF(trim({raw}), '') IS NOT NULL" if is_text(raw_type) else f"{raw} IS NOT NULL"
            if not is_text(types[column]):
                checks.append((column, raw, f"{present} AND {value} IS NULL",
                               _REASONS.get(types[column], f"not a valid {types[column]}")))
            if column in self.layout.required:
                checks.append((column, raw, f"NOT ({present})", "missing required value"))
            if column in self.layout.required and self.layout.columns[column] == "timestamp":  # the row's date
                checks.append((column, raw, beyond_sql(value, self.future_limit), future_reason(self.source)))
                dated.add(column.lower())
        identity = [(column, f"r_{columns.index(column)}") for column in self.layout.identity if column in fields]
        key = " || ', ' || ".join(f"{text(column + '=')} || COALESCE(CAST({raw} AS VARCHAR), 'null')"
                                  for column, raw in identity) or "NULL"
        if watermark_field is not None:
            select.append(f"CAST({quote(watermark_field[0])} AS VARCHAR) AS __w")
            if watermark_field[0].lower() not in dated:  # a value the watermark would move to
                checks.append((watermark_field[0], "__w", beyond_sql("__w", self.future_limit),
                               future_reason(self.source)))
        bad = " OR ".join(["__invalid IS NOT NULL", *(f"(__invalid IS NULL AND {c})" for _, _, c, _ in checks)])
        self.engine.execute(create_as_sql(
            self.scratch, self.temp, f"SELECT *, {key} AS __key, ({bad}) AS __bad "
            f"FROM (SELECT {', '.join(select)} FROM ({unit.relation}) AS {UNIT_ALIAS})"))
        # (no try/finally around the temp tables: on failure the rollback drops them, and a DROP in an
        # aborted transaction would only hide the original error)
        self._drop_forgotten(columns)
        read, rejected = self.engine.query(f"SELECT count(*), count(*) FILTER (WHERE __bad) FROM {self.temp}")[0]
        self._quarantine(unit, checks)
        self._write(unit, columns)
        if watermark_field is not None:
            # rows dated past the limit are quarantined and never move the watermark (they would freeze it)
            best = self.engine.query(f"SELECT w FROM (SELECT __w AS w FROM {self.temp} WHERE __w IS NOT NULL "
                                     f"AND NOT {beyond_sql('__w', self.future_limit)}) "
                                     f"ORDER BY {_WATERMARK_ORDER} LIMIT 1")
            self.watermarks += [best[0][0]] if best else []
        self.engine.execute(f"DROP TABLE {self.temp}")
        self.units += 1
        self.rows_read += read
        self.rows_loaded += read - rejected
        self.rows_quarantined += rejected
        logger.info("source %s: %s: read %d, loaded %d, quarantined %d in %.2fs", self.source.name, unit.origin,
                    read, read - rejected, rejected, time.perf_counter() - started)

    def _drop_forgotten(self, columns: list[str]) -> None:
        """Drop the unit's rows of forgotten customers before anything is written or quarantined."""
        if self.forgotten is None or self.layout.customer_key not in columns:
            return
        condition = self.forgotten.condition(f"v_{columns.index(self.layout.customer_key)}")
        dropped = self.engine.query(f"SELECT count(*) FROM {self.temp} WHERE {condition}")[0][0]
        if dropped:
            self.engine.execute(f"DELETE FROM {self.temp} WHERE {condition}")
            self.rows_forgotten += dropped
            logger.info("source %s: dropped %d rows of forgotten customers", self.source.name, dropped)

    def _quarantine(self, unit: Unit, checks: list[tuple[str | None, str, str, str]]) -> None:
        if self.source.mode != "replace":  # the origin's earlier rejections are superseded by this load's
            self.target_sql(f"DELETE FROM {self.quarantine} WHERE source = {text(self.source.name)} "
                            f"AND origin = {text(unit.origin)}")
        branches = ["SELECT __row, __key, NULL AS column_name, __invalid AS raw_value, "
                    f"'record is not a JSON object' AS reason FROM {self.temp} WHERE __invalid IS NOT NULL"]
        branches += [f"SELECT __row, __key, {text(column)}, CAST({raw} AS VARCHAR), {text(reason)} FROM {self.temp} "
                     f"WHERE __invalid IS NULL AND {condition}" for column, raw, condition, reason in checks]
        page = "NULL" if unit.page is None else str(unit.page)
        self.transfer(
            f"SELECT {text(self.source.name)}, {text(self.layout.table)}, {text(self.load_id)}, {text(unit.origin)}, "
            f"CAST({page} AS BIGINT), CAST(__row AS BIGINT), __key, column_name, raw_value, reason, "
            f"{ledger.timestamp(self.now)} FROM ({' UNION ALL '.join(branches)}) AS rejected "
            "ORDER BY __row, column_name", self.quarantine, list(QUARANTINE_COLUMNS))

    def _write(self, unit: Unit, columns: list[str]) -> None:
        values = ", ".join(f"v_{i} AS {quote(c)}" for i, c in enumerate(columns))
        valid = f"FROM {self.temp} WHERE NOT __bad"
        if self.source.mode == "append":
            identity = text(f"{self.source.name}:{unit.origin}")
            self.target_sql(f"DELETE FROM {self.target} WHERE {quote(LOAD_COLUMN)} = {identity}")
            self.transfer(f"SELECT {values}, {identity} AS {quote(LOAD_COLUMN)} {valid}", self.target,
                          [*columns, LOAD_COLUMN])
            return
        if self.source.mode == "replace":
            self.transfer(f"SELECT {values} {valid}", self.target, columns)
            return
        keys = [f"v_{columns.index(k)}" for k in self.source.key]
        latest = f"SELECT {values} {valid} QUALIFY row_number() OVER (PARTITION BY {', '.join(keys)} ORDER BY __row DESC) = 1"
        if ddl_outside_transaction(self.dialect):
            # no staging table (DDL): the adapter's upsert (Snowflake: UPDATE + INSERT, BigQuery: MERGE,
            # from typed rows inside the load's transaction), batch by batch
            import pyarrow as pa

            for batch in self.engine.iter_batches(latest, TRANSFER_BATCH_ROWS):
                self.warehouse.upsert(self.target_table(self.target), list(self.source.key),
                                      pa.Table.from_batches([batch]))
            return
        if self.local:
            stage = latest_rows_table(self.temp)
            self.engine.execute(create_as_sql("TEMP TABLE", stage, latest))
        else:
            stage = self._stage()
            self.target_sql(f"DELETE FROM {stage}")
            self.transfer(latest, stage, columns)
            if self.dialect == "postgres":
                self.warehouse.execute(f"ANALYZE {stage}")
        match = " AND ".join(f"t.{quote(k)} = u.{quote(k)}" for k in self.source.key)
        updates = ", ".join(f"{quote(c)} = u.{quote(c)}" for c in columns if c not in self.source.key)
        if updates:
            self.target_sql(f"UPDATE {self.target} AS t SET {updates} FROM {stage} AS u WHERE {match}")
        self.target_sql(
            f"INSERT INTO {self.target} ({', '.join(quote(c) for c in columns)}) "
            f"SELECT {', '.join(f'u.{quote(c)}' for c in columns)} "
            f"FROM {stage} AS u WHERE NOT EXISTS (SELECT 1 FROM {self.target} AS t WHERE {match})")
        if self.local:
            self.engine.execute(f"DROP TABLE {stage}")
        elif self.dialect == "postgres":
            self._analyze_target()

    def _analyze_target(self) -> None:
        """Table statistics for PostgreSQL's planner, inside the load's transaction.

        Without them the planner takes the staged rows and the growing table (whose new rows no
        autovacuum can see before the commit) for tiny, and joins them by nested loops: quadratic
        in the rows loaded. The stage is analyzed for every unit; the table *after* writing units
        1, 2, 4, 8, ... so its estimate stays within a factor of two (analyzed while still empty,
        it would be planned as empty while the statement fills it).
        """
        done = self.units + 1
        if done & (done - 1) == 0:
            self.warehouse.execute(f"ANALYZE {self.target}")

    def _stage(self) -> str:
        """The target's temporary staging table for upserted rows, created on first use (dropped by :meth:`close`)."""
        if self.stage is None:
            assert self.types is not None
            # every column of the layout: later units (files) may provide columns the first one lacked
            definition = ", ".join(f"{quote(c)} {t}" for c, t in self.types.items())
            self.stage = quote(stage_table(self.load_id))
            self.target_sql(create_stage_sql(self.stage, definition))
        return self.stage

    def _count_target(self) -> int:
        if self.warehouse.columns(self.target_dotted) is None:
            return 0
        return int(self.warehouse.query(render(f"SELECT count(*) FROM {self.target}", self.dialect))[0][0])

    def check_shrink(self, *, allow_shrink: bool) -> None:
        """Refuse (before the commit) a ``replace`` load that empties or shrinks the table past the source's limit."""
        if self.source.mode != "replace":
            return
        previous = self.previous_rows if self.previous_rows is not None else self._count_target()
        check_shrink(self.source, self.layout.table, previous, self.rows_loaded, self.rows_quarantined,
                     allow_shrink=allow_shrink)

    def close(self) -> None:
        """Drop the staging table (within the transaction: a rollback drops it too where DDL is transactional)."""
        if self.stage is not None:
            self.target_sql(f"DROP TABLE {self.stage}")
            self.stage = None

    def final_watermark(self, previous: str | None) -> str | None:
        """The highest watermark seen, never lower than the previous one, never past the future limit."""
        candidates = [w for w in [previous, *self.watermarks] if w is not None]
        if not candidates:
            return None
        values = ", ".join(f"({text(w)})" for w in candidates)
        best = self.engine.query(f"SELECT w FROM (VALUES {values}) AS v(w) "
                                 f"WHERE NOT {beyond_sql('w', self.future_limit)} ORDER BY {_WATERMARK_ORDER} LIMIT 1")
        return best[0][0] if best else None

    def usable_watermark(self, stored: list[str]) -> str | None:
        """The watermark to read from: the newest of ``stored`` (newest first) within the future limit.

        One beyond it was stored by a load before the future-date guard; filtering by it would read
        nothing, forever.
        """
        for watermark in stored:
            if not self.engine.query(f"SELECT {beyond_sql(text(watermark), self.future_limit)}")[0][0]:
                return watermark
            logger.warning("source %s: ignoring the stored watermark %s, later than the load time plus "
                           "future_tolerance", self.source.name, watermark)
        return None

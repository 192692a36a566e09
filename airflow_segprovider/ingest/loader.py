"""Load a declared source into its model table: typed, quarantined, upserted, recorded.

One load is one transaction. It reads the source unit by unit (a file, an API page,
a query result), and for each unit:

1. reads the fields the data model declares for the table, as the reader gives them
   (CSV and JSON as text, Parquet and warehouse tables with their own types);
2. casts each to the model's type with ``TRY_CAST``; a row whose non-empty value does
   not cast, or that lacks a required value (key, timestamp, event type), goes to the
   quarantine with its position and reason, never into the table;
3. applies the valid rows by the source's mode: ``upsert`` updates the columns this
   source provides for rows whose key exists and inserts the others (the last row of
   a key in one load wins); ``append`` replaces the rows of the same file or page
   request (``_segprovider_load``), so reloading is idempotent; ``replace`` empties
   the table at the start of the load.

The ledger row is written in the same transaction. On any failure the transaction is
rolled back (no rows, no quarantine, watermark unchanged) and a ``failed`` ledger row
is written after it. Every row read ends up loaded or quarantined:
``rows_read = rows_loaded + rows_quarantined``.

Where each step runs: reading and typing always run in DuckDB, in-process (the
*engine*). On the embedded DuckDB warehouse the engine is the warehouse itself, so
rows never leave it. On PostgreSQL, Snowflake or BigQuery the engine is a private
in-memory DuckDB: each unit's valid rows (deduplicated by key for upserts) and its
quarantine rows stream out of it in Arrow batches into the target warehouse
(:mod:`.transfer`: ``COPY`` on PostgreSQL), and the upsert, the deletes, the
quarantine, the ledger and the watermark all live in the target, inside one
transaction of the target. Warehouse-table sources read the target's own table
or query in Arrow batches.
"""

from __future__ import annotations

import datetime as dt
import glob
import logging
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.evaluate.dialects import render
from airflow_segprovider.ingest import ledger
from airflow_segprovider.ingest.errors import IngestError, TerminalIngestError, TransientIngestError
from airflow_segprovider.ingest.layout import LOAD_COLUMN, SQL_TYPES, TableLayout, table_layout
from airflow_segprovider.ingest.ledger import text

if TYPE_CHECKING:

    from airflow_segprovider.core.project.spec import Project, Source
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse
    from airflow_segprovider.core.warehouses.base import Warehouse

logger = logging.getLogger(__name__)

ROW = "__segprovider_row"
#: Rows per Arrow batch moved from the engine into another warehouse (and read from its tables).
TRANSFER_BATCH_ROWS = 100_000
#: Warehouses where DDL cannot run inside the load's transaction (Snowflake commits before it,
#: BigQuery refuses it): the table is prepared before, and upserts go through the adapter.
_DDL_OUTSIDE_TRANSACTION = frozenset({"snowflake", "bigquery"})
INVALID = "__segprovider_invalid"
_REASONS = {"DOUBLE": "not a number", "BOOLEAN": "not a boolean (true or false)", "DATE": "not a date (YYYY-MM-DD)",
            "TIMESTAMP": "not a timestamp (ISO 8601)"}
_WATERMARK_ORDER = ("TRY_CAST(w AS TIMESTAMPTZ) DESC NULLS LAST, TRY_CAST(w AS DOUBLE) DESC NULLS LAST, "
                    "w DESC NULLS LAST")


@dataclass(frozen=True)
class LoadResult:
    """What one load did, as recorded in ``segprovider_source_loads``.

    :param status: ``succeeded`` or ``failed`` (then ``error`` says why and nothing was committed).
    :param rows_read: rows read from the source; ``rows_loaded + rows_quarantined`` when it succeeded.
    :param rows_loaded: valid rows applied to the table (inserted, updated or appended).
    :param rows_quarantined: rows rejected into ``segprovider_quarantine``.
    :param units: files, pages or queries read.
    :param watermark: the incremental watermark after this load (unchanged when it failed).
    """

    source: str
    table: str
    load_id: str
    mode: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    units: int
    watermark: str | None
    previous_watermark: str | None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (timestamps as ISO 8601 text), for XCom and logs."""
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        return data

    def summary(self) -> str:
        if not self.succeeded:
            return f"{self.source} -> {self.table}: FAILED after reading {self.rows_read} rows: {self.error}"
        line = (f"{self.source} -> {self.table} ({self.mode}): read {self.rows_read}, loaded {self.rows_loaded}, "
                f"quarantined {self.rows_quarantined} from {self.units} {'unit' if self.units == 1 else 'units'}")
        return line + (f"; watermark {self.watermark}" if self.watermark is not None else "")


@dataclass(frozen=True)
class _Unit:
    """One file, page or query result: ``relation`` selects its fields plus ``ROW`` (1-based position)."""

    origin: str
    relation: str
    page: int | None = None


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qualified(name: str, schema: str | None) -> tuple[str, str]:
    """``(SQL reference, dotted name for Warehouse.columns)`` of a table name, qualified by ``schema``."""
    parts = name.split(".")
    if len(parts) == 1 and schema:
        parts = [schema, name]
    return ".".join(_quote(p) for p in parts), ".".join(parts)


def _engine_type(target_type: str, dialect: str) -> str:
    """A type of the target warehouse (as ``Warehouse.columns`` reports it) as the DuckDB type to cast to."""
    if dialect == "duckdb":
        return target_type
    from sqlglot import exp

    try:
        return exp.DataType.build(target_type, dialect=dialect).sql("duckdb")
    except Exception:  # a type sqlglot does not know: load it as text, the target converts on insert
        return "VARCHAR"


def _is_text(sql_type: str) -> bool:
    return sql_type.upper().startswith(("VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR"))


def _typed(raw: str, raw_type: str, target: str) -> str:
    """SQL casting ``raw`` to ``target``: NULL when a non-empty value does not cast (the caller quarantines it)."""
    if _is_text(target):
        return raw if _is_text(raw_type) else f"CAST({raw} AS VARCHAR)"
    value = f"NULLIF(trim({raw}), '')" if _is_text(raw_type) else raw
    if target == "TIMESTAMP" and (_is_text(raw_type) or "TIME ZONE" in raw_type.upper()):
        # text with an offset is converted to UTC (the session time zone), text without one is read as UTC
        return f"TRY_CAST(TRY_CAST({value} AS TIMESTAMPTZ) AS TIMESTAMP)"
    cast = f"TRY_CAST({value} AS {target})"
    if target == "DOUBLE":
        return f"CASE WHEN isfinite({cast}) THEN {cast} END"
    return cast


class _Load:
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
        self.target, self.target_dotted = _qualified(layout.table, warehouse.schema)
        self.customer_table = customer_table
        self.types: dict[str, str] | None = None  # cast target per column, fixed when the table is prepared
        self.rows_read = self.rows_loaded = self.rows_quarantined = self.units = 0
        self.watermarks: list[str] = []
        self.temp = f"__segprovider_rows_{load_id[:12]}"
        self.quarantine = ledger.quarantine_table(warehouse)
        self.stage: str | None = None  # the target's staging table of upserted rows (other warehouses)

    def target_sql(self, duckdb_sql: str) -> None:
        """Run a statement written in DuckDB's dialect in the target warehouse."""
        self.warehouse.execute(render(duckdb_sql, self.dialect))

    def target_table(self, table: str) -> str:
        """A table reference as the target spells it (Snowflake: simple names folded to upper case)."""
        if self.dialect == "duckdb":
            return table
        import sqlglot
        from sqlglot import exp

        from airflow_segprovider.core.evaluate.dialects import to_sql

        return to_sql(sqlglot.parse_one(table, into=exp.Table, read="duckdb"), self.dialect)

    def transfer(self, select: str, table: str, columns: list[str]) -> None:
        """Append the rows of ``select`` (an engine query) to ``table`` of the target warehouse."""
        names = ", ".join(_quote(c) for c in columns)
        if self.local:
            self.engine.execute(f"INSERT INTO {table} ({names}) {select}")
            return
        from airflow_segprovider.ingest.transfer import load_batches

        load_batches(self.warehouse, self.target_table(table), columns,
                     self.engine.iter_batches(select, TRANSFER_BATCH_ROWS))

    # table ---------------------------------------------------------------------------------------
    def _prepare(self, native: Mapping[str, str]) -> dict[str, str]:
        """Create or widen the target table; return the type each column is cast to."""
        existing = {c.lower(): (c, t) for c, t in (self.warehouse.columns(self.target_dotted) or {}).items()}
        customer_key_type = None
        if self.layout.role != "customer":
            customers = self.warehouse.columns(_qualified(self.customer_table, self.warehouse.schema)[1]) or {}
            customer_key_type = {c.lower(): t for c, t in customers.items()}.get(self.layout.customer_key.lower())
        types: dict[str, str] = {}
        for column, model_type in self.layout.columns.items():
            if model_type is not None:
                types[column] = SQL_TYPES[model_type]
            elif column.lower() in existing:
                types[column] = _engine_type(existing[column.lower()][1], self.dialect)
            elif column == self.layout.customer_key and customer_key_type:
                types[column] = _engine_type(customer_key_type, self.dialect)  # keys join across tables: one type
            else:
                types[column] = native.get(column) or "VARCHAR"
        wanted = dict(types)
        if self.source.mode == "append":
            wanted[LOAD_COLUMN] = "VARCHAR"
        if not existing:
            columns = ", ".join(f"{_quote(c)} {t}" for c, t in wanted.items())
            self.target_sql(f"CREATE TABLE {self.target} ({columns})")  # DuckDB's types, rendered for the target
            logger.info("source %s: created table %s", self.source.name, self.target_dotted)
        else:
            for column, sql_type in wanted.items():
                if column.lower() not in existing:
                    self.target_sql(f"ALTER TABLE {self.target} ADD COLUMN {_quote(column)} {sql_type}")
        return types

    def prepare_outside_transaction(self) -> None:
        """Create or widen the table before the load's transaction where DDL cannot run inside one
        (Snowflake commits before DDL, BigQuery refuses DDL in a transaction).

        Columns the model does not type (keys) take the customer key's type, else VARCHAR, since
        no unit has been read yet. An empty table may remain when the load then fails; no rows do.
        """
        if self.dialect in _DDL_OUTSIDE_TRANSACTION:
            self.types = self._prepare({})

    # one unit --------------------------------------------------------------------------------------
    def apply(self, unit: _Unit) -> None:
        started = time.perf_counter()
        described = {row[0].lower(): (row[0], row[1]) for row in self.engine.query(f"DESCRIBE {unit.relation}")}
        fields: dict[str, tuple[str, str]] = {}  # model column -> (source field, its type)
        for column in self.layout.columns:
            if column.lower() in described:
                fields[column] = described[column.lower()]
            elif column in self.layout.required:
                raise TerminalIngestError(
                    f"{unit.origin} has no field {column!r}, which every row of {self.layout.table!r} needs "
                    f"(fields found: {', '.join(name for name, _ in described.values() if name != ROW)})",
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
            self.target_sql(f"DELETE FROM {self.target}")
            self.target_sql(f"DELETE FROM {self.quarantine} WHERE source = {text(self.source.name)}")
        types = self.types
        columns = list(fields)  # the columns this unit provides, in model order

        select = [f"{_quote(ROW)} AS __row"]
        select.append(f"{_quote(INVALID)} AS __invalid" if INVALID.lower() in described else "NULL AS __invalid")
        checks: list[tuple[str | None, str, str, str]] = []  # (column, raw SQL, condition, reason)
        for index, column in enumerate(columns):
            field, raw_type = fields[column]
            raw, value = f"r_{index}", f"v_{index}"
            select += [f"{_quote(field)} AS {raw}", f"{_typed(_quote(field), raw_type, types[column])} AS {value}"]
            present = f"NULLIF(trim({raw}), '') IS NOT NULL" if _is_text(raw_type) else f"{raw} IS NOT NULL"
            if not _is_text(types[column]):
                checks.append((column, raw, f"{present} AND {value} IS NULL",
                               _REASONS.get(types[column], f"not a valid {types[column]}")))
            if column in self.layout.required:
                checks.append((column, raw, f"NOT ({present})", "missing required value"))
        identity = [(column, f"r_{columns.index(column)}") for column in self.layout.identity if column in fields]
        key = " || ', ' || ".join(f"{text(column + '=')} || COALESCE(CAST({raw} AS VARCHAR), 'null')"
                                  for column, raw in identity) or "NULL"
        if watermark_field is not None:
            select.append(f"CAST({_quote(watermark_field[0])} AS VARCHAR) AS __w")
        bad = " OR ".join(["__invalid IS NOT NULL", *(f"(__invalid IS NULL AND {c})" for _, _, c, _ in checks)])
        self.engine.execute(
            f"CREATE OR REPLACE {self.scratch} {self.temp} AS SELECT *, {key} AS __key, ({bad}) AS __bad "
            f"FROM (SELECT {', '.join(select)} FROM ({unit.relation}) AS __segprovider_unit)")
        # (no try/finally around the temp tables: on failure the rollback drops them, and a DROP in an
        # aborted transaction would only hide the original error)
        read, rejected = self.engine.query(f"SELECT count(*), count(*) FILTER (WHERE __bad) FROM {self.temp}")[0]
        self._quarantine(unit, checks)
        self._write(unit, columns)
        if watermark_field is not None:
            best = self.engine.query(f"SELECT w FROM (SELECT __w AS w FROM {self.temp} WHERE __w IS NOT NULL) "
                                     f"ORDER BY {_WATERMARK_ORDER} LIMIT 1")
            self.watermarks += [best[0][0]] if best else []
        self.engine.execute(f"DROP TABLE {self.temp}")
        self.units += 1
        self.rows_read += read
        self.rows_loaded += read - rejected
        self.rows_quarantined += rejected
        logger.info("source %s: %s: read %d, loaded %d, quarantined %d in %.2fs", self.source.name, unit.origin,
                    read, read - rejected, rejected, time.perf_counter() - started)

    def _quarantine(self, unit: _Unit, checks: list[tuple[str | None, str, str, str]]) -> None:
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
            "ORDER BY __row, column_name", self.quarantine, list(ledger.QUARANTINE_COLUMNS))

    def _write(self, unit: _Unit, columns: list[str]) -> None:
        values = ", ".join(f"v_{i} AS {_quote(c)}" for i, c in enumerate(columns))
        valid = f"FROM {self.temp} WHERE NOT __bad"
        if self.source.mode == "append":
            identity = text(f"{self.source.name}:{unit.origin}")
            self.target_sql(f"DELETE FROM {self.target} WHERE {_quote(LOAD_COLUMN)} = {identity}")
            self.transfer(f"SELECT {values}, {identity} AS {_quote(LOAD_COLUMN)} {valid}", self.target,
                          [*columns, LOAD_COLUMN])
            return
        if self.source.mode == "replace":
            self.transfer(f"SELECT {values} {valid}", self.target, columns)
            return
        keys = [f"v_{columns.index(k)}" for k in self.source.key]
        latest = f"SELECT {values} {valid} QUALIFY row_number() OVER (PARTITION BY {', '.join(keys)} ORDER BY __row DESC) = 1"
        if self.dialect in _DDL_OUTSIDE_TRANSACTION:
            # no staging table (DDL): the adapter's upsert (Snowflake: UPDATE + INSERT, BigQuery: MERGE,
            # from typed rows inside the load's transaction), batch by batch
            import pyarrow as pa

            for batch in self.engine.iter_batches(latest, TRANSFER_BATCH_ROWS):
                self.warehouse.upsert(self.target_table(self.target), list(self.source.key),
                                      pa.Table.from_batches([batch]))
            return
        if self.local:
            stage = f"{self.temp}_latest"
            self.engine.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS {latest}")
        else:
            stage = self._stage()
            self.target_sql(f"DELETE FROM {stage}")
            self.transfer(latest, stage, columns)
            if self.dialect == "postgres":
                self.warehouse.execute(f"ANALYZE {stage}")
        match = " AND ".join(f"t.{_quote(k)} = u.{_quote(k)}" for k in self.source.key)
        updates = ", ".join(f"{_quote(c)} = u.{_quote(c)}" for c in columns if c not in self.source.key)
        if updates:
            self.target_sql(f"UPDATE {self.target} AS t SET {updates} FROM {stage} AS u WHERE {match}")
        self.target_sql(
            f"INSERT INTO {self.target} ({', '.join(_quote(c) for c in columns)}) "
            f"SELECT {', '.join(f'u.{_quote(c)}' for c in columns)} "
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
            definition = ", ".join(f"{_quote(c)} {t}" for c, t in self.types.items())
            self.stage = _quote(f"__segprovider_stage_{self.load_id[:12]}")
            self.target_sql(f"CREATE TEMP TABLE {self.stage} ({definition})")
        return self.stage

    def close(self) -> None:
        """Drop the staging table (within the transaction: a rollback drops it too where DDL is transactional)."""
        if self.stage is not None:
            self.target_sql(f"DROP TABLE {self.stage}")
            self.stage = None

    def final_watermark(self, previous: str | None) -> str | None:
        """The highest watermark seen, never lower than the previous one."""
        candidates = [w for w in [previous, *self.watermarks] if w is not None]
        if not candidates:
            return None
        values = ", ".join(f"({text(w)})" for w in candidates)
        best = self.engine.query(f"SELECT w FROM (VALUES {values}) AS v(w) ORDER BY {_WATERMARK_ORDER} LIMIT 1")
        return best[0][0]


# --- units of each kind --------------------------------------------------------------------------


def _file_units(source: Source, layout: TableLayout, root: Path) -> list[_Unit]:
    assert source.path is not None
    pattern = source.path if os.path.isabs(source.path) else str(root / source.path)
    files = sorted(path for path in glob.glob(pattern, recursive=True) if os.path.isfile(path))
    if not files:
        raise TransientIngestError(f"no file matches {pattern!r}", source=source.name,
                                   hint="check the source's path; retry once the files have arrived")
    units = []
    for path in files:
        try:
            origin = str(Path(path).resolve().relative_to(root.resolve()))
        except ValueError:
            origin = str(Path(path).resolve())
        if source.format == "csv":
            # The dialect is fixed, not sniffed: a sniffer can take a broken line for the header or skip
            # lines; fixed, DuckDB names the line of any malformed row and the load fails.
            columns = ", ".join(f"{text(name)}: 'VARCHAR'" for name in _csv_header(source, path))
            relation = (f"SELECT *, ordinality AS {ROW} FROM read_csv({text(path)}, auto_detect=false, "
                        f"columns={{{columns}}}, header=true, delim={text(source.delimiter or ',')}, quote='\"', "
                        "escape='\"', skip=0, comment='', strict_mode=true) WITH ORDINALITY")
        elif source.format == "parquet":
            relation = (f"SELECT *, file_row_number + 1 AS {ROW} FROM read_parquet({text(path)}, "
                        "file_row_number=true)")
        else:  # jsonl: every declared field read as text; a missing key is a null value
            columns = ", ".join(f"{text(c)}: 'VARCHAR'" for c in layout.columns)
            relation = (f"SELECT *, ordinality AS {ROW} FROM read_json({text(path)}, format='newline_delimited', "
                        f"columns={{{columns}}}) WITH ORDINALITY")
        units.append(_Unit(origin, relation))
    return units


def _csv_header(source: Source, path: str) -> list[str]:
    import csv

    with open(path, newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle, delimiter=source.delimiter or ","), None)
    if not header:
        raise TerminalIngestError(f"{path} has no header row", source=source.name,
                                  hint="CSV files start with a row of column names")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates or "" in header:
        raise TerminalIngestError(f"{path}: the header row has {'duplicate' if duplicates else 'empty'} column names "
                                  f"{duplicates or ['']}", source=source.name, hint="name every column once")
    return header


def _warehouse_unit(source: Source, warehouse: Warehouse, engine: DuckDBWarehouse, watermark: str | None,
                    load_id: str) -> _Unit:
    """The source's table or query as one unit.

    On DuckDB the engine reads it in place. On other warehouses the query runs there (in the
    warehouse's own dialect, as the user wrote it) and its result streams into an engine table in
    Arrow batches, typed from there like any file.
    """
    if source.query:
        base, origin = source.query, "query"
    else:
        assert source.from_table is not None
        base, origin = f"SELECT * FROM {_qualified(source.from_table, warehouse.schema)[0]}", source.from_table
    if source.incremental is not None and watermark is not None:
        base = (f"SELECT * FROM ({base}) AS __segprovider_all "
                f"WHERE {_quote(source.incremental.column)} > {text(watermark)}")
        origin += f" where {source.incremental.column} > {watermark}"
    if engine is warehouse:
        return _Unit(origin, f"SELECT *, row_number() OVER () AS {ROW} FROM ({base}) AS __segprovider_source")
    copy = f"__segprovider_source_{load_id[:12]}"
    created = False
    for batch in warehouse.iter_batches(base, TRANSFER_BATCH_ROWS):
        engine.connection.register("__segprovider_batch", batch)
        try:
            if created:
                engine.execute(f"INSERT INTO {copy} SELECT * FROM __segprovider_batch")
            else:
                engine.execute(f"CREATE OR REPLACE TABLE {copy} AS SELECT * FROM __segprovider_batch")
                created = True
        finally:
            engine.connection.unregister("__segprovider_batch")
    if not created:  # no rows and no batch to learn the columns from: an empty unit of the declared fields
        return _Unit(origin, f"SELECT NULL AS {ROW} WHERE FALSE")
    return _Unit(origin, f"SELECT *, row_number() OVER () AS {ROW} FROM {copy}")


def _rest_units(source: Source, layout: TableLayout, engine: DuckDBWarehouse, connection: Mapping[str, Any] | None,
                watermark: str | None, load_id: str) -> Iterator[_Unit]:
    from airflow_segprovider.ingest.rest import iter_pages, open_client, page_table

    fields = list(layout.columns)
    if source.incremental is not None and source.incremental.column not in fields:
        fields.append(source.incremental.column)
    client, first_path = open_client(source, connection)
    view = f"__segprovider_page_{load_id[:12]}"
    try:
        for page in iter_pages(source, client, first_path, watermark):
            engine.connection.register(view, page_table(page.records, fields, ROW, INVALID))
            try:
                yield _Unit(page.origin, f"SELECT * FROM {view}", page.number)
            finally:
                engine.connection.unregister(view)
    finally:
        client.close()


# --- the public entry points -----------------------------------------------------------------------


def _wrap(exc: BaseException, source: Source) -> IngestError | None:
    """The IngestError an exception means, or None for a programming error (re-raised as it is)."""
    import duckdb

    from airflow_segprovider.core.destination import DestinationError

    if isinstance(exc, IngestError):
        return exc
    if isinstance(exc, DestinationError):
        kind = TransientIngestError if exc.retryable else TerminalIngestError
        return kind(str(exc), source=source.name)
    if isinstance(exc, UnicodeDecodeError):
        return TerminalIngestError(f"a file is not UTF-8 text: {exc}", source=source.name,
                                   hint="export the file as UTF-8")
    if isinstance(exc, (duckdb.IOException, OSError)):
        return TransientIngestError(f"reading the source failed: {exc}", source=source.name)
    if isinstance(exc, duckdb.Error):
        # DuckDB's own advice (ignore_errors, null_padding...) would drop rows silently: keep only the diagnosis
        detail = str(exc).split("\nPossible fixes")[0].strip()
        return TerminalIngestError(f"the load failed in the warehouse: {detail}", source=source.name,
                                   hint="fix the file (or the query) and load again; nothing of this load was kept")
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "Error" in names and "DatabaseError" in names:  # a DB-API error of the target warehouse's driver
        if names & {"OperationalError", "InterfaceError"}:  # connection lost, server restarting, ...
            return TransientIngestError(f"the warehouse failed during the load: {exc}", source=source.name)
        return TerminalIngestError(f"the warehouse refused the load: {exc}", source=source.name,
                                   hint="check the table's existing column types against the data model; "
                                        "nothing of this load was kept")
    return None


def _engine_for(warehouse: Warehouse) -> DuckDBWarehouse:
    """The DuckDB that reads and types rows: the warehouse itself when it is DuckDB, else a private one."""
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

    if warehouse.dialect == "duckdb" and isinstance(warehouse, DuckDBWarehouse):
        return warehouse
    return DuckDBWarehouse(":memory:", schema="main")


def ingest_source(project: Project, warehouse: Warehouse, source_name: str, *,
                  connection: Mapping[str, Any] | None = None, now: dt.datetime | None = None,
                  files_root: str | Path | None = None) -> LoadResult:
    """Load one source of ``project`` into its table, in one transaction of ``warehouse``.

    ``warehouse`` is any :class:`~airflow_segprovider.core.warehouses.duckdb.Warehouse` (DuckDB, PostgreSQL,
    Snowflake, BigQuery): the table, the quarantine, the ledger and the watermark live there.

    :param source_name: a name from the project's ``sources:``.
    :param connection: for REST sources, the connection as a mapping (``host``, ``login``, ``password``,
        ``extra``); when None and the source names a ``connection_id``, it is read from
        ``AIRFLOW_CONN_<ID>`` (:func:`~airflow_segprovider.destinations.connection.connection_from_env`).
    :param now: the load's timestamp (``started_at``, ``finished_at``, quarantine times); default: the clock.
    :param files_root: folder relative file paths start from; default: the project folder.
    :raises TerminalIngestError: retrying cannot help (bad file, unknown source, refused credentials).
    :raises TransientIngestError: retrying later may (API failures after retries, files not there yet).
    """
    source = project.sources.get(source_name)
    if source is None:
        known = ", ".join(sorted(project.sources)) or "(none)"
        raise TerminalIngestError(f"project {project.name!r} declares no source {source_name!r}; known: {known}",
                                  source=source_name, hint="declare it under 'sources:' in the project")
    layout = table_layout(project.model, source)
    ledger.ensure_tables(warehouse)
    started_at = now or _utcnow()
    load_id = uuid.uuid4().hex
    previous = ledger.current_watermark(warehouse, source.name)
    engine = _engine_for(warehouse)
    load = _Load(warehouse, engine, source, layout, load_id, project.model.customer.table, started_at)
    try:
        if source.kind == "rest_api" and connection is None and source.connection_id:
            from airflow_segprovider.destinations.connection import connection_from_env

            connection = connection_from_env(source.connection_id, destination=source.name)
        load.prepare_outside_transaction()
        with warehouse.transaction():
            if source.kind == "file":
                units: Iterator[_Unit] | list[_Unit] = _file_units(source, layout, Path(files_root or project.root))
            elif source.kind == "warehouse_table":
                units = [_warehouse_unit(source, warehouse, engine, previous, load_id)]
            else:
                units = _rest_units(source, layout, engine, connection, previous, load_id)
            try:
                for unit in units:
                    load.apply(unit)
            finally:
                close = getattr(units, "close", None)
                if close is not None:
                    close()  # unregisters the page and closes the HTTP session now, not at garbage collection
            load.close()
            watermark = load.final_watermark(previous)
            result = LoadResult(source.name, layout.table, load_id, source.mode, "succeeded", started_at,
                                now or _utcnow(), load.rows_read, load.rows_loaded, load.rows_quarantined,
                                load.units, watermark, previous)
            ledger.record_load(warehouse, {**asdict(result), "table_name": layout.table})
    except Exception as exc:
        error = _wrap(exc, source)
        failed = LoadResult(source.name, layout.table, load_id, source.mode, "failed", started_at, now or _utcnow(),
                            load.rows_read, 0, 0, load.units, previous, previous, str(error or exc))
        try:
            ledger.record_load(warehouse, {**asdict(failed), "table_name": layout.table})
        except Exception:  # the original failure matters more than its ledger row
            logger.exception("source %s: could not record the failed load", source.name)
        if error is None:
            raise
        error.result = failed
        if error is exc:
            raise
        raise error from exc
    finally:
        if engine is not warehouse:
            engine.close()
    logger.info("%s", result.summary())
    return result


def ingest_all(project: Project, warehouse: Warehouse,
               connections: Mapping[str, Mapping[str, Any]] | None = None, *, sources: Sequence[str] | None = None,
               now: dt.datetime | None = None, files_root: str | Path | None = None) -> list[LoadResult]:
    """Load every source (or ``sources``) in declaration order, each in its own transaction.

    A failing source does not stop the others: its result has ``status == 'failed'`` and its ``error``.

    :param connections: connection mappings by connection id; sources whose connection is not
        in it read ``AIRFLOW_CONN_<ID>``.
    """
    results = []
    for name in sources or list(project.sources):
        source = project.sources.get(name)
        connection = (connections or {}).get(source.connection_id) if source and source.connection_id else None
        try:
            results.append(ingest_source(project, warehouse, name, connection=connection, now=now,
                                         files_root=files_root))
        except IngestError as exc:
            if exc.result is None:
                raise
            logger.error("%s", exc)
            results.append(exc.result)
    return results

"""Run a gate: validate a small DataFrame against the gate's Great Expectations suite.

:func:`run_gate` loads ``expectations/<gate>.json``, validates the frame in an
ephemeral GX context (pandas datasource, nothing persisted unless asked), and
returns a :class:`GateResult`: JSON-able for XCom, with a :meth:`~GateResult.summary`
naming each failed expectation and what it observed. With ``docs_dir`` it also
builds a Data Docs site there (``index.html``) and writes the validation results
as JSON beside it. :func:`evaluate_gate` builds the gate's query for a project,
runs it in the warehouse and calls :func:`run_gate`.

Great Expectations is imported inside the functions that need it: importing this
module stays cheap, and a DAG file that names a gate operator never loads GX.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.errors import SegproviderError
from airflow_segprovider.gates.queries import GateConfigError, check_gate

if TYPE_CHECKING:
    import pandas as pd

    from airflow_segprovider.core.project.spec import Project, Sync
    from airflow_segprovider.core.warehouses.base import Warehouse
    from airflow_segprovider.gates.sql_datasource import SqlDatasource

SUITE_DIR_ENV = "SEGPROVIDER_EXPECTATIONS_DIR"
DOCS_SITE = "segprovider"
RESULT_FILE = "validation_result.json"
GATE_RESULT_FILE = "gate_result.json"
MAX_SHOWN = 20  # unexpected rows and values kept per failed expectation


# --- results ----------------------------------------------------------------------------------


@dataclass
class FailedExpectation:
    """One expectation that did not hold.

    :param expectation_type: e.g. ``expect_column_values_to_be_between``.
    :param column: the column checked (``A,B`` for a column pair), None for table expectations.
    :param kwargs: the expectation's arguments with suite parameters resolved (the thresholds).
    :param observed_value: what an aggregate expectation measured (row count, ...).
    :param unexpected_count: rows that broke a per-row expectation, of ``element_count``.
    :param unexpected_values: the offending values (at most 20).
    :param unexpected_rows: the offending rows, identifying columns and checked values (at most 20).
    :param notes: what the expectation protects against (its ``meta.notes``).
    :param exception: why GX could not evaluate it, if it could not.
    :param batch: which part of the gate it belongs to (the sync id for per-sync thresholds).
    """

    expectation_type: str
    column: str | None
    kwargs: dict[str, Any]
    observed_value: Any = None
    unexpected_count: int | None = None
    element_count: int | None = None
    unexpected_values: list[Any] = field(default_factory=list)
    unexpected_rows: list[dict[str, Any]] = field(default_factory=list)
    notes: str = ""
    exception: str | None = None
    batch: str | None = None

    def describe(self) -> str:
        """Several lines: the expectation, its thresholds, what it observed and why it matters."""
        thresholds = ", ".join(f"{k}={_short(v)}" for k, v in self.kwargs.items()
                               if k not in ("column", "column_A", "column_B") and v is not None)
        head = f"{self.expectation_type}" + (f" on {self.column}" if self.column else "")
        head += f" ({thresholds})" if thresholds else ""
        if self.batch:
            head += f" [{self.batch}]"
        lines = [head]
        if self.exception:
            lines.append(f"    could not be evaluated: {self.exception}")
        elif self.unexpected_count is not None:
            lines.append(f"    {self.unexpected_count} of {self.element_count} rows unexpected")
            for row in self.unexpected_rows:
                lines.append("    observed: " + " ".join(f"{k}={_short(v)}" for k, v in row.items()))
            if not self.unexpected_rows and self.unexpected_values:
                lines.append(f"    observed values: {', '.join(_short(v) for v in self.unexpected_values)}")
        else:
            lines.append(f"    observed value: {_short(self.observed_value)}")
        if self.notes:
            lines.append(f"    protects against: {self.notes}")
        return "\n".join(lines)


@dataclass
class GateResult:
    """The outcome of one gate: JSON-able (:meth:`to_dict`) and readable (:meth:`summary`).

    :param parameters: the suite parameters each batch was validated with, by batch label.
    :param rows: rows validated (things checked: tables, attributes, syncs).
    :param docs_index: the Data Docs ``index.html``, when built.
    :param result_path: the validation results JSON, when written.
    :param as_of: the evaluation time the gate checked (ISO 8601), when run by :func:`evaluate_gate`.
    """

    gate: str
    success: bool
    statistics: dict[str, Any]
    failed: list[FailedExpectation] = field(default_factory=list)
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: int = 0
    docs_index: str | None = None
    result_path: str | None = None
    as_of: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        values = dict(data)
        values["failed"] = [FailedExpectation(**f) for f in values.get("failed", [])]
        return cls(**values)

    def summary(self) -> str:
        stats = self.statistics
        evaluated = stats.get("evaluated_expectations", 0)
        name = f"gate {self.gate}" + (f" at {self.as_of}" if self.as_of else "")
        if self.success:
            return f"{name} passed: {evaluated} expectations held on {self.rows} rows"
        lines = [f"{name} failed: {stats.get('unsuccessful_expectations', len(self.failed))} of "
                 f"{evaluated} expectations failed on {self.rows} rows"]
        lines += ["- " + failure.describe() for failure in self.failed]
        if self.docs_index:
            lines.append(f"Data Docs: {self.docs_index}")
        return "\n".join(lines)


class GateFailed(SegproviderError):
    """A gate's expectations did not hold; retrying cannot help (the data must change first).

    Carries the :class:`GateResult` (``.result``); its message is the result's summary.
    Picklable: it travels as the result's dict.
    """

    retryable = False

    def __init__(self, result: GateResult | Mapping[str, Any]) -> None:
        self.result = result if isinstance(result, GateResult) else GateResult.from_dict(result)
        self.gate = self.result.gate
        super().__init__(self.result.summary())

    def __reduce__(self):
        return (type(self), (self.result.to_dict(),))


@dataclass(frozen=True)
class GateBatch:
    """One frame validated with one set of suite parameters (``label`` names it in results and Data Docs).

    With ``query`` (and no frame) the batch is validated by GX's SQL datasource in the warehouse
    (see :mod:`.sql_datasource`): ``query`` becomes a GX query asset and ``rows`` is its row count.
    """

    label: str
    frame: pd.DataFrame | None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    query: str | None = None
    rows: int | None = None


# --- suites -----------------------------------------------------------------------------------


def default_suite_dir() -> Path:
    """``$SEGPROVIDER_EXPECTATIONS_DIR``, else the suites shipped with the package or beside it."""
    if os.environ.get(SUITE_DIR_ENV):
        return Path(os.environ[SUITE_DIR_ENV])
    here = Path(__file__).resolve()
    for candidate in (here.parent / "expectations", here.parents[2] / "expectations"):
        if candidate.is_dir():
            return candidate
    return Path("expectations")


def load_suite(gate: str, suite_dir: str | Path | None = None) -> dict[str, Any]:
    """The suite JSON of ``gate`` as a dict.

    :raises GateConfigError: the file is missing or not a suite.
    """
    check_gate(gate)
    path = Path(suite_dir if suite_dir is not None else default_suite_dir()) / f"{gate}.json"
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GateConfigError(f"no expectation suite for gate {gate!r} at {path}; set {SUITE_DIR_ENV} or pass "
                              "suite_dir to the folder holding <gate>.json") from None
    except json.JSONDecodeError as exc:
        raise GateConfigError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    if not isinstance(suite, dict) or not isinstance(suite.get("expectations"), list):
        raise GateConfigError(f"{path}: not an expectation suite (needs a list of 'expectations')")
    suite.setdefault("name", gate)
    return suite


def suite_parameters(suite: Mapping[str, Any]) -> dict[str, Any]:
    """The suite's runtime parameters with their defaults (``meta.parameters``)."""
    declared = (suite.get("meta") or {}).get("parameters") or {}
    return {name: (spec or {}).get("default") for name, spec in declared.items()}


def resolve_parameters(gate: str, suite: Mapping[str, Any], parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with ``parameters``.

    :raises GateConfigError: a parameter the suite does not declare (a typo would silently keep the default).
    """
    values = suite_parameters(suite)
    unknown = sorted(set(parameters or {}) - set(values))
    if unknown:
        raise GateConfigError(f"gate {gate!r} has no parameter {', '.join(map(repr, unknown))}; its parameters: "
                              f"{', '.join(sorted(values)) or 'none'}")
    for name, value in (parameters or {}).items():
        values[name] = _threshold(gate, name, value)
    return values


def _threshold(gate: str, name: str, value: Any) -> float | int | None:
    """A number (or None); numeric text, as templated Airflow arguments give, is read as a number."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none", "null"):
            return None
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                pass
    raise GateConfigError(f"gate {gate!r}: parameter {name!r} must be a number or null, got {value!r}")


# --- running ----------------------------------------------------------------------------------


def run_gate(gate: str, frame: pd.DataFrame, parameters: Mapping[str, Any] | None = None, *,
             suite_dir: str | Path | None = None, docs_dir: str | Path | None = None) -> GateResult:
    """Validate ``frame`` against the suite of ``gate``.

    :param parameters: suite parameters (thresholds), over the suite's defaults.
    :param suite_dir: folder of the suites (default :func:`default_suite_dir`).
    :param docs_dir: build Data Docs here (``index.html``) and write the validation results JSON
        beside them; None writes nothing.
    :raises GateConfigError: unknown gate or parameter, missing suite.
    """
    return run_gate_batches(gate, [GateBatch(gate, frame, dict(parameters or {}))], suite_dir=suite_dir,
                            docs_dir=docs_dir)


def run_gate_batches(gate: str, batches: Sequence[GateBatch], *, suite_dir: str | Path | None = None,
                     docs_dir: str | Path | None = None, as_of: dt.datetime | None = None,
                     datasource: SqlDatasource | None = None) -> GateResult:
    """Validate several frames against one suite, each with its own parameters, as one gate result.

    :param as_of: the evaluation time the frames describe, recorded in the result.
    :param datasource: GX's SQL datasource for batches given as ``query`` (metrics computed in the warehouse).
    """
    if not batches:
        raise GateConfigError(f"gate {gate!r}: nothing to validate (no batch given)")
    suite_json = load_suite(gate, suite_dir)
    resolved = [(batch, resolve_parameters(gate, suite_json, batch.parameters)) for batch in batches]
    row_key = list((suite_json.get("meta") or {}).get("row_key") or [])

    gx = _import_gx()
    from great_expectations.core.run_identifier import RunIdentifier

    context = _ephemeral_context()
    if docs_dir is not None:
        Path(docs_dir).mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(site_name=DOCS_SITE, site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
    suite = context.suites.add(gx.ExpectationSuite(**suite_json))
    validation = None
    if any(batch.query is None for batch in batches):
        definition = context.data_sources.add_pandas("segprovider").add_dataframe_asset(gate) \
            .add_batch_definition_whole_dataframe("gate_frame")
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=gate, data=definition, suite=suite))
    sql_source = None
    if any(batch.query is not None for batch in batches):
        if datasource is None:
            raise GateConfigError(f"gate {gate!r}: a batch is a query but no SQL datasource was given")
        sql_source = datasource.add_to(context, "segprovider_sql")

    failed: list[FailedExpectation] = []
    raw: list[dict[str, Any]] = []
    totals = {"evaluated_expectations": 0, "successful_expectations": 0, "unsuccessful_expectations": 0}
    rows = 0
    run_time = dt.datetime.now(dt.timezone.utc)
    for index, (batch, parameters) in enumerate(resolved):
        label = batch.label if len(resolved) > 1 else None
        run_id = RunIdentifier(run_name=batch.label, run_time=run_time)
        if batch.query is not None:
            # GX runs the metrics as SQL over the query in the warehouse; unexpected rows come back
            # identified by the suite's row key
            frame = None
            rows += int(batch.rows or 0)
            asset = sql_source.add_query_asset(f"{gate}_{index}", query=batch.query)
            definition = asset.add_batch_definition_whole_table("gate_query")
            outcome = context.validation_definitions.add(gx.ValidationDefinition(
                name=f"{gate}_{index}", data=definition, suite=suite)).run(
                expectation_parameters=parameters, run_id=run_id,
                result_format={"result_format": "COMPLETE", "unexpected_index_column_names": row_key})
        else:
            frame = batch.frame.reset_index(drop=True)  # unexpected indexes become row positions
            rows += len(frame)
            outcome = validation.run(batch_parameters={"dataframe": frame}, expectation_parameters=parameters,
                                     result_format="COMPLETE", run_id=run_id)
        for key in totals:
            totals[key] += int(outcome.statistics.get(key) or 0)
        failed += [_failure(r, frame, row_key, label) for r in outcome.results if not r.success]
        raw.append({"batch": batch.label, "parameters": parameters, "result": outcome.to_json_dict()})
    evaluated = totals["evaluated_expectations"]
    statistics = {**totals, "success_percent": 100.0 * totals["successful_expectations"] / evaluated
                  if evaluated else 100.0}
    result = GateResult(gate, not failed, statistics, failed,
                        {batch.label: parameters for batch, parameters in resolved}, rows,
                        as_of=as_of.isoformat() if as_of else None)
    if docs_dir is not None:
        docs = Path(docs_dir)
        context.build_data_docs(site_names=[DOCS_SITE])
        result.docs_index = str(docs / "index.html")
        result.result_path = str(docs / RESULT_FILE)
        (docs / RESULT_FILE).write_text(json.dumps({"gate": gate, "validations": _jsonable(raw)}, indent=2),
                                        encoding="utf-8")
        (docs / GATE_RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    return result


def _import_gx():
    """Import GX without its ~200 INFO lines about API docs registration in every task log."""
    import logging

    noisy = logging.getLogger("great_expectations._docs_decorators")
    if noisy.level == logging.NOTSET:
        noisy.setLevel(logging.WARNING)
    import great_expectations

    return great_expectations


def _ephemeral_context():
    """An in-memory GX context: no files, no usage statistics, no progress bars in task logs."""
    gx = _import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(), analytics_enabled=False,
                               progress_bars=ProgressBarsConfig(globally=False))
    return gx.get_context(project_config=config, mode="ephemeral")


def _failure(outcome: Any, frame: pd.DataFrame | None, row_key: Sequence[str],
             label: str | None) -> FailedExpectation:
    config = outcome.expectation_config
    kwargs = {k: _jsonable(v) for k, v in config.kwargs.items() if k != "batch_id"}
    meta = config.meta or {}
    result = outcome.result or {}
    checked = [kwargs[k] for k in ("column", "column_A", "column_B") if isinstance(kwargs.get(k), str)]
    if frame is None:  # SQL datasource: GX identified the rows by the row key (plus the checked column)
        found = [row for row in (result.get("unexpected_index_list") or [])[:MAX_SHOWN] if isinstance(row, Mapping)]
        unexpected_rows = [
            {column: value for column, value in _jsonable(row).items() if not _is_missing(value) or column in checked}
            for row in found]
    else:
        shown = [c for c in dict.fromkeys([*row_key, *checked, *(meta.get("show") or [])]) if c in frame.columns]
        indexes = [i for i in (result.get("unexpected_index_list") or [])[:MAX_SHOWN] if i in frame.index]
        unexpected_rows = [
            {column: value for column, value in row.items() if not _is_missing(value) or column in checked}
            for row in _jsonable(frame.loc[indexes, shown].to_dict("records"))
        ] if shown else []
    return FailedExpectation(
        expectation_type=config.type,
        column=",".join(checked) or None,
        kwargs=kwargs,
        observed_value=_jsonable(result.get("observed_value")),
        unexpected_count=result.get("unexpected_count"),
        element_count=result.get("element_count"),
        unexpected_values=_jsonable(list(result.get("partial_unexpected_list") or [])[:MAX_SHOWN]),
        unexpected_rows=unexpected_rows,
        notes=str(meta.get("notes", "")),
        exception=_exception_message(outcome.exception_info),
        batch=label,
    )


def _exception_message(info: Any) -> str | None:
    """GX reports errors flat (``raised_exception``) or per metric; either way, the messages joined."""
    if not info:
        return None
    if isinstance(info, Mapping) and "raised_exception" in info:
        return str(info.get("exception_message")) if info.get("raised_exception") else None
    if isinstance(info, Mapping):
        messages = [m for m in (_exception_message(v) for v in info.values()) if m]
        return "; ".join(dict.fromkeys(messages)) or None
    return getattr(info, "exception_message", None) if getattr(info, "raised_exception", False) else None


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy and pandas scalars, timestamps, decimals, NA and NaN become JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) else float(value)
    if isinstance(value, Decimal):
        return float(value)
    import pandas as pd

    try:
        if pd.isna(value):  # NA, NaT, numpy NaN
            return None
    except (TypeError, ValueError):  # not a scalar
        pass
    if isinstance(value, (dt.datetime, dt.date)):  # pandas.Timestamp too
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return str(value)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


# --- from a project ---------------------------------------------------------------------------


def evaluate_gate(gate: str, project: Project, warehouse: Warehouse, as_of: str | dt.datetime | dt.date, *,
                  docs_dir: str | Path | None = None, suite_dir: str | Path | None = None, phase: str = "before",
                  syncs: Sequence[str] | None = None, sample_rows: int | None = None,
                  payloads: Mapping[str, str] | None = None, gx_path: str = "auto", **parameters: Any) -> GateResult:
    """Build the gate's query for ``project`` at ``as_of``, run it in ``warehouse``, and validate the rows.

    Where Great Expectations' SQL datasource works for the warehouse (PostgreSQL), GX computes the
    metrics in the warehouse over the gate's query; elsewhere the query's small result is validated
    as a pandas DataFrame (see :mod:`.sql_datasource`). Both paths give the same :class:`GateResult`.

    :param gate: one of ``freshness``, ``types``, ``segment_size``, ``consent``, ``cross_system_counts``.
    :param docs_dir: where to build Data Docs and write the results (see :func:`run_gate`).
    :param suite_dir: folder of the suites; default the project's ``expectations/`` folder when it holds
        ``<gate>.json``, else :func:`default_suite_dir`.
    :param phase: ``cross_system_counts`` only: ``before`` or ``after`` the sync.
    :param syncs: per-sync gates only: check just these syncs (ids, segments or destinations); default
        every sync that declares the gate.
    :param sample_rows: ``types`` only: customer rows sampled (default 10,000).
    :param payloads: ``consent`` only: sync id -> a DuckDB query of ``customer_key`` to check instead of
        the sync engine's plan.
    :param gx_path: ``auto`` (GX's SQL datasource where proven, else pandas), ``sql`` or ``pandas``.
    :param parameters: suite parameters. For ``segment_size`` a sync's own ``min_size``, ``max_size`` and
        ``max_size_change`` win over these, which win over the suite's defaults.
    :raises GateConfigError: unknown gate, phase or parameter, or nothing the gate can check.
    """
    from airflow_segprovider.core.evaluate.dialects import quoted_table
    from airflow_segprovider.core.evaluate.engine import parse_as_of
    from airflow_segprovider.gates.frames import query_frame
    from airflow_segprovider.gates.sql_datasource import sql_datasource

    check_gate(gate)
    try:
        datasource = sql_datasource(warehouse, gate, gx_path)
    except ValueError as exc:
        raise GateConfigError(str(exc)) from None
    at = parse_as_of(as_of)
    materialized: list[str] = []

    def batch(label: str, sql: str, batch_parameters: Mapping[str, Any]) -> GateBatch:
        if datasource is None:
            return GateBatch(label, query_frame(warehouse, sql), batch_parameters)
        # The gate query runs once, into a small result table GX then computes every metric on
        # (in the warehouse); as a subquery it would run again for each of GX's metric queries.
        # Committed, because GX reads through its own connection; dropped after the validation.
        table = quoted_table(f"segprovider_gate_{uuid.uuid4().hex[:16]}", schema)
        warehouse.execute(f"CREATE TABLE {table} AS {sql}")  # sql is already in the warehouse's dialect
        materialized.append(table)
        count = warehouse.query(f"SELECT COUNT(*) FROM {table}")[0][0]
        return GateBatch(label, None, batch_parameters, query=f"SELECT * FROM {table}", rows=int(count))

    if suite_dir is None and (Path(project.root) / "expectations" / f"{gate}.json").is_file():
        suite_dir = Path(project.root) / "expectations"
    schema = warehouse.schema
    try:
        batches = _gate_batches(gate, project, warehouse, at, batch, datasource is not None, phase=phase,
                                syncs=syncs, sample_rows=sample_rows, payloads=payloads, parameters=parameters)
        return run_gate_batches(gate, batches, suite_dir=suite_dir, docs_dir=docs_dir, as_of=at,
                                datasource=datasource)
    finally:
        for table in materialized:
            warehouse.execute(f"DROP TABLE IF EXISTS {table}")


def _gate_batches(gate: str, project: Project, warehouse: Warehouse, at: dt.datetime, batch: Any, in_sql: bool, *,
                  phase: str, syncs: Sequence[str] | None, sample_rows: int | None,
                  payloads: Mapping[str, str] | None, parameters: Mapping[str, Any]) -> list[GateBatch]:
    """The gate's batches: frames (pandas path) or warehouse queries (``in_sql``: GX's SQL datasource)."""
    from airflow_segprovider.gates import queries
    from airflow_segprovider.gates.frames import add_ages, profile_types, query_frame
    from airflow_segprovider.gates.sql_datasource import age_hours_sql

    dialect, schema = warehouse.dialect, warehouse.schema
    batches: list[GateBatch]
    if gate == "freshness":
        include_loads = bool(project.sources) and warehouse.columns(queries.SOURCE_LOADS) is not None
        sql = queries.freshness_sql(project, at, dialect=dialect, schema=schema, include_loads=include_loads)
        if not in_sql:
            batches = [GateBatch(gate, add_ages(query_frame(warehouse, sql), at), parameters)]
        else:
            batches = [batch(gate, age_hours_sql(sql, at), parameters)]
    elif gate == "types":
        attributes = queries.type_attributes(project, _select(project, syncs))
        existing = {c.lower(): c for c in (warehouse.columns(project.model.customer.table) or {})}
        present = list(dict.fromkeys(existing[a.column.lower()] for a in attributes if a.column.lower() in existing))
        if present:
            sample = query_frame(warehouse, queries.types_sql(
                project, present, sample_rows=sample_rows or queries.DEFAULT_SAMPLE_ROWS, dialect=dialect,
                schema=schema))
            sample.columns = [_declared(c, attributes) for c in sample.columns]
        else:
            import pandas as pd

            sample = pd.DataFrame()
        batches = [GateBatch(gate, profile_types(sample, attributes), parameters)]
    elif gate == "segment_size":
        chosen = queries.gate_syncs(project, gate, syncs)
        sql = queries.segment_size_sql(project, at, chosen, dialect=dialect, schema=schema)
        if not in_sql:
            frame = query_frame(warehouse, sql)
            batches = [GateBatch(sync.id, frame[frame["sync_id"] == sync.id], {**parameters, **_size_settings(sync)})
                       for sync in chosen] or [GateBatch(gate, frame, parameters)]
        else:
            from airflow_segprovider.core.state.membership import text_literal

            batches = [batch(sync.id, f"SELECT * FROM ({sql}) AS sizes WHERE sync_id = {text_literal(sync.id)}",
                             {**parameters, **_size_settings(sync)}) for sync in chosen] or [
                batch(gate, sql, parameters)]
    elif gate == "consent":
        from airflow_segprovider.core.sync.engine import SyncEngine

        SyncEngine(project, warehouse).ensure_tables()  # the plan reads the sync state, empty before a first sync
        chosen = queries.gate_syncs(project, gate, syncs)
        batches = [batch(gate, queries.consent_sql(project, at, chosen, dialect=dialect, schema=schema,
                                                   payloads=payloads), parameters)]
    else:
        from airflow_segprovider.core.sync.engine import SyncEngine
        from airflow_segprovider.gates.staging import ensure_counts_table

        SyncEngine(project, warehouse).ensure_tables()
        ensure_counts_table(warehouse)
        chosen = queries.gate_syncs(project, gate, syncs)
        batches = [batch(gate, queries.cross_system_counts_sql(project, at, chosen, phase, dialect=dialect,
                                                               schema=schema), parameters)]
    return batches


def _select(project: Project, selectors: Sequence[str] | None) -> list[Sync] | None:
    if not selectors:
        return None
    from airflow_segprovider.core.sync.engine import select_syncs

    return select_syncs(project, selectors)


def _declared(column: str, attributes: Sequence[Any]) -> str:
    """The model's spelling of a column the warehouse spells in another case."""
    for attribute in attributes:
        if attribute.column.lower() == column.lower():
            return attribute.column
    return column


def _size_settings(sync: Sync) -> dict[str, Any]:
    settings = {"min_size": sync.min_size, "max_size": sync.max_size, "max_size_change": sync.max_size_change}
    return {name: value for name, value in settings.items() if value is not None}

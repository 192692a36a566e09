"""Run a gate: validate a small DataFrame against the gate's Great Expectations suite.

:func:`run_gate` loads ``expectations/<gate>.json``, validates the frame in an
ephemeral GX context (pandas datasource, nothing persisted unless asked), and
returns a :class:`GateResult`: JSON-able for XCom, with a :meth:`~GateResult.summary`
naming each failed expectation and what it observed. With ``docs_dir`` it also
builds a Data Docs site there (``index.html``) and writes the validation results
as JSON beside it. :func:`~.evaluation.evaluate_gate` builds the gate's query for a project,
runs it in the warehouse and calls :func:`run_gate`.

Great Expectations is imported inside the functions that need it (:func:`~.gx.import_gx`, which
keeps GX's chatter out of task logs): importing this module stays cheap, and a DAG file that names
a gate operator never loads GX.

Per gate run: one ephemeral context, one suite, one validation definition (pandas path; run once
per batch with the batch's parameters), one Data Docs build. On the example data (50,000 customers,
2 cores) a gate's own work is 0.25-0.9 s: Data Docs 0.15-0.25 s, each batch's validation 0.03 s.
What a gate task waits for is GX's import (3-5 s with compiled bytecode), not the validation.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_segprovider.gates.gx import import_gx
from airflow_segprovider.gates.queries import GateConfigError
from airflow_segprovider.gates.results import FailedExpectation, GateBatch, GateResult, jsonable
from airflow_segprovider.gates.suites import load_suite, resolve_parameters

if TYPE_CHECKING:
    import pandas as pd

    from airflow_segprovider.gates.sql_datasource import SqlDatasource

DOCS_SITE = "segprovider"
RESULT_FILE = "validation_result.json"
GATE_RESULT_FILE = "gate_result.json"
MAX_SHOWN = 20  # unexpected rows and values kept per failed expectation


def run_gate(gate: str, frame: pd.DataFrame, parameters: Mapping[str, Any] | None = None, *,
             suite_dir: str | Path | None = None, docs_dir: str | Path | None = None) -> GateResult:
    """Validate ``frame`` against the suite of ``gate``.

    :param parameters: suite parameters (thresholds), over the suite's defaults.
    :param suite_dir: folder of the suites (default :func:`~.suites.default_suite_dir`).
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

    gx = import_gx()

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
    run_time = dt.datetime.now(dt.UTC)
    for index, (batch, parameters) in enumerate(resolved):
        # a batch named for something other than the gate (a sync) is named in its failures, even alone:
        # a segment gate holds just the failed syncs' segments by these names
        label = batch.label if len(resolved) > 1 or batch.label != gate else None
        run_id = gx.RunIdentifier(run_name=batch.label, run_time=run_time)
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
        (docs / RESULT_FILE).write_text(json.dumps({"gate": gate, "validations": jsonable(raw)}, indent=2),
                                        encoding="utf-8")
        (docs / GATE_RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
    return result


def _ephemeral_context():
    """An in-memory GX context: no files, no usage statistics, no progress bars in task logs."""
    gx = import_gx()
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
    kwargs = {k: jsonable(v) for k, v in config.kwargs.items() if k != "batch_id"}
    meta = config.meta or {}
    result = outcome.result or {}
    checked = [kwargs[k] for k in ("column", "column_A", "column_B") if isinstance(kwargs.get(k), str)]
    if frame is None:  # SQL datasource: GX identified the rows by the row key (plus the checked column)
        found = [row for row in (result.get("unexpected_index_list") or [])[:MAX_SHOWN] if isinstance(row, Mapping)]
        unexpected_rows = [
            {column: value for column, value in jsonable(row).items() if not _is_missing(value) or column in checked}
            for row in found]
    else:
        shown = [c for c in dict.fromkeys([*row_key, *checked, *(meta.get("show") or [])]) if c in frame.columns]
        indexes = [i for i in (result.get("unexpected_index_list") or [])[:MAX_SHOWN] if i in frame.index]
        unexpected_rows = [
            {column: value for column, value in row.items() if not _is_missing(value) or column in checked}
            for row in jsonable(frame.loc[indexes, shown].to_dict("records"))
        ] if shown else []
    return FailedExpectation(
        expectation_type=config.type,
        column=",".join(checked) or None,
        kwargs=kwargs,
        observed_value=jsonable(result.get("observed_value")),
        unexpected_count=result.get("unexpected_count"),
        element_count=result.get("element_count"),
        unexpected_values=jsonable(list(result.get("partial_unexpected_list") or [])[:MAX_SHOWN]),
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

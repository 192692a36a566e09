"""Evaluate a gate for a project: build its query, run it in the warehouse, validate the rows.

:func:`evaluate_gate` is what the gate operator and the CLI call. Where Great
Expectations' SQL datasource works for the warehouse (PostgreSQL), the gate query's
small result is materialized in the warehouse and GX computes every metric there;
elsewhere the result is fetched and validated as a pandas DataFrame (see
:mod:`.sql_datasource`). Both paths give the same :class:`~.results.GateResult`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.evaluate.customers import customer_source_table
from airflow_segprovider.core.state.gates import create_gate_result_sql, drop_gate_result_sql, gate_result_table
from airflow_segprovider.core.state.ingest import LOADS_TABLE
from airflow_segprovider.gates.queries import GateConfigError, check_gate
from airflow_segprovider.gates.results import GateBatch
from airflow_segprovider.gates.runner import run_gate_batches

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project, Sync
    from airflow_segprovider.core.warehouses.base import Warehouse
    from airflow_segprovider.gates.results import GateResult


def evaluate_gate(gate: str, project: Project, warehouse: Warehouse, as_of: str | dt.datetime | dt.date, *,
                  docs_dir: str | Path | None = None, suite_dir: str | Path | None = None, phase: str = "before",
                  syncs: Sequence[str] | None = None, sample_rows: int | None = None,
                  payloads: Mapping[str, str] | None = None, gx_path: str = "auto", **parameters: Any) -> GateResult:
    """Build the gate's query for ``project`` at ``as_of``, run it in ``warehouse``, and validate the rows.

    Where Great Expectations' SQL datasource works for the warehouse (PostgreSQL), GX computes the
    metrics in the warehouse over the gate's query; elsewhere the query's small result is validated
    as a pandas DataFrame (see :mod:`.sql_datasource`). Both paths give the same :class:`~.results.GateResult`.

    :param gate: one of ``freshness``, ``types``, ``segment_size``, ``consent``, ``cross_system_counts``.
    :param docs_dir: where to build Data Docs and write the results (see :func:`~.runner.run_gate`).
    :param suite_dir: folder of the suites; default the project's ``expectations/`` folder when it holds
        ``<gate>.json``, else :func:`~.suites.default_suite_dir`.
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
        table = gate_result_table(schema)
        warehouse.execute(create_gate_result_sql(table, sql))  # sql is already in the warehouse's dialect
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
            warehouse.execute(drop_gate_result_sql(table))


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
        include_loads = bool(project.sources) and warehouse.columns(LOADS_TABLE) is not None
        sql = queries.freshness_sql(project, at, dialect=dialect, schema=schema, include_loads=include_loads)
        if not in_sql:
            batches = [GateBatch(gate, add_ages(query_frame(warehouse, sql), at), parameters)]
        else:
            batches = [batch(gate, age_hours_sql(sql, at), parameters)]
    elif gate == "types":
        attributes = queries.type_attributes(project, _select(project, syncs))
        # the values the evaluation at `at` reads (point-in-time attributes: the history's)
        existing = {c.lower(): c for c in (warehouse.columns(customer_source_table(project, at)) or {})}
        present = list(dict.fromkeys(existing[a.column.lower()] for a in attributes if a.column.lower() in existing))
        if present:
            sample = query_frame(warehouse, queries.types_sql(
                project, present, sample_rows=sample_rows or queries.DEFAULT_SAMPLE_ROWS, dialect=dialect,
                schema=schema, as_of=at))
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
            from airflow_segprovider.core.sql.dialects import text_literal

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
        from airflow_segprovider.core.state.gates import ensure_counts_table
        from airflow_segprovider.core.sync.engine import SyncEngine

        SyncEngine(project, warehouse).ensure_tables()
        ensure_counts_table(warehouse)
        chosen = queries.gate_syncs(project, gate, syncs)
        batches = [batch(gate, queries.cross_system_counts_sql(project, at, chosen, phase, dialect=dialect,
                                                               schema=schema), parameters)]
    return batches


def _select(project: Project, selectors: Sequence[str] | None) -> list[Sync] | None:
    if not selectors:
        return None
    from airflow_segprovider.core.sync import select_syncs

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

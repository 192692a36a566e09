"""The insights app: JSON endpoints under ``/segprovider/api/`` and the pages that chart them.

**Security.** A plugin's FastAPI app is mounted by the API server without any of Airflow's
authentication, so every route here declares Airflow's own dependencies: ``get_user`` (the JWT the UI
uses, from ``Authorization: Bearer`` or the ``_token`` cookie the UI's login sets: 401 without one) and,
for everything about a DAG, ``requires_access_dag("GET")`` on the ``dag_id`` of the path (403 for a user
the auth manager does not let read that DAG). The DAG list shows only the DAGs the user may read. Queries
are ``SELECT`` only, with request values as bound parameters (:mod:`.queries`); how the warehouse is
opened without getting in a run's way is in :mod:`.access`.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import TYPE_CHECKING, Any

from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import GetUserDep, get_user, requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from airflow_segprovider.plugins.insights import gates as gate_files
from airflow_segprovider.plugins.insights import pages, queries
from airflow_segprovider.plugins.insights.access import (
    SEGMENTS_TAG,
    DagTarget,
    NotSegmentsDagError,
    ResultCache,
    WarehouseBusyError,
    dag_target,
    load_target_project,
    open_warehouse,
)
from airflow_segprovider.plugins.insights.urls import URL_PREFIX

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

VIEWS = ("segments", "overlap", "syncs", "gates", "drift", "customer")
READ_DAG = [Depends(requires_access_dag("GET"))]
_cache = ResultCache()


def _tags(session: Session, dag_id: str) -> list[str]:
    from airflow.models.dag import DagModel, DagTag
    from sqlalchemy import select

    if session.get(DagModel, dag_id) is None:
        raise HTTPException(404, f"DAG {dag_id!r} not found")
    return list(session.scalars(select(DagTag.name).where(DagTag.dag_id == dag_id)))


def _target(session: Session, dag_id: str) -> DagTarget:
    return dag_target(dag_id, _tags(session, dag_id))


def _as_of(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    from airflow_segprovider.core.errors import SegproviderError
    from airflow_segprovider.core.evaluate.engine import parse_as_of

    try:
        return parse_as_of(value)
    except (SegproviderError, ValueError) as exc:
        raise HTTPException(400, f"as_of: {exc}") from None


def _schema(target: DagTarget) -> str | None:
    project = load_target_project(target)
    return project.warehouse.schema if project is not None else None


def _segments(target: DagTarget, **_: Any) -> dict[str, Any]:
    from airflow_segprovider.core.evaluate.describe import describe_rule

    project = load_target_project(target)
    with open_warehouse(target, _schema(target)) as warehouse:
        series = queries.snapshot_series(warehouse)
        arms = queries.arm_series(warehouse)
    segments = []
    names = project.evaluation_order() if project is not None else []
    for name in [*names, *sorted(set(series) - set(names))]:
        spec = project.segments.get(name) if project is not None else None
        segments.append({
            "segment": name, "description": spec.description if spec else "",
            "rule": describe_rule(spec.rule) if spec else [],
            "priority_group": spec.priority_group if spec else None,
            "higher_priority": list(spec.higher_priority) if spec else [],
            "split": [{"arm": a.name, "percent": a.percent} for a in spec.split.arms] if spec and spec.split else [],
            "snapshots": series.get(name, []),
            "arms": arms.get(name, {}),
        })
    return {"segments": segments, "project": project.name if project else None}


def _overlap(target: DagTarget, as_of: str | None = None, **_: Any) -> dict[str, Any]:
    project = load_target_project(target)
    at = _as_of(as_of)
    with open_warehouse(target, _schema(target)) as warehouse:
        dates = queries.snapshot_dates(warehouse)
        if at is None and dates:
            at = dt.datetime.fromisoformat(dates[0])
        matrix = queries.overlap(warehouse, at) if at is not None else {"segments": [], "matrix": []}
        removals = queries.priority_removals(warehouse, at) if at is not None else []
    groups = [{"group": g.name, "segments": list(g.segments)} for g in project.priority_groups.values()] \
        if project is not None else []
    return {"as_of": at.isoformat() if at else None, "as_of_dates": dates, **matrix, "priority_groups": groups,
            "removals": removals}


def _syncs(target: DagTarget, **_: Any) -> dict[str, Any]:
    with open_warehouse(target, _schema(target)) as warehouse:
        return {"syncs": queries.sync_runs(warehouse), "rejected": queries.rejected_records(warehouse)}


def _drift(target: DagTarget, **_: Any) -> dict[str, Any]:
    with open_warehouse(target, _schema(target)) as warehouse:
        return {"counts": queries.destination_counts(warehouse), "reports": queries.drift_reports(warehouse),
                "reconcile": queries.reconcile_runs(warehouse)}


def _customer(target: DagTarget, segment: str | None = None, customer: str | None = None,
              as_of: str | None = None, **_: Any) -> dict[str, Any]:
    project = load_target_project(target)
    segments = list(project.segments) if project is not None else []
    if not customer:
        return {"segments": segments, "explanation": None, "history": None}
    from airflow_segprovider.core.errors import EvaluationError
    from airflow_segprovider.core.evaluate.explain import explain

    with open_warehouse(target, _schema(target)) as warehouse:
        at = _as_of(as_of)
        if at is None:
            dates = queries.snapshot_dates(warehouse)
            at = dt.datetime.fromisoformat(dates[0]) if dates else None
        explanation: dict[str, Any] | None = None
        if project is not None and segment and at is not None:
            try:
                found = explain(project, warehouse, segment, customer, at)
                explanation = {"member": found.member, "arm": found.arm, "as_of": at.isoformat(),
                               "lines": found.lines}
            except EvaluationError as exc:
                explanation = {"error": str(exc)}
        history = queries.customer_history(warehouse, customer)
    return {"segments": segments, "segment": segment, "customer": customer, "explanation": explanation,
            "history": history}


def _gates(target: DagTarget, run_id: str | None = None, **_: Any) -> dict[str, Any]:
    return {"gates": gate_files.gate_results(target.dag_id, run_id), "docs_root": str(gate_files.docs_root())}


_READERS = {"segments": _segments, "overlap": _overlap, "syncs": _syncs, "gates": _gates, "drift": _drift,
            "customer": _customer}


def read_view(target: DagTarget, view: str, **arguments: Any) -> dict[str, Any]:
    """``{"dag_id", "view", "read_at", "stale", "data"}`` of one view (cached answers while the warehouse is busy)."""
    key = (target.dag_id, view, tuple(sorted((k, v) for k, v in arguments.items() if v is not None)))
    try:
        answer = _cache.read(key, functools.partial(_READERS[view], target, **arguments))
    except WarehouseBusyError as exc:
        raise HTTPException(503, f"{exc}; no earlier answer to show yet: try again in a few seconds",
                            headers={"Retry-After": "5"}) from None
    except FileNotFoundError as exc:
        answer = {"data": None, "read_at": None, "stale": False, "message": str(exc)}
    return {"dag_id": target.dag_id, "view": view, "model": target.model, **answer}


def _segments_dags(session: Session, user: Any) -> list[dict[str, Any]]:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.models.dag import DagTag
    from sqlalchemy import select

    readable = get_auth_manager().get_authorized_dag_ids(user=user, method="GET", session=session)
    dag_ids = sorted(set(session.scalars(select(DagTag.dag_id).where(DagTag.name == SEGMENTS_TAG))) & readable)
    return [{"dag_id": dag_id, "tags": _tags(session, dag_id)} for dag_id in dag_ids]


def create_app() -> FastAPI:
    """The app Airflow mounts at ``/segprovider``."""
    app = FastAPI(title="segprovider insights", description=__doc__, docs_url=None, redoc_url=None)

    @app.get("/api/dags")
    def api_dags(session: SessionDep, user: GetUserDep) -> dict[str, Any]:
        return {"dags": _segments_dags(session, user)}

    @app.get("/api/dags/{dag_id}/{view}", dependencies=READ_DAG)
    def api_view(dag_id: str, view: str, session: SessionDep, as_of: str | None = Query(None),
                 segment: str | None = Query(None), customer: str | None = Query(None),
                 run_id: str | None = Query(None)) -> JSONResponse:
        if view not in VIEWS:
            raise HTTPException(404, f"unknown view {view!r}; views: {', '.join(VIEWS)}")
        try:
            target = _target(session, dag_id)
        except NotSegmentsDagError as exc:
            raise HTTPException(404, str(exc)) from None
        return JSONResponse(read_view(target, view, as_of=as_of, segment=segment, customer=customer,
                                      run_id=run_id))

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, session: SessionDep, user: GetUserDep) -> HTMLResponse:
        return HTMLResponse(pages.index_page(_segments_dags(session, user)))

    @app.get("/dags/{dag_id}", response_class=HTMLResponse, dependencies=READ_DAG)
    def dag_page(dag_id: str, session: SessionDep, run_id: str | None = Query(None)) -> HTMLResponse:
        try:
            target = _target(session, dag_id)
        except NotSegmentsDagError as exc:
            return HTMLResponse(pages.not_segments_page(dag_id, str(exc)))
        return HTMLResponse(pages.overview_page(target, run_id))

    @app.get("/dags/{dag_id}/docs/{path:path}", dependencies=READ_DAG)
    def data_docs(dag_id: str, path: str, session: SessionDep) -> FileResponse:
        try:
            _target(session, dag_id)  # a DAG that exists and is a segments DAG, as every other view requires
        except NotSegmentsDagError as exc:
            raise HTTPException(404, str(exc)) from None
        found = gate_files.docs_file(dag_id, path)
        if found is None:
            raise HTTPException(404, "no such Data Docs file")
        return FileResponse(found)

    @app.get("/dags/{dag_id}/{view}", response_class=HTMLResponse, dependencies=READ_DAG)
    def view_page(dag_id: str, view: str, session: SessionDep, as_of: str | None = Query(None),
                  segment: str | None = Query(None), customer: str | None = Query(None),
                  run_id: str | None = Query(None)) -> HTMLResponse:
        if view not in VIEWS:
            raise HTTPException(404, f"unknown view {view!r}")
        try:
            target = _target(session, dag_id)
        except NotSegmentsDagError as exc:
            return HTMLResponse(pages.not_segments_page(dag_id, str(exc)))
        try:
            answer = read_view(target, view, as_of=as_of, segment=segment, customer=customer, run_id=run_id)
        except HTTPException as exc:
            return HTMLResponse(pages.message_page(dag_id, view, str(exc.detail)), status_code=exc.status_code,
                                headers=exc.headers)
        return HTMLResponse(pages.view_page(view, answer))

    @app.get("/static/plotly.min.js", dependencies=[Depends(get_user)])
    def plotly_js() -> Response:
        return Response(pages.plotly_js(), media_type="application/javascript",
                        headers={"Cache-Control": "private, max-age=86400"})

    return app


__all__ = ["URL_PREFIX", "VIEWS", "create_app", "read_view"]

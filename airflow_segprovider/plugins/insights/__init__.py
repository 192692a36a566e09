"""Segment insights inside the Airflow UI: sizes over time, overlaps, syncs, gates, drift and a customer lookup.

A FastAPI app mounted by Airflow's API server at ``/segprovider`` (the plugin's ``fastapi_apps``), with
JSON endpoints under ``/segprovider/api/`` and HTML pages whose charts Plotly draws from the data the
page embeds; ``plotly.min.js`` is served from the ``plotly`` wheel, so nothing is loaded from a CDN.

Every Airflow process imports the plugin, and only the API server serves the app: :class:`LazyInsightsApp`
is a plain ASGI callable that imports :mod:`.app` (FastAPI, the core, the queries) on its first request.

How requests are read, secured and kept out of a run's way is described in :mod:`.app` and
:mod:`.access`.
"""

from __future__ import annotations

from typing import Any

from airflow_segprovider.plugins.insights.urls import URL_PREFIX

__all__ = ["URL_PREFIX", "LazyInsightsApp"]


class LazyInsightsApp:
    """An ASGI app that builds the real one (:func:`.app.create_app`) on its first call."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if self._app is None:
            from airflow_segprovider.plugins.insights.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)

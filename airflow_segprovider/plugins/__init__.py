"""The provider's Airflow plugin (registered through the ``airflow.plugins`` entry point).

Loaded by every Airflow process, so importing it stays cheap: each part imports what it needs
when Airflow calls it. The insights app (:mod:`.insights`) is built on its first request, in the API
server only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin

from airflow_segprovider.plugins import pool_guard
from airflow_segprovider.plugins.insights import URL_PREFIX, LazyInsightsApp


class SegproviderPlugin(AirflowPlugin):
    """The plugin of airflow-segprovider.

    * :mod:`.pool_guard` (a scheduler listener) fails a run whose warehouse pool is missing;
    * :mod:`.insights`: segment sizes, overlaps, syncs, gates, drift and a customer lookup, at
      ``/segprovider`` in the API server, in the UI's navigation ("Segments") and on every DAG's and
      DAG run's page (a DAG that is not a segments DAG says so).
    """

    name = "segprovider"
    listeners: ClassVar[list[Any]] = [pool_guard]
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": LazyInsightsApp(), "url_prefix": URL_PREFIX, "name": "segprovider insights"}]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {"name": "Segments", "href": f"{URL_PREFIX}/", "destination": "nav", "url_route": "segments",
         "category": "browse"},
        {"name": "Segments", "href": f"{URL_PREFIX}/dags/{{DAG_ID}}", "destination": "dag",
         "url_route": "segments_dag"},
        {"name": "Segments", "href": f"{URL_PREFIX}/dags/{{DAG_ID}}?run_id={{RUN_ID}}", "destination": "dag_run",
         "url_route": "segments_dag_run"},
    ]

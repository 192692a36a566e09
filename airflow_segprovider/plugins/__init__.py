"""The provider's Airflow plugin (registered through the ``airflow.plugins`` entry point).

Loaded by every Airflow process, so importing it stays cheap: each part imports what it needs
when Airflow calls it.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_segprovider.plugins import pool_guard


class SegproviderPlugin(AirflowPlugin):
    """Listeners of airflow-segprovider: :mod:`.pool_guard` fails a run whose warehouse pool is missing."""

    name = "segprovider"
    listeners = [pool_guard]

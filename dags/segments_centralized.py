"""The centralized rule engine: every segment defined once, evaluated in the warehouse, synced as changes.

Built from the example segments project shipped in the package (``airflow_segprovider.example``). Connections used (create them in
Airflow; nothing is looked up when this file is parsed):

* ``segprovider_warehouse``: the warehouse (``duckdb`` connection, host = database file path);
* ``segprovider_mailchimp``, ``segprovider_hubspot``, ``segprovider_meta``: the destinations;
* ``segprovider_alerts``: where failed gates and syncs are reported (http webhook, Slack or SMTP).
"""

from __future__ import annotations

from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.factory.centralized import build_centralized_dag

PROJECT = EXAMPLE_PROJECT

dag = build_centralized_dag(PROJECT, dag_id="segments_centralized")

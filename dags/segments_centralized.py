"""The centralized rule engine: every segment defined once, evaluated in the warehouse, synced as changes.

Built from the example segments project shipped in the package (``airflow_segprovider.example``). Connections used (create them in
Airflow; nothing is looked up when this file is parsed):

* ``segprovider_warehouse``: the warehouse (``duckdb`` connection, host = database file path);
* ``segprovider_mailchimp``, ``segprovider_hubspot``, ``segprovider_meta``: the destinations;
* ``segprovider_alerts``: where failed gates and syncs are reported (http webhook, Slack or SMTP).

It also needs the Airflow pool ``segprovider_duckdb`` with one slot (``airflow pools set segprovider_duckdb 1
"..."``) and landing files under ``$SEGPROVIDER_DATA_DIR`` (``segprovider land`` writes them, dated today).
"""

from __future__ import annotations

from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.example.landing import default_data_dir
from airflow_segprovider.factory.centralized import build_centralized_dag

PROJECT = EXAMPLE_PROJECT

# landing files: `segprovider land` writes them there ($SEGPROVIDER_DATA_DIR, else $AIRFLOW_HOME/segprovider_data)
dag = build_centralized_dag(PROJECT, dag_id="segments_centralized", files_root=str(default_data_dir()))

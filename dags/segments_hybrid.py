"""The hybrid model: a central attribute hub pushes attributes to the tools, and each tool segments for itself.

Built from the example segments project shipped in the package (its ``hub.yml``). Connections used
(nothing is looked up when this file is parsed):

* ``segprovider_warehouse``: the warehouse (``duckdb`` connection, host = database file path);
* ``segprovider_mailchimp``, ``segprovider_hubspot``: the spokes the hub pushes to;
* ``segprovider_alerts``: where failed gates, pushes and drift are reported.
"""

from __future__ import annotations

from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.example.landing import default_data_dir
from airflow_segprovider.factory.hybrid import build_hybrid_dag

PROJECT = EXAMPLE_PROJECT

# landing files: `segprovider land` writes them there ($SEGPROVIDER_DATA_DIR, else $AIRFLOW_HOME/segprovider_data)
dag = build_hybrid_dag(PROJECT, dag_id="segments_hybrid", files_root=str(default_data_dir()))

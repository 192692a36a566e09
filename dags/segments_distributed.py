"""The distributed list synchronization model: pull, compare, resolve, push, log, never loop.

For teams whose segment lists live in the tools themselves (edited in Mailchimp, in the CRM):
built from the ``reconcile:`` section of the example segments project shipped in the package (``airflow_segprovider.example``).
Connections used (create them in Airflow; nothing is looked up when this file is parsed):

* ``segprovider_warehouse``: where pulls, decisions, the audit log and the sync state live;
* ``segprovider_mailchimp``, ``segprovider_hubspot``, ``segprovider_meta``: the destinations;
* ``segprovider_alerts``: where a stopped reconcile (change-set gate) or a failed push is reported.
"""

from __future__ import annotations

from airflow_segprovider.example import EXAMPLE_PROJECT
from airflow_segprovider.factory.distributed import build_distributed_dag

PROJECT = EXAMPLE_PROJECT

dag = build_distributed_dag(PROJECT, dag_id="segments_distributed")

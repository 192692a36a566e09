"""Provider metadata, registered once through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_segprovider import __version__


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow (``airflow providers list``, connection forms, docs).

    The connection types and their forms are derived from the connectors' field specs
    (:mod:`airflow_segprovider.hooks.connection_form`), so Airflow 3.2+ renders the forms
    without importing the hooks.
    """
    from airflow_segprovider.hooks.connection_form import provider_connection_types

    return {
        "package-name": "airflow-segprovider",
        "name": "Segprovider",
        "description": "One segmentation logic for marketing data: define each audience once, evaluate it in "
                       "the warehouse, and sync membership changes to email, CRM and ad platforms.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Segprovider",
                "external-doc-url": "https://github.com/airflow-segprovider/airflow-segprovider",
                "tags": ["software"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Segprovider",
                "python-modules": [
                    "airflow_segprovider.hooks.destination",
                    "airflow_segprovider.hooks.warehouse",
                ],
            }
        ],
        "connection-types": provider_connection_types(),
    }

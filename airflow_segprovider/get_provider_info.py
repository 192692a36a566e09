"""Provider metadata, registered once through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_segprovider import __version__


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow (``airflow providers list``, connection forms, docs)."""
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
    }

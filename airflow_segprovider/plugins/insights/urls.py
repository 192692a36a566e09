"""Where Airflow mounts the insights app; kept apart so the pages name it without importing the package."""

from __future__ import annotations

#: ``fastapi_apps[*]["url_prefix"]`` of the plugin, and the start of every link the pages make.
URL_PREFIX = "/segprovider"

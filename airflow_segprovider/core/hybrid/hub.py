"""The hub a project declares, and the small helpers every hub module shares."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from airflow_segprovider.core.hybrid.errors import HubError

if TYPE_CHECKING:
    from airflow_segprovider.core.project.hybrid import Hub
    from airflow_segprovider.core.project.spec import Project


def utc_now() -> dt.datetime:
    """Now, in UTC, as a naive timestamp (as the hub's tables store it)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def require_hub(project: Project) -> Hub:
    if project.hub is None:
        raise HubError(f"project {project.name!r} declares no 'hub:'; the hybrid model needs one (see the "
                       "segments language reference, 'The hybrid model')")
    return project.hub


def quoted_name(name: str, schema: str | None) -> str:
    """``schema.table`` as :meth:`Warehouse.columns` takes it."""
    return name if "." in name or not schema else f"{schema}.{name}"

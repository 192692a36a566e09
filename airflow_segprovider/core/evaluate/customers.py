"""The customer relation every reader of customer attributes goes through.

One function names where the customer attributes valid at an ``as_of`` are read from. Today it is
the customer table itself (its current values); point-in-time attributes replace the body, and every
reader (the compiler, incremental evaluation's change detection, explain, sync identities, the hub,
gates, the distributed model) follows without change.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlglot import exp

from airflow_segprovider.core.sql.expressions import table_ref

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project


def customer_relation(project: Project, schema: str | None, as_of: dt.datetime | None,
                      alias: str | None = "c") -> exp.Expression:
    """The customers with the attribute values valid at ``as_of`` (naive UTC; None: the current values).

    A relation with the customer table's columns, usable in a ``FROM`` clause under ``alias``.
    """
    del as_of  # the customer table holds current values only
    return table_ref(project.model.customer.table, schema, alias=alias)

"""The ``segment_size`` gate's query: each sync's segment (or arm) size, and its change since the previous snapshot."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from airflow_segprovider.core.sql.dialects import quoted_table as table_ref
from airflow_segprovider.core.sql.dialects import render, text_literal, ts_literal
from airflow_segprovider.core.state.membership import MEMBERSHIPS, SNAPSHOTS
from airflow_segprovider.gates.queries.common import no_rows

if TYPE_CHECKING:
    from airflow_segprovider.core.project.spec import Project, Sync

_SIZE_COLUMNS = ("sync_id", "segment", "arm", "destination", "members", "previous_as_of", "previous_members")


def segment_size_sql(project: Project, as_of: dt.datetime, syncs: Sequence[Sync], *, dialect: str = "duckdb",
                     schema: str | None = None) -> str:
    """One row per sync: members at ``as_of`` (NULL without a snapshot), the previous snapshot's size,
    and ``change_fraction`` = ``|members - previous| / max(previous, 1)`` (NULL for a first snapshot).

    A sync of a split arm is sized by its arm's members, read from the membership store.
    """
    snapshots, memberships = table_ref(SNAPSHOTS, schema), table_ref(MEMBERSHIPS, schema)
    parts = []
    for sync in syncs:
        segment = text_literal(sync.segment)
        if sync.arm:
            arm = text_literal(sync.arm)
            members = (f"CASE WHEN s.segment IS NULL THEN NULL ELSE (SELECT COUNT(*) FROM {memberships} AS m "
                       f"WHERE m.segment = {segment} AND m.as_of = s.as_of AND m.arm = {arm}) END")
            previous = (f"CASE WHEN s.previous_as_of IS NULL THEN NULL ELSE (SELECT COUNT(*) FROM {memberships} "
                        f"AS m WHERE m.segment = {segment} AND m.as_of = s.previous_as_of AND m.arm = {arm}) END")
        else:
            arm, members, previous = "CAST(NULL AS VARCHAR)", "s.members", "p.members"
        parts.append(
            f"SELECT {text_literal(sync.id)} AS sync_id, {segment} AS segment, {arm} AS arm, "
            f"{text_literal(sync.destination)} AS destination, {members} AS members, "
            f"s.previous_as_of AS previous_as_of, {previous} AS previous_members "
            f"FROM (SELECT 1 AS one) AS one "
            f"LEFT JOIN {snapshots} AS s ON s.segment = {segment} AND s.as_of = {ts_literal(as_of)} "
            f"LEFT JOIN {snapshots} AS p ON p.segment = {segment} AND p.as_of = s.previous_as_of")
    rows = " UNION ALL ".join(parts) if parts else no_rows(
        {"sync_id": "VARCHAR", "segment": "VARCHAR", "arm": "VARCHAR", "destination": "VARCHAR",
         "members": "BIGINT", "previous_as_of": "TIMESTAMP", "previous_members": "BIGINT"})
    return render(
        f"SELECT {', '.join(_SIZE_COLUMNS)}, CASE WHEN previous_members IS NULL OR members IS NULL THEN NULL "
        f"ELSE CAST(ABS(members - previous_members) AS DOUBLE) / GREATEST(previous_members, 1) END "
        f"AS change_fraction FROM ({rows}) AS sizes", dialect)

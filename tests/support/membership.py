"""Tampering with a stored snapshot, for tests that need a segment to shrink without new data."""

from __future__ import annotations

import datetime as dt
from typing import Iterable

from airflow_segprovider.core.sql.dialects import in_list, text_literal, ts_literal
from airflow_segprovider.core.state.membership import BITS, WORDS


def remove_members(warehouse, segment: str, as_of: dt.datetime, keep: Iterable[str] = ()) -> None:
    """Take every member of ``segment``'s ``as_of`` snapshot out of it, except the keys in ``keep``.

    Clears the segment's bit in the packed store (DuckDB's SQL), as an evaluation that found
    fewer members would have written it.
    """
    kept = list(keep)
    spare = f" AND w.customer_key NOT IN {in_list(kept)}" if kept else ""
    warehouse.execute(
        f"UPDATE {WORDS} AS w SET bits = w.bits - b.mask FROM {BITS} AS b "
        f"WHERE b.write_id = w.write_id AND b.word = w.word AND b.segment = {text_literal(segment)} "
        f"AND b.as_of = {ts_literal(as_of)} AND (w.bits & b.mask) <> 0{spare}")


def to_row_per_member_layout(warehouse) -> None:
    """Turn the store back into an earlier version's layout: one ``segprovider_memberships`` table
    with a row per member (segment, customer_key, as_of, run_id, arm), and no packed tables."""
    from airflow_segprovider.core.sql.dialects import render
    from airflow_segprovider.core.state.membership import MEMBERSHIPS

    for statement in (
            f"CREATE TABLE segprovider_rows_tmp AS SELECT segment, customer_key, as_of, run_id, arm FROM {MEMBERSHIPS}",
            f"DROP VIEW {MEMBERSHIPS}", f"DROP TABLE {WORDS}", f"DROP TABLE {BITS}",
            f"ALTER TABLE segprovider_rows_tmp RENAME TO {MEMBERSHIPS}"):
        warehouse.execute(render(statement, warehouse.dialect))

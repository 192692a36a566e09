"""Differential tests: the SQL engine against the plain-Python reference evaluator.

Hypothesis writes random projects (rules nested a few levels deep over every
operator of every type, event aggregates with windows and filters, segment
references, consent channels, priority groups, splits) as YAML, loads them
through validation, and evaluates them over small random tables full of nulls,
timestamps sitting exactly on window bounds, events after ``as_of``, customers
without events and consent histories with ties. Members and split arms of
every segment must equal the reference's.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st

from support.engine_harness import engine_members
from support.random_cases import draw_random_case
from support.reference_evaluator import reference_members

#: CI runs a fixed, derandomized set of examples; set this to hunt with fresh random ones.
EXPLORE_EXAMPLES = int(os.environ.get("SEGPROVIDER_FUZZ_EXAMPLES", "0"))

def _explain(segment: str, documents: dict[str, Any], tables: dict[str, list[dict]], engine: dict[str, Any],
             reference: dict[str, Any]) -> str:
    """What a failing example needs for a by-hand reproduction: the rule and the rows of the customers in doubt."""
    definition = next(s for s in documents["segments"] if s["name"] == segment)
    doubtful = {k for k in engine.keys() | reference.keys() if engine.get(k, "-") != reference.get(k, "-")}
    lines = [f"segment {segment!r} differs: engine-only {sorted(engine.keys() - reference.keys())}, "
             f"reference-only {sorted(reference.keys() - engine.keys())}, "
             f"arm differences {sorted(k for k in engine.keys() & reference.keys() if engine[k] != reference[k])}",
             f"definition: {definition}", f"groups: {documents['priority_groups']}", f"syncs: {documents['syncs']}"]
    key_columns = {"customers": "customer_id", "events": "customer_id", "app_log": "cid", "orders": "customer_id",
                   "consents": "customer_id"}
    for table, column in key_columns.items():
        for row in tables[table]:
            if row[column] in doubtful:
                lines.append(f"  {table}: {row}")
    return "\n".join(lines)


@settings(max_examples=EXPLORE_EXAMPLES or 200, derandomize=not EXPLORE_EXAMPLES, database=None, deadline=None,
          phases=[Phase.explicit, Phase.generate, Phase.shrink], print_blob=bool(EXPLORE_EXAMPLES),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(data=st.data())
def test_engine_agrees_with_reference_on_random_projects(data: st.DataObject) -> None:
    as_of_given, as_of, documents, tables, project = draw_random_case(data)
    engine = engine_members(project, tables, as_of_given)
    reference = reference_members(project, tables, as_of)
    note(f"as_of given as {as_of_given!r}")
    for segment in project.segments:
        size = len(reference[segment])
        event("segment size: " + ("empty" if size == 0 else "everyone" if size == len(tables["customers"]) else "some"))
        assert engine[segment] == reference[segment], _explain(segment, documents, tables, engine[segment],
                                                               reference[segment])


"""Incremental evaluation equals a full one, day after random day, on PostgreSQL (the server on this machine): see
:mod:`support.incremental_differential`."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from support.incremental_differential import SETTINGS, run_case


@settings(max_examples=5, **SETTINGS)
@given(data=st.data())
def test_incremental_equals_full_on_postgres(data: st.DataObject) -> None:
    run_case("postgres", data)

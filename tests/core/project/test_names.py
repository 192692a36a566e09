"""Names are at most 63 characters: lowercase letters, digits and underscores, starting with a letter."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_segprovider.core.errors import ProjectValidationError
from support.engine_harness import write_project

if TYPE_CHECKING:
    from pathlib import Path

RULE = {"attribute": "score", "op": "is_null"}


def test_a_63_character_name_is_accepted(tmp_path: Path) -> None:
    name = "a" * 63
    assert name in write_project(tmp_path, [{"name": name, "rule": RULE}]).segments


@pytest.mark.parametrize("name", ["a" * 64, "Upper", "1st", "_private", "with-dash", "émile"])
def test_other_names_are_rejected(tmp_path: Path, name: str) -> None:
    with pytest.raises(ProjectValidationError) as raised:
        write_project(tmp_path, [{"name": name, "rule": RULE}])
    assert [issue.code for issue in raised.value.issues] == ["SEG010"]

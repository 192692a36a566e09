"""Seeding and hand-editing the sandbox's state from a shell, without SQL.

``python -m segprovider_sandbox.admin OPERATION ...`` (also ``segprovider sandbox OPERATION ...``):
``seed``, ``lists``, ``members``, ``add-member``, ``remove-member``, ``set-attribute`` and
``set-status`` (:mod:`.cli`). :mod:`.directory` finds and counts lists across vendors; :mod:`.edits`
changes them through the store, as a person or the vendor itself would outside the API.
"""

from __future__ import annotations

from segprovider_sandbox.admin.cli import main

__all__ = ["main"]

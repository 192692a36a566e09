"""Privacy: the project-level suppression list and erasure ("forget"), with the tombstones it leaves.

:mod:`.suppression` keeps the list every sync honours; :mod:`.erasure` deletes a person from every
destination and every table the project keeps (:mod:`.tables`), leaving only a salted-hash tombstone.
The tables themselves are named in :mod:`airflow_segprovider.core.state.privacy`.
"""

from __future__ import annotations

from airflow_segprovider.core.privacy.erasure import (
    DestinationOutcome,
    ErasureError,
    ErasureResult,
    check_salt,
    forget,
    pending_erasures,
)
from airflow_segprovider.core.privacy.suppression import (
    Suppression,
    SuppressionError,
    add_suppression,
    list_suppressions,
    remove_suppression,
)

__all__ = [
    "DestinationOutcome",
    "ErasureError",
    "ErasureResult",
    "Suppression",
    "SuppressionError",
    "add_suppression",
    "check_salt",
    "forget",
    "list_suppressions",
    "pending_erasures",
    "remove_suppression",
]

"""What one load did: the row it records in the load ledger, as the caller gets it back."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class LoadResult:
    """What one load did, as recorded in ``segprovider_source_loads``.

    :param status: ``succeeded`` or ``failed`` (then ``error`` says why and nothing was committed).
    :param rows_read: rows read from the source; ``rows_loaded + rows_quarantined`` when it succeeded.
    :param rows_loaded: valid rows applied to the table (inserted, updated or appended).
    :param rows_quarantined: rows rejected into ``segprovider_quarantine``.
    :param units: files, pages or queries read.
    :param watermark: the incremental watermark after this load (unchanged when it failed).
    :param rows_forgotten: rows dropped because their customer was forgotten (an erasure's tombstone), never
        counted in ``rows_read``; reported, never recorded with their keys.
    """

    source: str
    table: str
    load_id: str
    mode: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    units: int
    watermark: str | None
    previous_watermark: str | None
    error: str | None = None
    rows_forgotten: int = 0

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (timestamps as ISO 8601 text), for XCom and logs."""
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        return data

    def summary(self) -> str:
        if not self.succeeded:
            return f"{self.source} -> {self.table}: FAILED after reading {self.rows_read} rows: {self.error}"
        line = (f"{self.source} -> {self.table} ({self.mode}): read {self.rows_read}, loaded {self.rows_loaded}, "
                f"quarantined {self.rows_quarantined} from {self.units} {'unit' if self.units == 1 else 'units'}")
        line += f"; dropped {self.rows_forgotten} rows of forgotten customers" if self.rows_forgotten else ""
        return line + (f"; watermark {self.watermark}" if self.watermark is not None else "")

"""What a gate run gives back: the failed expectations, the gate's result, and the error that carries it.

A :class:`GateResult` is JSON-able for XCom (:meth:`~GateResult.to_dict`) and readable
in logs and alerts (:meth:`~GateResult.summary`, naming each failed expectation and
what it observed). A :class:`GateBatch` is one frame (or warehouse query) validated
with one set of suite parameters.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.errors import TerminalError

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class FailedExpectation:
    """One expectation that did not hold.

    :param expectation_type: e.g. ``expect_column_values_to_be_between``.
    :param column: the column checked (``A,B`` for a column pair), None for table expectations.
    :param kwargs: the expectation's arguments with suite parameters resolved (the thresholds).
    :param observed_value: what an aggregate expectation measured (row count, ...).
    :param unexpected_count: rows that broke a per-row expectation, of ``element_count``.
    :param unexpected_values: the offending values (at most 20).
    :param unexpected_rows: the offending rows, identifying columns and checked values (at most 20).
    :param notes: what the expectation protects against (its ``meta.notes``).
    :param exception: why GX could not evaluate it, if it could not.
    :param batch: which part of the gate it belongs to (the sync id for per-sync thresholds).
    """

    expectation_type: str
    column: str | None
    kwargs: dict[str, Any]
    observed_value: Any = None
    unexpected_count: int | None = None
    element_count: int | None = None
    unexpected_values: list[Any] = field(default_factory=list)
    unexpected_rows: list[dict[str, Any]] = field(default_factory=list)
    notes: str = ""
    exception: str | None = None
    batch: str | None = None

    def describe(self) -> str:
        """Several lines: the expectation, its thresholds, what it observed and why it matters."""
        thresholds = ", ".join(f"{k}={_short(v)}" for k, v in self.kwargs.items()
                               if k not in ("column", "column_A", "column_B") and v is not None)
        head = f"{self.expectation_type}" + (f" on {self.column}" if self.column else "")
        head += f" ({thresholds})" if thresholds else ""
        if self.batch:
            head += f" [{self.batch}]"
        lines = [head]
        if self.exception:
            lines.append(f"    could not be evaluated: {self.exception}")
        elif self.unexpected_count is not None:
            lines.append(f"    {self.unexpected_count} of {self.element_count} rows unexpected")
            for row in self.unexpected_rows:
                lines.append("    observed: " + " ".join(f"{k}={_short(v)}" for k, v in row.items()))
            if not self.unexpected_rows and self.unexpected_values:
                lines.append(f"    observed values: {', '.join(_short(v) for v in self.unexpected_values)}")
        else:
            lines.append(f"    observed value: {_short(self.observed_value)}")
        if self.notes:
            lines.append(f"    protects against: {self.notes}")
        return "\n".join(lines)


@dataclass
class GateResult:
    """The outcome of one gate: JSON-able (:meth:`to_dict`) and readable (:meth:`summary`).

    :param parameters: the suite parameters each batch was validated with, by batch label.
    :param rows: rows validated (things checked: tables, attributes, syncs).
    :param docs_index: the Data Docs ``index.html``, when built.
    :param result_path: the validation results JSON, when written.
    :param as_of: the evaluation time the gate checked (ISO 8601), when run by :func:`~.evaluation.evaluate_gate`.
    """

    gate: str
    success: bool
    statistics: dict[str, Any]
    failed: list[FailedExpectation] = field(default_factory=list)
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: int = 0
    docs_index: str | None = None
    result_path: str | None = None
    as_of: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateResult:
        values = dict(data)
        values["failed"] = [FailedExpectation(**f) for f in values.get("failed", [])]
        return cls(**values)

    def summary(self) -> str:
        stats = self.statistics
        evaluated = stats.get("evaluated_expectations", 0)
        name = f"gate {self.gate}" + (f" at {self.as_of}" if self.as_of else "")
        if self.success:
            return f"{name} passed: {evaluated} expectations held on {self.rows} rows"
        failed = stats.get("unsuccessful_expectations", len(self.failed))
        lines = [f"{name} failed: {failed} of {evaluated} expectations failed on {self.rows} rows"]
        lines += ["- " + failure.describe() for failure in self.failed]
        if self.docs_index:
            lines.append(f"Data Docs: {self.docs_index}")
        return "\n".join(lines)


class GateFailed(TerminalError):
    """A gate's expectations did not hold; retrying cannot help (the data must change first).

    Carries the :class:`GateResult` (``.result``); its message is the result's summary.
    Picklable: it travels as the result's dict.
    """

    retryable = False

    def __init__(self, result: GateResult | Mapping[str, Any]) -> None:
        self.result = result if isinstance(result, GateResult) else GateResult.from_dict(result)
        self.gate = self.result.gate
        super().__init__(self.result.summary())

    def __reduce__(self):
        return (type(self), (self.result.to_dict(),))


@dataclass(frozen=True)
class GateBatch:
    """One frame validated with one set of suite parameters (``label`` names it in results and Data Docs).

    With ``query`` (and no frame) the batch is validated by GX's SQL datasource in the warehouse
    (see :mod:`.sql_datasource`): ``query`` becomes a GX query asset and ``rows`` is its row count.
    """

    label: str
    frame: pd.DataFrame | None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    query: str | None = None
    rows: int | None = None



def jsonable(value: Any) -> Any:
    """Plain JSON types: numpy and pandas scalars, timestamps, decimals, NA and NaN become JSON values."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) else float(value)
    if isinstance(value, Decimal):
        return float(value)
    import pandas as pd

    try:
        if pd.isna(value):  # NA, NaT, numpy NaN
            return None
    except (TypeError, ValueError):  # not a scalar
        pass
    if isinstance(value, (dt.datetime, dt.date)):  # pandas.Timestamp too
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return str(value)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)

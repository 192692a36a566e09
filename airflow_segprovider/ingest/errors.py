"""Ingest failures, split by whether retrying can help (the split the Airflow operator and the DAG key on)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.errors import SegproviderError, TerminalError, TransientError

if TYPE_CHECKING:
    from airflow_segprovider.ingest.result import LoadResult


class IngestError(SegproviderError):
    """A source could not be loaded; nothing of this load was committed.

    :param message: what failed, naming the source, the file or page, and the value at fault.
    :param source: the source's name.
    :param hint: how to fix it.
    :param result: the failed load as recorded in the ledger, when the load had started.
    """

    retryable: bool = False

    def __init__(self, message: str, *, source: str = "", hint: str | None = None,
                 result: LoadResult | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.hint = hint
        self.result = result

    def __str__(self) -> str:
        text = f"source '{self.source}': {self.message}" if self.source else self.message
        if self.hint:
            text += f"\n    fix: {self.hint}"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only fields travel in the state dict, so the error pickles across Airflow processes
        return (type(self), (self.message,), self.__dict__.copy())


class TerminalIngestError(IngestError, TerminalError):
    """Retrying cannot help: the files, the project's source definition or the credentials must change."""

    retryable = False


class TransientIngestError(IngestError, TransientError):
    """Retrying later may succeed: the API failed or throttled us, or the files have not arrived yet."""

    retryable = True

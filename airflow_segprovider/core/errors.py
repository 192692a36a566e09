"""Errors of the segments project language, in the style of dbt's compilation errors.

Every problem found in a project is a :class:`SpecIssue`: a stable code, what is
wrong, how to fix it, and where (file, line, column and the path inside the
document). Validation collects *all* issues and raises them together as one
:class:`ProjectValidationError`, so a data engineer fixes a project in one pass.

Every error the package raises is either a :class:`TerminalError` (retrying cannot fix it: a bad
project, bad data, a refused request, a blocked sync) or a :class:`TransientError` (retrying later
may succeed: a dropped connection, a 5xx, a throttled API). The split is dlt's; the Airflow operators
key on it once (terminal fails the task at once, transient is retried), and so does the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Location:
    """Where a definition lives: a file, a line and column (1-based), and a document path.

    :param file: path of the YAML file, as given to the loader (relative where possible).
    :param line: 1-based line, or None when the problem concerns the whole file.
    :param column: 1-based column, or None.
    :param path: dotted path inside the document, e.g. ``segments[2].rule.all[0].op``.
    """

    file: str
    line: int | None = None
    column: int | None = None
    path: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a segments project.

    :param code: stable identifier (``SEG0xx``), searchable in the docs.
    :param message: what is wrong, naming the offending value.
    :param location: where it is.
    :param hint: how to fix it.
    """

    code: str
    message: str
    location: Location
    hint: str = ""

    def format(self) -> str:
        text = f"{self.location}: {self.code} {self.message}"
        if self.location.path:
            text += f"\n    at {self.location.path}"
        if self.hint:
            text += f"\n    fix: {self.hint}"
        return text


class SegproviderError(Exception):
    """Base of every error raised by airflow-segprovider; each one raised is terminal or transient."""


class TerminalError(SegproviderError):
    """Retrying cannot fix it: the project, the data, the configuration or the credentials must change."""


class TransientError(SegproviderError):
    """Retrying later may succeed: the warehouse or an API failed, throttled us or was unreachable."""


@dataclass
class ProjectValidationError(TerminalError):
    """A project failed validation; carries every issue found, not only the first."""

    issues: list[SpecIssue] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.__str__())

    def __str__(self) -> str:
        count = len(self.issues)
        head = f"{count} error{'s' if count != 1 else ''} in the segments project:"
        return "\n".join([head, *(issue.format() for issue in self.issues)])

    def __reduce__(self):  # keep the exception picklable for Airflow's XCom and subprocesses
        return (type(self), (self.issues,))


class EvaluationError(SegproviderError):
    """Evaluation could not run; nothing was written. Raised as one of its two kinds below."""


class TerminalEvaluationError(EvaluationError, TerminalError):
    """A problem in the project or the data (bad ``as_of``, a missing table or column, duplicate keys)."""


class TransientEvaluationError(EvaluationError, TransientError):
    """The warehouse failed while evaluating (the statement was rolled back); a retry may succeed."""

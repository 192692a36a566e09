"""Retry semantics, decided once: terminal errors fail a task at once, transient ones are retried.

Airflow retries a task that raises any exception except ``AirflowFailException``
(https://airflow.apache.org/docs/apache-airflow/stable/core-concepts/tasks.html#timeouts and the
``AirflowFailException`` entry of https://airflow.apache.org/docs/apache-airflow/stable/core-concepts/tasks.html);
the base operator maps the package's :class:`TerminalError` to it and lets everything else through.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException

import airflow_segprovider
from airflow_segprovider.core.destination import DestinationAuthError, TransientDestinationError
from airflow_segprovider.core.errors import SegproviderError, TerminalError, TransientError
from airflow_segprovider.operators.base import SegmentsBaseOperator

#: Bases that name a family of errors and are never raised themselves (each is raised as its terminal
#: or transient kind; ``TerminalError`` and ``TransientError`` may be raised as they are).
FAMILIES = {"SegproviderError", "EvaluationError", "DestinationError", "IngestError"}


class _Raising(SegmentsBaseOperator):
    def __init__(self, *, error: Exception, **kwargs):
        super().__init__(project_path="unused", **kwargs)
        self.error = error

    def execute_step(self, context):
        raise self.error


def _run(error: Exception) -> None:
    _Raising(task_id="step", error=error).execute({})


def test_a_terminal_error_fails_the_task_without_retries() -> None:
    with pytest.raises(AirflowFailException, match="bad credentials") as caught:
        _run(DestinationAuthError("bad credentials", destination="mailchimp_newsletter"))
    assert isinstance(caught.value.__cause__, DestinationAuthError)


def test_a_transient_error_is_left_for_airflow_to_retry() -> None:
    error = TransientDestinationError("503 after 5 attempts", destination="hubspot_crm")
    with pytest.raises(TransientDestinationError) as caught:
        _run(error)
    assert caught.value is error


def test_an_unknown_error_is_retried_like_a_transient_one() -> None:
    with pytest.raises(ConnectionResetError):
        _run(ConnectionResetError("peer reset"))


def _error_classes() -> list[type]:
    found = {}
    for info in pkgutil.walk_packages(airflow_segprovider.__path__, prefix="airflow_segprovider."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, SegproviderError) and value.__module__.startswith("airflow_segprovider"):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def test_every_error_the_package_defines_is_terminal_or_transient() -> None:
    classes = _error_classes()
    assert len(classes) > 20
    unclassified = [c.__qualname__ for c in classes if c.__name__ not in FAMILIES
                    and issubclass(c, TerminalError) == issubclass(c, TransientError)]
    assert {TerminalError, TransientError} <= set(classes)
    assert unclassified == []


def test_no_family_base_is_raised_directly() -> None:
    raised = []
    for path in Path(airflow_segprovider.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                name = getattr(node.exc.func, "id", None) or getattr(node.exc.func, "attr", None)
                if name in FAMILIES:
                    raised.append(f"{path.name}:{node.lineno} raises {name}")
    assert raised == []

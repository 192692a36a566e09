"""Great Expectations, imported in one place: only by the gates that validate, and quietly.

Importing any ``great_expectations.<submodule>`` runs GX's ``__init__``, which imports the whole
library (461 GX modules, and through its compatibility shims scipy, SQLAlchemy, altair and every
optional backend that is installed: google-cloud, snowflake, boto3, sqlalchemy-bigquery). Measured
with ``python -X importtime`` (GX 1.24): ``import great_expectations.core.run_identifier`` costs
what ``import great_expectations`` costs, so there is no lighter submodule to import; the only lever
is importing GX in the gate tasks that run a suite, and nowhere else. The import takes 3-5 s on
two busy cores with compiled bytecode, 9-19 s where every module is compiled from source
(``PYTHONDONTWRITEBYTECODE`` set and no ``.pyc`` installed, as ``uv sync`` leaves it without
``--compile-bytecode``).

Importing GX writes about 225 INFO lines to a task's log: 214 "Skipping registering function ..."
from its API-docs decorators, "Multiple declarations of metric ..." from its registry, and seven
"setup plugin ..." from alembic, which sqlalchemy-bigquery loads on GX's behalf; each validation adds
"Loading 'datasources' ...". :func:`import_gx` raises GX's logger to WARNING when it imports GX (not
when this package is imported, and not when someone configured that logger), and keeps alembic's
plugin lines out during the import only. The gates' own lines (what was checked, what was observed,
passed or failed) are logged by the operators and are not touched.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from types import ModuleType

#: GX's loggers and the level their chatter is kept below (INFO: registration, config loading).
GX_LOGGERS = {"great_expectations": logging.WARNING}
#: Loggers of other libraries that speak only while GX is being imported.
GX_IMPORT_LOGGERS = ("alembic.runtime.plugins",)


def quiet_gx_logs() -> None:
    """Raise GX's loggers to WARNING, unless a logging configuration has already set their level."""
    for name, level in GX_LOGGERS.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)


def import_gx() -> ModuleType:
    """``great_expectations``, imported without its INFO chatter in the task log.

    Call it before taking the warehouse (the import takes seconds; an embedded DuckDB file has one
    writer at a time) and wherever GX is needed: once imported, it is a dictionary look-up.
    """
    quiet_gx_logs()
    with _quiet(GX_IMPORT_LOGGERS):
        import great_expectations

    return great_expectations


@contextlib.contextmanager
def _quiet(names: Sequence[str]) -> Iterator[None]:
    """Keep INFO of ``names`` out while the block runs; their levels are restored afterwards."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.level, logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)

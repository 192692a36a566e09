"""Which warehouse and project a segments DAG reads, and how the plugin reads them without getting in a run's way.

**Finding them.** A DAG is a segments DAG when it carries the ``segprovider`` tag (every factory sets it,
with the model and the project's name). The serialized DAG does not keep the operators' ``project_path``
or ``warehouse_conn_id``, so the API server learns them from its configuration:

* ``[segprovider] insights_projects`` (``AIRFLOW__SEGPROVIDER__INSIGHTS_PROJECTS``): JSON, project name
  (the DAG's tag) -> project folder; the example project shipped in the package is known without it;
* ``[segprovider] insights_warehouse_conn_ids``: JSON, dag_id -> warehouse connection id; default
  ``segprovider_warehouse``, the operators' default.

**Opening it.** Through the warehouse hook, read-only, from the DAG's connection: the file (or database) is
the one the DAG's tasks open, whichever way the connection names it (a DuckDB connection's ``database``
extra, its path, a MotherDuck database).

**Reading DuckDB.** DuckDB lets one process write a file and no other process open it meanwhile; a reader
holding the file would in turn stop a task from opening it. So each request opens the file **read-only**,
runs its few queries and closes it at once (milliseconds), and while a task holds the file it retries for at
most :data:`LOCK_WAIT_S` (never longer: the request must not hang, and a waiting task must not be kept
waiting). When the file stays locked, the endpoint answers with the last result it read for the same
request, marked ``stale`` with the time it was read (the page says how old the data is), or, with no
earlier result, 503 and ``Retry-After``. PostgreSQL sessions are set read-only; on every warehouse the
plugin sends only ``SELECT`` statements with request values as bound parameters.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_segprovider.core.project.spec import Project
    from airflow_segprovider.core.warehouses.base import Warehouse

#: Every DAG the segments factories build carries this tag.
SEGMENTS_TAG = "segprovider"
MODELS = ("centralized", "distributed", "hybrid", "monitoring")
DEFAULT_WAREHOUSE_CONN_ID = "segprovider_warehouse"
#: Longest a request waits for a task to release a DuckDB file before answering from its cache.
LOCK_WAIT_S = 1.0
#: Results kept for answering while the warehouse is locked (one per DAG, endpoint and arguments).
CACHE_SIZE = 512


class WarehouseBusyError(Exception):
    """A task holds the DuckDB file, and no earlier result of this request is cached."""


class NotSegmentsDagError(LookupError):
    """The DAG exists but is not a segments DAG (no ``segprovider`` tag)."""


@dataclass(frozen=True)
class DagTarget:
    """What a segments DAG reads.

    :param project_path: the project folder, or None when no configured or shipped project has its name.
    """

    dag_id: str
    model: str | None
    project_name: str | None
    project_path: str | None
    warehouse_conn_id: str
    tags: tuple[str, ...]


def _config_json(key: str) -> dict[str, str]:
    from airflow.configuration import conf

    raw = conf.get("segprovider", key, fallback="") or ""
    if not raw.strip():
        return {}
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise TypeError(f"[segprovider] {key} must be a JSON object, got {raw!r}")
    return {str(k): str(v) for k, v in value.items()}


@functools.lru_cache(maxsize=1)
def _example_project_name() -> tuple[str, str]:
    from airflow_segprovider.core.project.loader import load_project
    from airflow_segprovider.example import EXAMPLE_PROJECT

    return load_project(EXAMPLE_PROJECT).name, str(EXAMPLE_PROJECT)


def project_folders() -> dict[str, str]:
    """Project name -> folder: the configured ones, and the shipped example's."""
    name, folder = _example_project_name()
    return {name: folder, **_config_json("insights_projects")}


def dag_target(dag_id: str, tags: list[str] | tuple[str, ...]) -> DagTarget:
    """The target of a DAG with these tags.

    :raises NotSegmentsDagError: the DAG has no ``segprovider`` tag.
    """
    if SEGMENTS_TAG not in tags:
        raise NotSegmentsDagError(f"DAG {dag_id!r} is not a segments DAG (it has no {SEGMENTS_TAG!r} tag): "
                                  "segment insights show for the DAGs the segprovider factories build")
    folders = project_folders()
    project_name = next((tag for tag in tags if tag in folders), None)
    model = next((tag for tag in tags if tag in MODELS), None)
    conn_id = _config_json("insights_warehouse_conn_ids").get(dag_id, DEFAULT_WAREHOUSE_CONN_ID)
    return DagTarget(dag_id, model, project_name, folders.get(project_name) if project_name else None, conn_id,
                     tuple(tags))


@functools.lru_cache(maxsize=16)
def _load_project(path: str, mtime: float) -> Project:
    from airflow_segprovider.core.project.loader import load_project

    return load_project(path)


def load_target_project(target: DagTarget) -> Project | None:
    """The target's project, reloaded when its folder changes; None when unknown."""
    if target.project_path is None:
        return None
    folder = Path(target.project_path)
    mtime = max((p.stat().st_mtime for p in folder.rglob("*.y*ml")), default=0.0)
    return _load_project(str(folder), mtime)


def _retry_while_locked(open_: Callable[[], Warehouse], database: str) -> Warehouse:
    """``open_()``, retried while a task holds the DuckDB file, for at most LOCK_WAIT_S."""
    import duckdb

    started, pause = time.monotonic(), 0.05
    while True:
        try:
            return open_()
        except duckdb.IOException as exc:
            locked = "lock" in str(exc).lower()
            if not locked:
                raise
            if time.monotonic() - started >= LOCK_WAIT_S:
                raise WarehouseBusyError(f"the warehouse {database} is being written by a task") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.25)


@contextlib.contextmanager
def open_warehouse(target: DagTarget, schema: str | None) -> Iterator[Warehouse]:
    """The target's warehouse, read-only, for one request; closed on exit.

    Opened by the warehouse hook (:class:`~airflow_segprovider.hooks.warehouse.SegproviderWarehouseHook`,
    ``read_only=True``) from the DAG's connection, exactly as its tasks resolve it (a DuckDB connection's
    ``database`` extra, path, MotherDuck database; the other warehouses' provider hooks).

    :raises FileNotFoundError: a local DuckDB file that no run has written yet.
    :raises WarehouseBusyError: a task holds the DuckDB file for longer than LOCK_WAIT_S.
    """
    from airflow_segprovider.hooks.warehouse import SegproviderWarehouseHook

    hook = SegproviderWarehouseHook(warehouse_conn_id=target.warehouse_conn_id, read_only=True)
    if hook.airflow_connection.conn_type == "duckdb":
        database = hook.duckdb_database()
        if database == ":memory:" or (not database.startswith("md:") and not Path(database).exists()):
            raise FileNotFoundError(f"the warehouse {database} does not exist yet: no run has written it")
        warehouse = _retry_while_locked(lambda: hook.get_warehouse(schema), database)
    else:
        warehouse = hook.get_warehouse(schema)
    try:
        yield warehouse
    finally:
        warehouse.close()


class ResultCache:
    """The last result of each request, answered (marked stale) while the warehouse is locked."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._items: OrderedDict[tuple, tuple[float, Any]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def read(self, key: tuple, compute: Callable[[], Any]) -> dict[str, Any]:
        """``{"data", "read_at", "stale"}``: computed now, or the cached result when the warehouse is busy.

        :raises WarehouseBusyError: busy, and nothing cached for ``key``.
        """
        try:
            data = compute()
        except WarehouseBusyError:
            with self._lock:
                cached = self._items.get(key)
            if cached is None:
                raise
            return {"data": cached[1], "read_at": cached[0], "stale": True}
        now = time.time()
        with self._lock:
            self._items[key] = (now, data)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return {"data": data, "read_at": now, "stale": False}

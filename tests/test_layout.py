"""The house rules of the package, checked on its source: one room per concern, arrows one way.

Read statically (every ``import`` in every module, including those inside functions and under
``TYPE_CHECKING``), so an upward arrow or a cycle fails here even when no test happens to import
the module at run time.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROVIDER = "airflow_segprovider"
SANDBOX = "segprovider_sandbox"

#: Top-level rooms of the provider and their rank: a module may import its own room and rooms of a
#: lower rank, never a higher one (core <- destinations <- ingest, gates <- hooks, notifications <-
#: operators <- factory <- cli).
RANKS = {
    "core": 0,
    "destinations": 1,
    "example": 2,
    "gates": 2,
    "ingest": 2,
    "hooks": 3,
    "notifications": 3,
    "get_provider_info": 4,
    "operators": 4,
    "factory": 5,
    "plugins": 5,
    "cli": 6,
}
#: Rooms inside the core, ranked the same way. The warehouse interface (``warehouses.base``) sits low so
#: the state store can name it; the adapters sit above the state store, whose staging names they use.
CORE_RANKS = {
    "errors": 0,
    "destination": 1,
    "sql": 1,
    "warehouses.base": 1,
    "state": 2,
    "project": 3,
    "warehouses": 3,
    "evaluate": 4,
    "sync": 5,
    "distributed": 6,
    "hybrid": 6,
    "privacy": 7,
}
MAX_LINES = 500
#: ``segprovider_*`` words in the provider's code that name no warehouse table: Airflow connections and
#: their types, the project file, the compiled query's own CTE, GX's in-memory datasource, the Data Docs folder.
NOT_TABLES = {
    "segprovider_warehouse", "segprovider_alerts", "segprovider_mailchimp", "segprovider_hubspot", "segprovider_meta",
    "segprovider_webhook", "segprovider_sandbox", "segprovider_project", "segprovider_flags", "segprovider_sql",
    "segprovider_docs", "segprovider_data", "segprovider_duckdb",
}


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: set[str] = field(default_factory=set)

    @property
    def room(self) -> str:
        parts = self.name.split(".")
        return parts[1] if len(parts) > 1 else ""


def _module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _modules() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for package in (PROVIDER, SANDBOX):
        for path in sorted((REPO / package).rglob("*.py")):
            name, is_package = _module_name(path)
            modules[name] = Module(name, path, is_package)
    for module in modules.values():
        tree = ast.parse(module.path.read_text(), filename=str(module.path))
        package = module.name if module.is_package else module.name.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                module.imports.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:  # ``from package import module`` imports the module
                    if f"{target}.{alias.name}" in modules:
                        module.imports.add(f"{target}.{alias.name}")
                    else:
                        module.imports.add(target)
    return modules


MODULES = _modules()


def _ours(name: str) -> bool:
    return name.split(".")[0] in (PROVIDER, SANDBOX)


def test_the_walk_sees_the_package_and_its_imports() -> None:
    # a walk that found nothing would pass every rule below
    assert len(MODULES) > 100
    assert "airflow_segprovider.core.project.loader" in MODULES["airflow_segprovider.cli.common"].imports
    # an import inside a function counts (cli/common.py imports the loader only when a command runs)
    source = MODULES["airflow_segprovider.cli.common"].path.read_text()
    assert re.search(r"^\s{4,}from airflow_segprovider\.core\.project\.loader import", source, re.M)


def test_the_core_imports_nothing_above_it_and_no_airflow() -> None:
    offences = []
    for module in MODULES.values():
        if module.room != "core":
            continue
        for target in module.imports:
            top = target.split(".")[0]
            upward = target.startswith(PROVIDER + ".") and target.split(".")[1] != "core"
            if upward or top in ("airflow", SANDBOX, "requests", "great_expectations"):
                offences.append(f"{module.name} -> {target}")
    assert offences == []


def test_arrows_point_one_way_between_rooms() -> None:
    offences = []
    for module in MODULES.values():
        if not module.name.startswith(PROVIDER + ".") or module.room not in RANKS:
            continue
        for target in module.imports:
            if not target.startswith(PROVIDER + "."):
                continue
            room = target.split(".")[1]
            if room != module.room and RANKS.get(room, -1) >= RANKS[module.room]:
                offences.append(f"{module.name} ({module.room}) -> {target} ({room})")
    assert offences == []
    assert set(RANKS) >= {m.room for m in MODULES.values() if m.name.startswith(PROVIDER + ".")}


def _core_room(name: str) -> str | None:
    parts = name.split(".")
    if len(parts) < 3 or parts[:2] != [PROVIDER, "core"]:
        return None
    if parts[2] == "warehouses" and parts[3:4] == ["base"]:
        return "warehouses.base"
    return parts[2]


def test_arrows_point_one_way_inside_the_core() -> None:
    offences = []
    for module in MODULES.values():
        room = _core_room(module.name)
        if room is None or module.name.count(".") < 2:
            continue
        for target in module.imports:
            other = _core_room(target)
            if other is None or other == room or target == f"{PROVIDER}.core.{other}":
                continue  # the core package itself, or one's own room
            if CORE_RANKS[other] >= CORE_RANKS[room]:
                offences.append(f"{module.name} ({room}) -> {target} ({other})")
    assert offences == []
    rooms = {_core_room(m.name) for m in MODULES.values() if m.name.count(".") >= 2} - {None}
    assert rooms == set(CORE_RANKS)


def test_the_provider_and_the_sandbox_do_not_import_each_other() -> None:
    offences = [f"{m.name} -> {t}" for m in MODULES.values() for t in m.imports
                if t.split(".")[0] in (PROVIDER, SANDBOX) and t.split(".")[0] != m.name.split(".")[0]]
    assert offences == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), and self-imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_modules() -> None:
    graph = {m.name: {t for t in m.imports if t in MODULES and t != m.name} for m in MODULES.values()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _state_tables() -> set[str]:
    import importlib
    import pkgutil

    import airflow_segprovider.core.state as state

    names: set[str] = set()
    for info in pkgutil.iter_modules(state.__path__):
        module = importlib.import_module(f"{state.__name__}.{info.name}")
        names.update(getattr(module, "TABLES", ()))
    return names


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_every_state_table_is_named_only_in_core_state() -> None:
    tables = _state_tables()
    # the registry covers the stores the issue names (membership, sync, distributed, hub, ingest, gates)
    assert {"segprovider_snapshots", "segprovider_sync_state", "segprovider_source_loads",
            "segprovider_reconcile_audit", "segprovider_quarantine", "segprovider_destination_counts"} <= tables
    offences = []
    state_dir = REPO / PROVIDER / "core" / "state"
    for module in MODULES.values():
        if not module.name.startswith(PROVIDER + ".") or state_dir in module.path.parents:
            continue
        for line, text in _string_constants(module.path):
            for word in re.findall(r"segprovider_[A-Za-z0-9_]*", text):
                if word in NOT_TABLES or word.startswith("segprovider_test"):
                    continue
                offences.append(f"{module.path.relative_to(REPO)}:{line}: {word}")
    assert offences == [], "name state tables through the constants of airflow_segprovider/core/state/"


@pytest.mark.parametrize("package", [PROVIDER, SANDBOX])
def test_modules_are_small_and_have_no_section_banners(package: str) -> None:
    too_long, banners = [], []
    for module in MODULES.values():
        if module.name.split(".")[0] != package:
            continue
        lines = module.path.read_text().splitlines()
        if len(lines) > MAX_LINES:
            too_long.append(f"{module.path.relative_to(REPO)}: {len(lines)} lines")
        banners += [f"{module.path.relative_to(REPO)}:{n}" for n, line in enumerate(lines, 1)
                    if re.match(r"\s*# ?---", line)]
    assert too_long == []
    assert banners == []

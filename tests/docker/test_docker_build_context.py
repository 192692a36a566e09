"""The image's build context and what its ``COPY`` lines take from it, proven without a Docker engine.

The context is assembled exactly as the Dockerfile's ``COPY`` instructions take it (``.dockerignore`` applied with
Docker's own matching rules, see :mod:`tests.docker.build_context`) into a folder laid out like the image. The
wheel is then built from that copy of ``/opt/segprovider``, as the image's ``pip install --no-deps`` builds it,
and installed offline into a fresh virtual environment beside the lock's packages: what a missing file or a
too-greedy ``.dockerignore`` pattern would break in ``docker build`` breaks here.

The lock's packages are installed from uv's cache through a PEP 751 export of the same lock and options
(``docker/requirements.lock.txt`` is a requirements file, which an offline install cannot resolve without the
index); the installed set is then checked against the pins of ``docker/requirements.lock.txt``.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.docker.build_context import (
    PatternMatcher,
    assemble,
    context_files,
    copied_files,
    copy_instructions,
    read_dockerignore,
)
from tests.docker.compose_files import DOCKERFILE, ENV_EXAMPLE, REPO, load_compose, read_env_file, service_commands
from tests.docker.lock_export import EXPORT_COMMAND, LOCK_EXPORT, offline_env, uv

PROJECT_IN_IMAGE = "/opt/segprovider"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
WHEEL_CONFIG = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]
#: The sources the wheel build reads: the readme, the packages, the force-included folders.
WHEEL_SOURCES = (PYPROJECT["project"]["readme"], "pyproject.toml", *WHEEL_CONFIG["packages"],
                 *WHEEL_CONFIG.get("force-include", {}))
IMAGE_DATA_DIR = "/opt/airflow/segprovider_data"


@pytest.fixture(scope="module")
def matcher() -> PatternMatcher:
    return PatternMatcher(read_dockerignore(REPO / ".dockerignore"))


@pytest.fixture(scope="module")
def context(matcher: PatternMatcher) -> list[str]:
    return context_files(REPO, matcher)


@pytest.fixture(scope="module")
def placed(context: list[str]) -> dict[str, str]:
    """Image path -> context path of every file the Dockerfile's ``COPY`` lines take."""
    return copied_files(copy_instructions(DOCKERFILE), context)


@pytest.mark.parametrize(("patterns", "path", "excluded"), [
    (["*.pyc"], "a.pyc", True),
    (["*.pyc"], "pkg/a.pyc", False),  # Docker anchors at the root, unlike git
    (["**/*.pyc"], "pkg/sub/a.pyc", True),
    (["**/*.pyc"], "a.pyc", True),
    (["**/__pycache__"], "pkg/__pycache__/m.cpython-311.pyc", True),
    ([".venv"], ".venv/lib/python3.11/site.py", True),
    (["/dist/"], "dist/x.whl", True),
    (["*/temp*"], "somedir/temporary.txt", True),
    (["*/temp*"], "temporary.txt", False),
    (["temp?"], "tempa", True),
    (["docs"], "docsite/index.md", False),
    (["*.md", "!README.md"], "README.md", False),
    (["*.md", "!README.md", "README*"], "README.md", True),  # the last matching pattern wins
    (["a/**"], "a/b/c", True),
    (["**/.env"], ".env", True),
    (["**/.env.*"], "docker/.env.example", True),
])
def test_dockerignore_matching_follows_docker(patterns: list[str], path: str, excluded: bool, tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("# a comment\n\n" + "\n".join(patterns) + "\n")

    assert PatternMatcher(read_dockerignore(tmp_path / ".dockerignore")).excludes(path) is excluded


def test_build_context_leaves_out_environments_caches_outputs_and_secrets(context: list[str],
                                                                          matcher: PatternMatcher) -> None:
    for folder in (".git", ".venv", ".demo", "tests", ".pytest_cache"):
        assert not [path for path in context if path.startswith(folder + "/")], folder
    parts = {part for path in context for part in path.split("/")}
    assert "__pycache__" not in parts
    assert not [path for path in context if path.endswith((".pyc", ".duckdb", ".duckdb.wal", ".db"))]
    assert not [path for path in context if Path(path).name.startswith(".env")]
    # the files compose reads secrets from never reach an image layer, wherever they are
    assert matcher.excludes("docker/.env") and matcher.excludes(".env")
    # landing files a demo or a person left in the example project stay out of the wheel
    assert matcher.excludes("airflow_segprovider/example/segments_project/landing/customers/customers.parquet")


def test_image_gets_every_source_of_the_wheel_the_dags_and_the_lock(placed: dict[str, str]) -> None:
    for source in WHEEL_SOURCES:
        image_path = f"{PROJECT_IN_IMAGE}/{source}"
        assert image_path in placed or any(path.startswith(image_path + "/") for path in placed), (
            f"the wheel build reads {source} (pyproject.toml), but the image has no {image_path}")
    dags = sorted(path.name for path in (REPO / "dags").glob("*.py"))
    assert dags and all(f"/opt/airflow/dags/{name}" in placed for name in dags)
    assert placed[f"{PROJECT_IN_IMAGE}/requirements.lock.txt"] == LOCK_EXPORT.relative_to(REPO).as_posix()


def test_copied_folders_hold_exactly_what_git_holds(placed: dict[str, str]) -> None:
    """Nothing git ignores (landing files, databases, caches) gets in, nothing it keeps is left out."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            check=False, cwd=REPO, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip(f"not a git work tree: {listed.stderr.strip()}")
    tracked = {path for path in listed.stdout.split("\0") if path and (REPO / path).is_file()}
    sources = {copy_source for copy in copy_instructions(DOCKERFILE) for copy_source in copy.sources}
    expected = {path for path in tracked if any(path == s or path.startswith(s + "/") for s in sources)}

    copied = set(placed.values())
    assert sorted(expected - copied) == [], "git keeps these, the image would not get them (.dockerignore?)"
    assert sorted(copied - expected) == [], "git ignores these, the image would get them: add them to .dockerignore"


@dataclass(frozen=True)
class Installed:
    """The fresh virtual environment the wheel built from the image's copy was installed into."""

    venv: Path
    wheel: Path
    env: dict[str, str]
    workdir: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def run(self, *command: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(part) for part in command], check=False, env=self.env, cwd=self.workdir,
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, (f"{' '.join(map(str, command))} failed:\n"
                                        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result


@pytest.fixture(scope="module")
def installed(placed: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The image's files assembled, the wheel built from them, installed offline beside the locked packages."""
    tmp = tmp_path_factory.mktemp("image")
    image_root = tmp / "root"
    assemble(placed, REPO, image_root)
    env = offline_env()
    installation = Installed(tmp / "venv", tmp / "dist", env | {"AIRFLOW_HOME": str(tmp / "airflow")}, tmp)

    installation.run(*uv(), "build", "--wheel", "--out-dir", tmp / "dist", image_root / PROJECT_IN_IMAGE.lstrip("/"))
    [wheel] = (tmp / "dist").glob("airflow_segprovider-*.whl")
    lock = tmp / "pylock.toml"
    export = ["pylock.toml" if word == "requirements-txt" else word for word in EXPORT_COMMAND]
    installation.run(*uv(), *export, "--project", REPO, "-o", lock)
    installation.run(*uv(), "venv", "--python", sys.executable, installation.venv)
    installation.run(*uv(), "pip", "install", "--python", installation.python, "-r", lock, timeout=600)
    installation.run(*uv(), "pip", "install", "--python", installation.python, "--no-deps", wheel)
    return Installed(installation.venv, wheel, installation.env, tmp)


@pytest.mark.integration
@pytest.mark.slow
def test_wheel_from_the_image_copy_installs_offline_with_exactly_the_locked_versions(installed: Installed) -> None:
    frozen = installed.run(*uv(), "pip", "freeze", "--python", installed.python).stdout
    # "name==version" for the lock's packages, "name @ file:///...whl" for the project's wheel
    versions = {canonicalize_name(name.partition(" @ ")[0]): version for name, _, version in
                (line.partition("==") for line in frozen.splitlines() if line.strip())}
    expected = {}
    for line in LOCK_EXPORT.read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.startswith(("#", " ")):
            requirement = Requirement(line.rstrip(" \\"))
            if requirement.marker is None or requirement.marker.evaluate():
                expected[canonicalize_name(requirement.name)] = str(requirement.specifier).removeprefix("==")

    assert versions.pop("airflow-segprovider", None) is not None, frozen
    assert versions == expected
    installed.run(*uv(), "pip", "check", "--python", installed.python)


@pytest.mark.integration
@pytest.mark.slow
def test_installed_package_holds_the_example_project_and_the_gate_suites(installed: Installed) -> None:
    found = installed.run(installed.python, "-c", (
        "import airflow_segprovider, segprovider_sandbox\n"
        "from airflow_segprovider.example import EXAMPLE_PROJECT\n"
        "from airflow_segprovider.gates.suites import default_suite_dir\n"
        "print(airflow_segprovider.__file__); print(segprovider_sandbox.__file__)\n"
        "print(EXAMPLE_PROJECT); print(default_suite_dir())\n")).stdout.split()
    package, sandbox, project, suites = (Path(line) for line in found)

    assert all(path.is_relative_to(installed.venv) for path in (package, sandbox, project, suites)), found
    source_project = REPO / "airflow_segprovider" / "example" / "segments_project"
    assert sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()) == sorted(
        p.relative_to(source_project).as_posix() for p in source_project.rglob("*")
        if p.is_file() and "landing" not in p.relative_to(source_project).parts)
    assert sorted(p.name for p in suites.glob("*.json")) == sorted(p.name for p in (REPO / "expectations").glob("*.json"))
    with zipfile.ZipFile(installed.wheel) as wheel:
        entry_points = next(wheel.read(name).decode() for name in wheel.namelist() if name.endswith("entry_points.txt"))
    assert "segprovider = airflow_segprovider.cli.main:main" in entry_points
    assert "[apache_airflow_provider]" in entry_points


@pytest.mark.integration
@pytest.mark.slow
def test_segprovider_and_the_provider_run_from_the_installed_wheel(installed: Installed) -> None:
    usage = installed.run(installed.venv / "bin" / "segprovider", "--help").stdout
    providers = installed.run(installed.python, "-c", (
        "from airflow.providers_manager import ProvidersManager\n"
        "print(sorted(ProvidersManager().providers))\n")).stdout

    assert "usage: segprovider" in usage and "sandbox" in usage
    assert "airflow-segprovider" in providers


@pytest.mark.integration
@pytest.mark.slow
def test_init_lands_the_example_data_with_the_installed_wheel(installed: Installed) -> None:
    """airflow-init's ``segprovider`` lines, run from the installed wheel (the data folder moved into tmp)."""
    services = load_compose(read_env_file(ENV_EXAMPLE))["services"]
    lines = [command.argv for command in service_commands("airflow-init", services["airflow-init"])
             if command.program == "segprovider"]
    data_dir = installed.workdir / "segprovider_data"
    assert lines, "airflow-init runs no segprovider command"

    for argv in lines:
        moved = [str(data_dir) if word == IMAGE_DATA_DIR else word for word in argv[1:]]
        # fewer customers than the image lands, to keep the test short; the options are the image's
        installed.run(installed.venv / "bin" / "segprovider", *moved, "--customers", "2000", timeout=600)

    landed = {folder.name: sorted(p.name for p in folder.glob("*.parquet")) for folder in (data_dir / "landing").iterdir()}
    assert sorted(landed) == ["consents", "customers", "events", "orders"]
    assert all(landed.values()), landed

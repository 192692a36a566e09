"""``segprovider demo`` as a user gets it: from a wheel, in a fresh virtual environment, outside the repo.

The wheel is built by ``uv build`` from this checkout and installed with uv into a new virtual
environment from the local package cache (offline: the test reaches no network), beside the exact
versions of the project's lock (``uv export --format pylock.toml``). The demo then runs from a folder outside the repository, and the repository
must not change: every file it holds keeps its bytes' size and modification time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: What other tests running at the same time (pytest-xdist) may write inside the repository.
NOT_WATCHED = {".git", ".venv", ".hypothesis", ".pytest_cache", ".ruff_cache", "__pycache__", "dist"}

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def _repo_files() -> dict[str, tuple[int, int]]:
    files = {}
    for root, dirs, names in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in NOT_WATCHED]
        for name in names:
            path = Path(root) / name
            stat = path.lstat()
            files[str(path.relative_to(REPO))] = (stat.st_size, stat.st_mtime_ns)
    return files


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_demo_runs_from_an_installed_wheel_and_writes_only_in_its_workdir(tmp_path: Path) -> None:
    before = _repo_files()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AIRFLOW", "SEGPROVIDER", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["UV_OFFLINE"] = "1"
    env["UV_NO_PROGRESS"] = "1"

    dist = tmp_path / "dist"
    _run([*_uv(), "build", "--wheel", "--out-dir", str(dist), str(REPO)], env=env, cwd=tmp_path)
    wheels = list(dist.glob("airflow_segprovider-*.whl"))
    assert len(wheels) == 1, wheels
    # the lock's exact versions, as a PEP 751 lock: it names each wheel's URL, which the offline
    # install finds in the local cache (a plain requirements file would need the index)
    lock = tmp_path / "pylock.toml"
    _run([*_uv(), "export", "--frozen", "--no-dev", "--no-emit-project", "--format", "pylock.toml",
          "--project", str(REPO), "-o", str(lock)], env=env, cwd=tmp_path)
    venv = tmp_path / "venv"
    _run([*_uv(), "venv", "--python", sys.executable, str(venv)], env=env, cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([*_uv(), "pip", "install", "--python", str(python), "-r", str(lock)], env=env, cwd=tmp_path)
    _run([*_uv(), "pip", "install", "--python", str(python), "--no-deps", str(wheels[0])], env=env, cwd=tmp_path)

    # the installed package is the wheel's, not this checkout's
    located = _run([str(python), "-c", "import airflow_segprovider, segprovider_sandbox; "
                    "print(airflow_segprovider.__file__); print(segprovider_sandbox.__file__)"],
                   env=env, cwd=tmp_path).stdout.split()
    assert all(str(venv) in path for path in located), located

    workdir = tmp_path / "work" / "demo"
    result = _run([str(venv / "bin" / "segprovider"), "demo", "--workdir", str(workdir), "--customers", "3000"],
                  env=env, cwd=tmp_path, timeout=900)

    assert "2026-11-23: success" in result.stdout and "2026-11-24: success" in result.stdout, result.stdout
    assert "Sandbox received:" in result.stdout
    # what the demo wrote is in its workdir: the project copy with its landing files, the warehouse, Airflow
    assert sorted(p.name for p in (workdir / "project" / "landing").iterdir()) == [
        "consents", "customers", "events", "orders"]
    assert (workdir / "warehouse.duckdb").is_file() and (workdir / "airflow" / "airflow.db").is_file()
    assert _repo_files() == before

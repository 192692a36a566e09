"""The image installs the project's lock: ``docker/requirements.lock.txt`` is ``uv.lock`` exported, never stale.

Airflow's constraints file cannot be fetched from where this project is built and tested, and would pin other
versions than the ones the tests ran with; the lock pins Airflow and everything else instead. ``make docker-lock``
writes the export; this module checks that it is exactly what ``uv export`` makes of ``uv.lock`` now, that the
image's base is the locked Airflow, and that the Dockerfile installs the export and nothing else.
"""

from __future__ import annotations

import shlex
import subprocess
import tomllib

from packaging.specifiers import SpecifierSet

from tests.docker.build_context import copy_instructions, read_dockerfile
from tests.docker.compose_files import DOCKERFILE, REPO
from tests.docker.lock_export import EXPORT_COMMAND, LOCK_EXPORT, offline_env, pins, uv


def dockerfile_args() -> dict[str, str]:
    """The default of every ``ARG name=default`` of the Dockerfile."""
    args = {}
    for instruction in read_dockerfile(DOCKERFILE):
        if instruction.keyword == "ARG" and "=" in instruction.arguments:
            name, _, default = instruction.arguments.partition("=")
            args[name.strip()] = default.strip()
    return args


def test_committed_export_is_what_uv_exports_from_the_lock_now() -> None:
    result = subprocess.run([*uv(), *EXPORT_COMMAND], check=False, cwd=REPO, env=offline_env(),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    committed = LOCK_EXPORT.read_text(encoding="utf-8")
    if committed != result.stdout:
        now, before = pins(result.stdout), pins(committed)
        changed = sorted(f"{name}: {before.get(name, '-')} -> {now.get(name, '-')}"
                         for name in set(now) | set(before) if now.get(name) != before.get(name))
        raise AssertionError(f"{LOCK_EXPORT.relative_to(REPO)} is not uv.lock's export: run `make docker-lock`. "
                             f"Versions that differ (committed -> now): {changed or 'none (hashes or markers)'}")
    assert f"uv {' '.join(EXPORT_COMMAND)}" in committed.splitlines()[1]


def test_the_image_is_the_locked_airflow_on_a_python_the_project_supports() -> None:
    args = dockerfile_args()
    locked = pins(LOCK_EXPORT.read_text(encoding="utf-8"))
    requires_python = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    [base] = [i.arguments for i in read_dockerfile(DOCKERFILE) if i.keyword == "FROM"]

    assert args["AIRFLOW_VERSION"] == locked["apache-airflow"], (
        f"the image is Airflow {args['AIRFLOW_VERSION']}, the lock {locked['apache-airflow']}: "
        "set ARG AIRFLOW_VERSION to the locked version")
    assert SpecifierSet(requires_python).contains(f"{args['PYTHON_VERSION']}.0"), (args, requires_python)
    # the slim image holds core Airflow only, so nothing but the lock decides the other versions
    assert base == "apache/airflow:slim-${AIRFLOW_VERSION}-python${PYTHON_VERSION}", base


def test_the_image_installs_the_lock_then_the_project_without_dependencies() -> None:
    [lock_copy] = [copy for copy in copy_instructions(DOCKERFILE) if copy.sources == ("docker/requirements.lock.txt",)]
    installs = [shlex.split(i.arguments) for i in read_dockerfile(DOCKERFILE)
                if i.keyword == "RUN" and "install" in i.arguments and "pip" in i.arguments]

    assert installs == [
        ["pip", "install", "--no-cache-dir", "-r", lock_copy.destination],
        ["pip", "install", "--no-cache-dir", "--no-deps", "/opt/segprovider"],
    ]

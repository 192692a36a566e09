"""The lock export the image installs, and running ``uv`` offline the way the Docker tests need it."""

from __future__ import annotations

import os
import re
import shutil
import sys

from packaging.utils import canonicalize_name

from tests.docker.compose_files import DOCKER

LOCK_EXPORT = DOCKER / "requirements.lock.txt"
#: ``make docker-lock`` runs the same command (with ``uv`` first): the export's header names it.
EXPORT_COMMAND = ("export", "--frozen", "--format", "requirements-txt", "--no-dev", "--no-emit-project",
                  "--extra", "postgres")
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)", re.MULTILINE)


def uv() -> list[str]:
    found = shutil.which("uv")
    return [found] if found else [sys.executable, "-m", "uv"]


def offline_env() -> dict[str, str]:
    """The environment for uv and what it installs: offline, quiet, none of the caller's Airflow or venv settings."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AIRFLOW", "SEGPROVIDER", "VIRTUAL_ENV", "PYTHONPATH"))}
    return env | {"UV_OFFLINE": "1", "UV_NO_PROGRESS": "1"}


def pins(text: str) -> dict[str, str]:
    """Package (canonical name) -> version of every ``name==version`` line of a requirements file."""
    return {canonicalize_name(match["name"]): match["version"] for match in _PIN.finditer(text)}

"""``docker/compose.yaml`` and ``docker/.env.example`` read the way Docker Compose reads them, without Docker.

:func:`read_env_file` reads a ``.env`` file, :func:`interpolate` resolves ``${VAR}``, ``${VAR:-default}``,
``${VAR:?message}`` (and their forms without the colon) and ``$$`` as Compose does, :func:`load_compose` parses
the file with PyYAML (merge keys included) and resolves every string value, and :func:`service_commands` lists
the commands a service runs: its entrypoint and command as the image runs them, each line of a ``bash -c``
script, and its healthcheck.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from collections.abc import Mapping

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
DOCKERFILE = DOCKER / "Dockerfile"
#: The image the repository's Dockerfile builds; services naming it run the official Airflow image's entrypoint.
IMAGE = "airflow-segprovider:local"
#: The official image's entrypoint runs ``bash`` and ``python`` as given and any other command as ``airflow ...``.
ENTRYPOINT_PASSES = ("bash", "python", "airflow")
DUMB_INIT = ("/usr/bin/dumb-init", "--")

_REFERENCE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-?+])(?P<argument>.*))?$", re.DOTALL)


@dataclass(frozen=True)
class Reference:
    """One ``${...}`` in the compose file: the variable, its operator (``:?``, ``:-``, ...; empty for none)."""

    name: str
    operator: str
    argument: str


class MissingVariable(ValueError):
    """A ``${VAR:?message}`` (or ``${VAR?message}``) whose variable is unset (or empty)."""


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of an env file; comments and blank lines skipped, surrounding quotes removed."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.removeprefix("export ").partition("=")
        assert separator, f"{path}: not a KEY=VALUE line: {line!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def references(text: str) -> list[Reference]:
    """Every variable reference in ``text`` (``$$`` is an escaped dollar, not a reference)."""
    found = []
    for match in _REFERENCE.finditer(text):
        if match["named"]:
            found.append(Reference(match["named"], "", ""))
        elif match["braced"] is not None:
            braced = _BRACED.match(match["braced"])
            assert braced, f"not a valid variable reference: ${{{match['braced']}}}"
            found.append(Reference(braced["name"], braced["operator"] or "", braced["argument"] or ""))
    return found


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """``text`` with every reference resolved from ``env`` as Compose resolves it.

    :raises MissingVariable: a required variable (``:?`` / ``?``) is unset or, for ``:?``, empty.
    """

    def resolve(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        braced = _BRACED.match(match["braced"])
        assert braced, f"not a valid variable reference: {match[0]}"
        name, operator, argument = braced["name"], braced["operator"] or "", braced["argument"] or ""
        value = env.get(name)
        unset = value is None or (operator.startswith(":") and value == "")
        if operator.endswith("-"):
            return argument if unset else value
        if operator.endswith("?"):
            if unset:
                raise MissingVariable(f"required variable {name} is missing a value: {argument}")
            return value
        if operator.endswith("+"):
            return "" if unset else argument
        return value or ""

    return _REFERENCE.sub(resolve, text)


def resolve_values(node: Any, env: Mapping[str, str]) -> Any:
    """A parsed compose document with every string value interpolated (keys are not, as in Compose)."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: resolve_values(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve_values(value, env) for value in node]
    return node


def load_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file parsed; with ``env``, every value interpolated from it."""
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return document if env is None else resolve_values(document, env)


def as_argv(value: str | list[str] | None) -> list[str]:
    """A ``command``/``entrypoint`` value as Compose passes it: a string is split like a shell would."""
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(word) for word in value]


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a mapping (the list form ``KEY=VALUE`` too)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def volume_mounts(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's volumes: target path in the container -> source (a named volume or a host path)."""
    mounts = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, _, rest = volume.partition(":")
            mounts[rest.split(":")[0]] = source
        else:
            mounts[volume["target"]] = volume.get("source", "")
    return mounts


def runs_the_image(service: Mapping[str, Any]) -> bool:
    """Whether the service runs the image docker/Dockerfile builds."""
    return service.get("image") == IMAGE or "build" in service


@dataclass(frozen=True)
class Command:
    """A command a service runs: where it is written (``command``, ``init script line 2``, ...) and its argv."""

    service: str
    where: str
    argv: tuple[str, ...]

    @property
    def program(self) -> str:
        return Path(self.argv[0]).name

    def __str__(self) -> str:
        return f"{self.service} ({self.where}): {shlex.join(self.argv)}"


def service_commands(name: str, service: Mapping[str, Any]) -> list[Command]:
    """What ``name`` runs: its main command (the script's lines for ``bash -c``) and its healthcheck."""
    commands = []
    entrypoint, command = as_argv(service.get("entrypoint")), as_argv(service.get("command"))
    if service.get("entrypoint") is not None:
        argv = entrypoint + command
    elif runs_the_image(service) and command:
        argv = command if command[0] in ENTRYPOINT_PASSES else ["airflow", *command]
    else:
        argv = command  # another image's own default, or nothing
    if tuple(argv[:2]) == DUMB_INIT:
        argv = argv[2:]
    if argv and Path(argv[0]).name == "bash" and len(argv) > 2 and argv[1].startswith("-") and "c" in argv[1]:
        for number, line in enumerate(argv[2].splitlines(), 1):
            if line.strip() and not line.strip().startswith("#"):
                commands.append(Command(name, f"script line {number}", tuple(shlex.split(line))))
    elif argv:
        commands.append(Command(name, "command", tuple(argv)))
    test = as_argv((service.get("healthcheck") or {}).get("test"))
    if test and test[0] == "CMD":
        commands.append(Command(name, "healthcheck", tuple(test[1:])))
    elif test and test[0] == "CMD-SHELL":
        commands.append(Command(name, "healthcheck", tuple(shlex.split(test[1]))))
    return commands

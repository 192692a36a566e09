"""Fixtures that run the real Airflow services against the example project, the sandbox and a DuckDB file.

One installation per test module (starting the services costs most of a minute on 2 cores): the tests of a
module share it and run in their file's order. Everything lives in a temporary folder: the DAG folder (a
copy holding only ``segments_centralized`` and its project), the landing files (written by ``segprovider land``,
dated today, under ``$SEGPROVIDER_DATA_DIR``), ``AIRFLOW_HOME`` (SQLite metadata DB, ``logs/``,
``services/<name>.log``), the warehouse, the Data Docs and the sandbox's database. Nothing is written to the
repository. As a deployment would, the connections and the warehouse pool are created through the REST API
once the services are up, never through the environment.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_segprovider.example import EXAMPLE_PROJECT
from segprovider_sandbox import RunningSandbox, serve
from support.airflow_services import (
    CENTRALIZED_DAG_SOURCE,
    VENV_BIN,
    WAREHOUSE_POOL,
    WARM_UP_IMPORTS,
    AirflowApi,
    Service,
    airflow_environment,
    create_connections,
    destination_connections,
    free_port,
    latest_midnight,
    start_service,
    wait_for,
)

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

PROJECT = EXAMPLE_PROJECT
CUSTOMERS = 2_000
ADMIN = "admin"


POOL = WAREHOUSE_POOL
#: Modules with a failed test: the services' teardown then shows the end of their logs.
FAILED_MODULES: set[str] = set()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    """Remember whether a test itself failed, so the services' teardown can show their logs."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        FAILED_MODULES.add(item.module.__name__ if item.module else "")


@dataclass
class AirflowInstallation:
    """A migrated, not yet running Airflow: its home, its DAG folder and the environment of its processes."""

    home: Path
    dags_folder: Path
    warehouse: Path
    docs_dir: Path
    api_port: int
    admin_password: str
    env: dict[str, str]


@dataclass
class RunningAirflow:
    """The services of an installation, up and healthy, with a logged-in REST client."""

    installation: AirflowInstallation
    api: AirflowApi
    services: list[Service]



@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("airflow_services")


@pytest.fixture(scope="module")
def segments_dags(work_dir: Path) -> Path:
    """A DAG folder with only ``segments_centralized`` and its project."""
    dags = work_dir / "dags"
    dags.mkdir()
    (dags / "segments_centralized.py").write_text(CENTRALIZED_DAG_SOURCE)
    shutil.copytree(PROJECT, dags / PROJECT.name, ignore=shutil.ignore_patterns("landing", "__pycache__"))
    return dags


@pytest.fixture(scope="module")
def data_dir(work_dir: Path) -> Path:
    """The landing files, as a deployment lands them: ``segprovider land``, newest data at today's midnight."""
    data = work_dir / "data"
    landed = subprocess.run([str(VENV_BIN / "segprovider"), "land", "--data-dir", str(data), "--customers",
                             str(CUSTOMERS), "--anchor", latest_midnight().isoformat()],
                            capture_output=True, text=True, timeout=300)
    assert landed.returncode == 0, f"segprovider land failed:\n{landed.stdout}\n{landed.stderr}"
    return data


@pytest.fixture(scope="module")
def sandbox(work_dir: Path) -> Iterator[RunningSandbox]:
    """The destination sandbox on loopback, in this process, seeded as ``segprovider sandbox --seed`` seeds it."""
    with serve(db_path=work_dir / "sandbox.db") as running:
        running.state.seed_example_project()
        yield running


@pytest.fixture(scope="module")
def airflow_installation(work_dir: Path, segments_dags: Path, data_dir: Path,
                         sandbox: RunningSandbox) -> AirflowInstallation:
    """An isolated ``AIRFLOW_HOME`` with a migrated SQLite metadata DB and one admin user."""
    tmp_path = work_dir
    home = tmp_path / "airflow"
    home.mkdir()
    password = secrets.token_urlsafe(16)
    passwords_file = home / "simple_auth_manager_passwords.json"
    passwords_file.write_text(json.dumps({ADMIN: password}) + "\n")
    warehouse = tmp_path / "warehouse.duckdb"
    docs_dir = tmp_path / "data_docs"
    api_port = free_port()
    env = airflow_environment(
        home, dags_folder=segments_dags, api_port=api_port, jwt_secret=secrets.token_urlsafe(64),
        passwords_file=passwords_file, pycache=tmp_path / "pycache",
        extra={"SEGPROVIDER_DOCS_DIR": str(docs_dir), "SEGPROVIDER_DATA_DIR": str(data_dir),
               # the UI's "Test connection" button, off by default in Airflow 3
               "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"},
    )
    # Fill the bytecode cache with what every task imports while the migration runs: the first tasks
    # would otherwise each compile Great Expectations at once.
    warm_up = subprocess.Popen([sys.executable, "-c", WARM_UP_IMPORTS], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        migrated = subprocess.run([str(VENV_BIN / "airflow"), "db", "migrate"], env=env, capture_output=True,
                                  text=True, timeout=180)
        assert migrated.returncode == 0, f"airflow db migrate failed:\n{migrated.stdout}\n{migrated.stderr}"
        _, warm_up_errors = warm_up.communicate(timeout=180)
        assert warm_up.returncode == 0, f"importing what the tasks import failed:\n{warm_up_errors.decode()}"
    finally:
        if warm_up.poll() is None:
            warm_up.kill()
            warm_up.wait()
    return AirflowInstallation(home, segments_dags, warehouse, docs_dir, api_port, password, env)


@pytest.fixture(scope="module")
def running_airflow(request: pytest.FixtureRequest, airflow_installation: AirflowInstallation,
                    sandbox: RunningSandbox) -> Iterator[RunningAirflow]:
    """api-server, scheduler and dag-processor as subprocesses on loopback; stopped whatever happens.

    Their output stays in ``$AIRFLOW_HOME/services/<name>.log`` and the task logs in ``$AIRFLOW_HOME/logs``;
    when the test fails, the end of each service's log is printed.
    """
    installation = airflow_installation
    log_dir = installation.home / "services"
    services: list[Service] = []
    try:
        for name, args in (("api-server", ["api-server", "--port", str(installation.api_port)]),
                           ("scheduler", ["scheduler"]),
                           ("dag-processor", ["dag-processor"])):
            services.append(start_service(name, args, env=installation.env, log_dir=log_dir))
        api = AirflowApi(f"http://127.0.0.1:{installation.api_port}")
        wait_for("the api-server, scheduler and dag-processor to report healthy", api.healthy, timeout=120,
                 services=services)
        api.login(ADMIN, installation.admin_password)
        create_connections(api, destination_connections(installation.warehouse, sandbox.url))
        api.request("POST", "/pools", json={"name": POOL, "slots": 1, "description": "one DuckDB writer at a time"})
        yield RunningAirflow(installation, api, services)
    finally:
        # Task processes belong to the scheduler's group: stop it first so nothing new starts.
        for service in sorted(services, key=lambda s: s.name != "scheduler"):
            service.stop()
        if request.module.__name__ in FAILED_MODULES:
            print(f"\nAirflow home (metadata DB, task logs under logs/): {installation.home}")
            for service in services:
                print(f"--- airflow {service.name}, exit code {service.process.returncode}, "
                      f"log {service.log_path}:\n{service.tail(30)}")

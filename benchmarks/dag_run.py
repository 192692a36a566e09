"""Benchmark: ``segments_centralized`` on the example project, on a real Airflow scheduler.

Run: ``.venv/bin/python benchmarks/dag_run.py`` (50,000 customers; ``--customers 2000`` for a quick run;
``--keep`` leaves the temporary folder, with every service and task log, in place).

What it sets up, as a deployment would, all in one temporary folder on loopback (the harness of
``tests/airflow_services/``, imported from ``tests/support/airflow_services.py``): the landing files
written by ``segprovider land`` with their newest rows at today's midnight (UTC), read through
``$SEGPROVIDER_DATA_DIR``; a DAG folder holding a copy of the example project, the DAG file that builds
``segments_centralized`` from it, and two tiny DAGs of this benchmark (below); a migrated SQLite metadata
DB; the destination sandbox seeded as ``segprovider sandbox --seed`` seeds it; then the api-server,
scheduler (LocalExecutor, parallelism 4) and dag-processor as subprocesses. Before starting them it imports
what every task imports once, so the bytecode cache (``PYTHONPYCACHEPREFIX``) is warm, as it is on any
machine after the first run. The connections and the ``segprovider_duckdb`` pool (one slot) are created
through the REST API, the DAG is unpaused through it (``PATCH /api/v2/dags/...``).

What it measures:

1. **The scheduled run** that unpausing an ``@daily``, ``catchup=False`` DAG creates for the latest interval:
   the first full run on fresh data, the one a new deployment sees first (every segment's members are new,
   so every sync sends all of them). ``dag_run_s`` and every task figure come from this run.
2. **A triggered run** right after it, made as the UI's Trigger button makes it (``POST .../dagRuns`` with
   ``"logical_date": null``): a day-two run whose syncs send only changes. Reported under ``triggered``.
3. **The floor**, on the same scheduler once the pipeline is done, each DAG triggered three times one after
   the other (median reported, samples listed): ``segprovider_bench_empty``, one ``@task`` that returns at
   once (``empty_task_s``: its task duration: process start, parsing its DAG file, reporting back), and
   ``segprovider_bench_gx_import``, one ``@task`` that times ``import great_expectations`` inside the task
   process and returns the seconds, read back through the REST API's XCom endpoint (``gate_import_s``:
   GX's own import in a process forked as a gate task's is, with ``airflow.sdk`` already loaded). Measured
   in a task rather than with ``python -c`` because that is the process a gate runs in.

Every duration is Airflow's own: a run's ``end_date - start_date`` and a task instance's ``duration``
(from the moment its process is started to its end) as the REST API reports them.

It prints a task-by-task timeline, then one JSON object on its last line: ``dag_run_s``, ``evaluate_s``,
``max_gate_task_s`` (the longest task named ``gate_*``/``check_*``, in a task group or not), ``gate_import_s``, ``empty_task_s``,
``gate_work_s`` (the longest gate less ``gate_import_s`` and ``empty_task_s``: note a gate task also parses
the ``segments_centralized`` DAG file, which the empty task does not, so this slightly overstates the work),
``overhead_fraction`` (``1 - (ingest.* + evaluate + every sync task's time) / dag_run_s``), ``idle_s`` (time of
the run in which no task was running: scheduler and executor latency between tasks), ``pool_wait_s``
(time tasks spent scheduled but not queued: waiting for the ``segprovider_duckdb`` slot or for
parallelism), ``tasks`` ({label: seconds}), ``customers``, ``bytecode_compiled`` (whether site-packages
hold their own bytecode: ``great_expectations/__pycache__``), the goals (``goal_dag_run_s`` 120,
``goal_max_gate_task_s`` 20, ``goal_gate_work_s`` 5), ``gate_phases`` (each gate task split, from its own log
lines, into parsing the DAG file, imports before it opens the warehouse, and the work after: the floor above
is measured on a quieter machine than the run, so this split is the better view of a gate's own work),
``load_avg_1m`` (the machine is shared: the 1-minute load before and after the run) and ``setup_s``
(landing, migration, services).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support.airflow_services import (  # noqa: E402
    CENTRALIZED_DAG_SOURCE,
    FINISHED_RUN_STATES,
    VENV_BIN,
    WARM_UP_IMPORTS,
    AirflowApi,
    Service,
    airflow_environment,
    create_connections,
    free_port,
    latest_midnight,
    start_service,
    wait_for,
)
from support.sandbox import SANDBOX_CREDENTIALS  # noqa: E402

from airflow_segprovider.cli.demo import sandbox_connections  # noqa: E402
from airflow_segprovider.example import EXAMPLE_PROJECT  # noqa: E402
from segprovider_sandbox import serve  # noqa: E402

DAG_ID = "segments_centralized"
EMPTY_DAG_ID = "segprovider_bench_empty"
GX_IMPORT_DAG_ID = "segprovider_bench_gx_import"
POOL = "segprovider_duckdb"
ADMIN = "admin"
GOAL_DAG_RUN_S = 120.0
GOAL_MAX_GATE_TASK_S = 20.0
GOAL_GATE_WORK_S = 5.0
FLOOR_ROUNDS = 3

#: This benchmark's two tiny DAGs, in the same DAG folder: the floor of a task, and GX's import in a task.
BENCH_DAGS_SOURCE = f'''
import datetime as dt

from airflow.sdk import dag, task


@dag(dag_id="{EMPTY_DAG_ID}", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False,
     tags=["benchmark"])
def bench_empty():
    @task
    def noop():
        return None

    noop()


@dag(dag_id="{GX_IMPORT_DAG_ID}", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False,
     tags=["benchmark"])
def bench_gx_import():
    @task
    def import_great_expectations():
        import sys
        import time

        already = "great_expectations" in sys.modules
        started = time.perf_counter()
        import great_expectations  # noqa: F401
        return {{"seconds": time.perf_counter() - started, "already_imported": already}}

    import_great_expectations()


bench_empty()
bench_gx_import()
'''
def parse_time(timestamp: str | None) -> dt.datetime | None:
    if not timestamp:
        return None
    return dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(dt.timezone.utc)


def label(ti: dict[str, Any]) -> str:
    index = ti.get("map_index")
    return f"{ti['task_id']}[{index}]" if index is not None and index >= 0 else ti["task_id"]


def task_name(task_id: str) -> str:
    """A task's name without its task groups (``hubspot_crm.sync`` -> ``sync``)."""
    return task_id.rsplit(".", 1)[-1]


def is_gate(task_id: str) -> bool:
    return task_name(task_id).startswith(("gate_", "check_"))


def is_work(task_id: str) -> bool:
    """Ingest, evaluate and sync tasks: the run's own work, by the definition of ``overhead_fraction``."""
    return task_id.startswith("ingest.") or task_name(task_id) in ("evaluate", "sync")


def task_seconds(ti: dict[str, Any]) -> float:
    if ti.get("duration") is not None:
        return float(ti["duration"])
    start, end = parse_time(ti.get("start_date")), parse_time(ti.get("end_date"))
    return (end - start).total_seconds() if start and end else 0.0


def run_seconds(run: dict[str, Any]) -> float:
    return (parse_time(run["end_date"]) - parse_time(run["start_date"])).total_seconds()


def bytecode_compiled() -> bool:
    """Whether site-packages hold their own bytecode (found without importing the package)."""
    spec = importlib.util.find_spec("great_expectations")
    return bool(spec and spec.origin and (Path(spec.origin).parent / "__pycache__").is_dir())


def build_dags_folder(work: Path) -> Path:
    dags = work / "dags"
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(CENTRALIZED_DAG_SOURCE)
    (dags / "segprovider_bench.py").write_text(BENCH_DAGS_SOURCE)
    shutil.copytree(EXAMPLE_PROJECT, dags / "segments_project", ignore=shutil.ignore_patterns("landing", "__pycache__"))
    return dags


def land_data(work: Path, customers: int) -> Path:
    data = work / "data"
    landed = subprocess.run([str(VENV_BIN / "segprovider"), "land", "--data-dir", str(data), "--customers",
                             str(customers), "--anchor", latest_midnight().isoformat()],
                            capture_output=True, text=True, timeout=900)
    if landed.returncode != 0:
        raise RuntimeError(f"segprovider land failed:\n{landed.stdout}\n{landed.stderr}")
    return data


def migrate_and_warm_up(env: dict[str, str]) -> None:
    """``airflow db migrate`` while another process fills the bytecode cache with what the tasks import."""
    warm_up = subprocess.Popen([sys.executable, "-c", WARM_UP_IMPORTS], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        migrated = subprocess.run([str(VENV_BIN / "airflow"), "db", "migrate"], env=env, capture_output=True,
                                  text=True, timeout=300)
        if migrated.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrated.stdout}\n{migrated.stderr}")
        _, errors = warm_up.communicate(timeout=300)
        if warm_up.returncode != 0:
            raise RuntimeError(f"importing what the tasks import failed:\n{errors.decode()}")
    finally:
        if warm_up.poll() is None:
            warm_up.kill()
            warm_up.wait()


def wait_parsed(api: AirflowApi, dag_id: str, services: list[Service]) -> None:
    def parsed() -> bool:
        reply = api.session.get(f"{api.base_url}/api/v2/dags/{dag_id}", timeout=10)
        return reply.status_code == 200
    wait_for(f"the dag-processor to parse {dag_id}", parsed, timeout=300, services=services)


def wait_run(api: AirflowApi, dag_id: str, run_id: str, services: list[Service], timeout: float) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        run = api.get(f"/dags/{dag_id}/dagRuns/{run_id}")
        return run if run["state"] in FINISHED_RUN_STATES else None
    return wait_for(f"run {run_id} of {dag_id} to finish", finished, timeout=timeout, interval=1.0,
                    services=services)


def trigger(api: AirflowApi, dag_id: str, services: list[Service], timeout: float) -> dict[str, Any]:
    """A run as the UI's Trigger button makes it (no logical date), waited for until it finished."""
    created = api.request("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": {}})
    return wait_run(api, dag_id, created["dag_run_id"], services, timeout)


def first_scheduled_run(api: AirflowApi, services: list[Service], timeout: float) -> dict[str, Any]:
    """Unpause ``segments_centralized``: the scheduler creates the latest interval's run; wait for it."""
    api.request("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})

    def created() -> dict[str, Any] | None:
        runs = api.get(f"/dags/{DAG_ID}/dagRuns", run_type="scheduled", limit=10)["dag_runs"]
        return runs[0] if runs else None
    run = wait_for(f"the scheduler to create a run of {DAG_ID}", created, timeout=120, services=services)
    return wait_run(api, DAG_ID, run["dag_run_id"], services, timeout)


def run_report(api: AirflowApi, run: dict[str, Any]) -> dict[str, Any]:
    """Durations of one run and its tasks, and where the run's time went between them."""
    tis = api.get(f"/dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}/taskInstances", limit=200)["task_instances"]
    run_start, run_end = parse_time(run["start_date"]), parse_time(run["end_date"])
    rows = []
    # A task of an older version of the DAG (the code changed while the run was going) never ran.
    tis = [ti for ti in tis if ti["state"] != "removed"]
    for ti in sorted(tis, key=lambda t: (t.get("start_date") or "~", label(t))):
        start, end = parse_time(ti.get("start_date")), parse_time(ti.get("end_date"))
        scheduled, queued = parse_time(ti.get("scheduled_when")), parse_time(ti.get("queued_when"))
        rows.append({
            "label": label(ti), "task_id": ti["task_id"], "state": ti["state"], "pool": ti.get("pool"), "seconds": round(task_seconds(ti), 2),
            "start": start, "end": end,
            "offset_s": round((start - run_start).total_seconds(), 2) if start else None,
            # scheduled -> queued: waiting for a pool slot or for parallelism; queued -> start: the executor
            "pool_wait_s": round((queued - scheduled).total_seconds(), 2) if queued and scheduled else 0.0,
            "executor_wait_s": round((start - queued).total_seconds(), 2) if start and queued else 0.0,
        })
    # The union of task intervals: what is left of the run is time no task was running.
    busy, cursor = 0.0, run_start
    for row in sorted((r for r in rows if r["start"] and r["end"]), key=lambda r: r["start"]):
        begin = max(row["start"], cursor)
        if row["end"] > begin:
            busy += (row["end"] - begin).total_seconds()
            cursor = row["end"]
    dag_run_s = (run_end - run_start).total_seconds()
    return {"run_id": run["dag_run_id"], "run_type": run["run_type"], "state": run["state"],
            "dag_run_s": round(dag_run_s, 2), "idle_s": round(dag_run_s - busy, 2),
            "pool_wait_s": round(sum(r["pool_wait_s"] for r in rows), 2),
            "executor_wait_s": round(sum(r["executor_wait_s"] for r in rows), 2), "rows": rows}


def gate_phases(home: Path, report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each gate task's time split by its own log lines (JSON lines under ``$AIRFLOW_HOME/logs``).

    ``parse_s``: task start to "Worker startup parse complete" (the DAG file); ``imports_s``: from there to
    "Opening DuckDB database" (Great Expectations and the gate's other imports happen before the gate
    takes the warehouse); ``work_s``: from there to the last line (queries, validation, XCom).
    """
    phases: dict[str, dict[str, float]] = {}
    for row in report["rows"]:
        if not is_gate(row["task_id"]) or not row["start"]:
            continue
        folder = (home / "logs" / f"dag_id={DAG_ID}" / f"run_id={report['run_id']}" / f"task_id={row['task_id']}")
        files = sorted(folder.glob("attempt=*.log"))
        if not files:
            continue
        events: list[tuple[dt.datetime, str]] = []
        for line in files[-1].read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
                events.append((parse_time(record["timestamp"]), str(record.get("event", ""))))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
        parsed = next((t for t, e in events if e.startswith("Worker startup parse complete")), None)
        opened = next((t for t, e in events if e.startswith("Opening DuckDB database")), None)
        if not (events and parsed and opened):
            continue
        phases[row["label"]] = {"parse_s": round((parsed - row["start"]).total_seconds(), 2),
                                "imports_s": round((opened - parsed).total_seconds(), 2),
                                "work_s": round((events[-1][0] - opened).total_seconds(), 2)}
    return phases


def print_timeline(title: str, report: dict[str, Any]) -> None:
    print(f"\n{title}: {report['run_id']} ({report['state']}), {report['dag_run_s']:.1f} s, "
          f"no task running for {report['idle_s']:.1f} s")
    print(f"  {'task':32} {'state':9} {'starts at':>9} {'took':>7} {'pool wait':>9} {'exec wait':>9}")
    for row in report["rows"]:
        offset = f"{row['offset_s']:.1f}" if row["offset_s"] is not None else "-"
        print(f"  {row['label']:32} {row['state'] or '-':9} {offset:>9} {row['seconds']:>7.1f} "
              f"{row['pool_wait_s']:>9.1f} {row['executor_wait_s']:>9.1f}")


def floor_samples(api: AirflowApi, services: list[Service]) -> tuple[list[float], list[float]]:
    """Task durations of the empty task, and GX's import time inside a task, ``FLOOR_ROUNDS`` runs each."""
    for dag_id in (EMPTY_DAG_ID, GX_IMPORT_DAG_ID):
        wait_parsed(api, dag_id, services)
        api.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    empty, gx = [], []
    for _ in range(FLOOR_ROUNDS):
        run = trigger(api, EMPTY_DAG_ID, services, timeout=300)
        (ti,) = api.get(f"/dags/{EMPTY_DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]
        if ti["state"] != "success":
            raise RuntimeError(f"{EMPTY_DAG_ID} task ended {ti['state']}")
        empty.append(task_seconds(ti))
    for _ in range(FLOOR_ROUNDS):
        run = trigger(api, GX_IMPORT_DAG_ID, services, timeout=300)
        entry = api.get(f"/dags/{GX_IMPORT_DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/"
                        "import_great_expectations/xcomEntries/return_value", deserialize="true")
        value = entry["value"]
        value = json.loads(value) if isinstance(value, str) else value
        if value["already_imported"]:
            raise RuntimeError("great_expectations was imported before the task ran: the sample means nothing")
        gx.append(float(value["seconds"]))
    return empty, gx


def summarize(customers: int, scheduled: dict[str, Any], triggered: dict[str, Any] | None,  # noqa: PLR0913
              empty: list[float], gx: list[float], compiled: bool, setup_s: float,
              phases: dict[str, dict[str, float]], load: dict[str, float]) -> dict[str, Any]:
    tasks = {row["label"]: row["seconds"] for row in scheduled["rows"]}
    gates = {row["label"]: row["seconds"] for row in scheduled["rows"] if is_gate(row["task_id"])}
    work = sum(row["seconds"] for row in scheduled["rows"] if is_work(row["task_id"]))
    empty_task_s, gate_import_s = statistics.median(empty), statistics.median(gx)
    max_gate = max(gates.values(), default=0.0)
    gate_work_s = max_gate - gate_import_s - empty_task_s
    dag_run_s = scheduled["dag_run_s"]
    result: dict[str, Any] = {
        "customers": customers,
        "run_id": scheduled["run_id"], "run_state": scheduled["state"],
        "dag_run_s": dag_run_s,
        "evaluate_s": tasks.get("evaluate"),
        "max_gate_task_s": round(max_gate, 2),
        "max_gate_task": max(gates, key=gates.get) if gates else None,
        "gate_import_s": round(gate_import_s, 2),
        "empty_task_s": round(empty_task_s, 2),
        "gate_work_s": round(gate_work_s, 2),
        "overhead_fraction": round(1 - work / dag_run_s, 3) if dag_run_s else None,
        "idle_s": scheduled["idle_s"],
        "pool_wait_s": scheduled["pool_wait_s"],
        "executor_wait_s": scheduled["executor_wait_s"],
        "tasks": tasks,
        "gate_phases": phases,
        "load_avg_1m": load,
        "gate_import_samples_s": [round(s, 2) for s in gx],
        "empty_task_samples_s": [round(s, 2) for s in empty],
        "bytecode_compiled": compiled,
        "setup_s": round(setup_s, 1),
        "goal_dag_run_s": GOAL_DAG_RUN_S,
        "goal_max_gate_task_s": GOAL_MAX_GATE_TASK_S,
        "goal_gate_work_s": GOAL_GATE_WORK_S,
        "goals_met": {"dag_run_s": dag_run_s <= GOAL_DAG_RUN_S,
                      "max_gate_task_s": max_gate <= GOAL_MAX_GATE_TASK_S,
                      "gate_work_s": gate_work_s <= GOAL_GATE_WORK_S},
    }
    if triggered is not None:
        result["triggered"] = {"run_id": triggered["run_id"], "state": triggered["state"],
                               "dag_run_s": triggered["dag_run_s"], "idle_s": triggered["idle_s"],
                               "pool_wait_s": triggered["pool_wait_s"],
                               "tasks": {row["label"]: row["seconds"] for row in triggered["rows"]}}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000, help="customers to land (50,000)")
    parser.add_argument("--no-trigger", action="store_true", help="skip the triggered run after the scheduled one")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, metadata DB)")
    args = parser.parse_args()

    compiled = bytecode_compiled()
    work = Path(tempfile.mkdtemp(prefix="segprovider-dag-run-"))
    services: list[Service] = []
    sandbox = None
    started = time.monotonic()
    try:
        print(f"working in {work}", flush=True)
        data = land_data(work, args.customers)
        dags = build_dags_folder(work)
        home = work / "airflow"
        home.mkdir()
        password = secrets.token_urlsafe(16)
        passwords_file = home / "simple_auth_manager_passwords.json"
        passwords_file.write_text(json.dumps({ADMIN: password}) + "\n")
        api_port = free_port()
        env = airflow_environment(
            home, dags_folder=dags, api_port=api_port, jwt_secret=secrets.token_urlsafe(64),
            passwords_file=passwords_file, pycache=work / "pycache",
            extra={"SEGPROVIDER_DOCS_DIR": str(work / "data_docs"), "SEGPROVIDER_DATA_DIR": str(data)})
        migrate_and_warm_up(env)
        sandbox = serve(db_path=work / "sandbox.db")
        sandbox.state.seed_example_project()

        for name, service_args in (("api-server", ["api-server", "--port", str(api_port)]),
                                   ("scheduler", ["scheduler"]), ("dag-processor", ["dag-processor"])):
            services.append(start_service(name, service_args, env=env, log_dir=home / "services"))
        api = AirflowApi(f"http://127.0.0.1:{api_port}")
        wait_for("the api-server, scheduler and dag-processor to report healthy", api.healthy, timeout=180,
                 services=services)
        api.login(ADMIN, password)
        create_connections(api, sandbox_connections(work / "warehouse.duckdb", sandbox.url,
                                                    f"{sandbox.url}/webhook/alerts", SANDBOX_CREDENTIALS))
        api.request("POST", "/pools", json={"name": POOL, "slots": 1, "description": "one DuckDB writer at a time"})
        wait_parsed(api, DAG_ID, services)
        setup_s = time.monotonic() - started
        print(f"set up in {setup_s:.0f} s (bytecode of site-packages compiled: {compiled})", flush=True)

        load = {"before_run": round(os.getloadavg()[0], 2)}
        scheduled = run_report(api, first_scheduled_run(api, services, timeout=1800))
        load["after_run"] = round(os.getloadavg()[0], 2)
        print_timeline("scheduled run (first, fresh data)", scheduled)
        phases = gate_phases(home, scheduled)
        print("gate tasks, from their logs (s): " + "; ".join(
            f"{name} parse {p['parse_s']}, imports {p['imports_s']}, work {p['work_s']}" for name, p in phases.items()))
        triggered = None
        if not args.no_trigger:
            triggered = run_report(api, trigger(api, DAG_ID, services, timeout=1800))
            print_timeline("triggered run (logical_date null)", triggered)
        empty, gx = floor_samples(api, services)
        print(f"\nempty task: {', '.join(f'{s:.2f}' for s in empty)} s; "
              f"import great_expectations in a task: {', '.join(f'{s:.2f}' for s in gx)} s")
        load["after_floor"] = round(os.getloadavg()[0], 2)
        result = summarize(args.customers, scheduled, triggered, empty, gx, compiled, setup_s, phases, load)
    finally:
        # Task processes belong to the scheduler's group: stop it first so nothing new starts.
        for service in sorted(services, key=lambda s: s.name != "scheduler"):
            service.stop()
        if sandbox is not None:
            sandbox.stop()
        if args.keep:
            print(f"kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

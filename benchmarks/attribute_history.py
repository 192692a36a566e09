"""Benchmark: what keeping customer attribute history costs ingest and evaluation (1,000,000 customers).

Run: ``uv run python benchmarks/attribute_history.py`` (``--customers``, ``--changed-fraction``).

Two DuckDB warehouses load the same Parquet export of ``--customers`` customers (five attributes)
through ``segprovider ingest``'s code path, one project with ``model.customer.history: true`` and
one without:

1. ``seed_s`` / ``seed_plain_s``: the first load (with history, it also writes every customer's
   first version);
2. ``change_s`` / ``change_plain_s``: a second export where ``--changed-fraction`` of the customers
   changed ``lifetime_value`` (with history: the whole table compared with the open versions,
   the changed ones closed and reopened, in the load's transaction); ``versions`` is the
   history's row count after it;
3. ``evaluate_s`` / ``evaluate_plain_s``: one evaluation of three attribute segments at the
   second load's ``as_of`` (with history: over the versions valid then).

Prints one JSON object on its last line with those fields and ``peak_rss_mb`` (this process).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from airflow_segprovider.core.evaluate.engine import evaluate  # noqa: E402
from airflow_segprovider.core.project.loader import load_project  # noqa: E402
from airflow_segprovider.core.state.attributes import HISTORY_TABLE  # noqa: E402
from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse  # noqa: E402
from airflow_segprovider.ingest import ingest_source  # noqa: E402

DAY_1, DAY_2 = dt.datetime(2026, 11, 23), dt.datetime(2026, 11, 24)

PROJECT = """\
project: {name: history_bench, version: 1}
model:
  customer:
    table: customers
    key: customer_id
%s    attributes:
      email: {type: string}
      lifetime_value: {type: number}
      plan: {type: string}
      country: {type: string}
      signup_date: {type: date}
segments:
  - name: big_spenders
    rule: {attribute: lifetime_value, op: gte, value: 900}
  - name: pro_de
    rule: {all: [{attribute: plan, op: eq, value: pro}, {attribute: country, op: eq, value: DE}]}
  - name: recent
    rule: {attribute: signup_date, op: gte, value: 2026-01-01}
sources:
  - {name: crm, table: customers, kind: file, format: parquet, path: landing/customers.parquet}
"""


def export(path: Path, customers: int, changed_every: int | None) -> None:
    """The customers' export; with ``changed_every``, every n-th customer's lifetime value changed."""
    ids = list(range(customers))
    ltv = [float((i * 7919) % 1000) + (0.5 if changed_every and i % changed_every == 0 else 0.0) for i in ids]
    table = pa.table({
        "customer_id": pa.array([str(i) for i in ids]),
        "email": pa.array([f"c{i}@example.com" for i in ids]),
        "lifetime_value": pa.array(ltv),
        "plan": pa.array(["pro" if i % 3 == 0 else "free" for i in ids]),
        "country": pa.array(["DE" if i % 5 == 0 else "FR" for i in ids]),
        "signup_date": pa.array([dt.date(2025, 1, 1) + dt.timedelta(days=i % 700) for i in ids]),
    })
    pq.write_table(table, path)


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return round(time.perf_counter() - started, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--changed-fraction", type=float, default=0.01)
    args = parser.parse_args()
    changed_every = max(1, round(1 / args.changed_fraction))
    result: dict[str, float | int] = {"customers": args.customers,
                                      "changed": len(range(0, args.customers, changed_every))}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "landing").mkdir()
        projects = {}
        for name, history in (("history", "    history: true\n"), ("plain", "")):
            (work / name).mkdir()
            (work / name / "project.yml").write_text(PROJECT % history)
            projects[name] = load_project(work / name)
        warehouses = {name: DuckDBWarehouse(work / f"{name}.duckdb") for name in projects}
        try:
            for step, day, every in (("seed", DAY_1, None), ("change", DAY_2, changed_every)):
                export(work / "landing" / "customers.parquet", args.customers, every)
                for name, project in projects.items():
                    suffix = "" if name == "history" else "_plain"
                    result[f"{step}{suffix}_s"] = timed(lambda p=project, w=warehouses[name], d=day: ingest_source(
                        p, w, "crm", now=d, valid_from=d, files_root=work))
            result["versions"] = warehouses["history"].query(f"SELECT COUNT(*) FROM {HISTORY_TABLE}")[0][0]
            for name, project in projects.items():
                suffix = "" if name == "history" else "_plain"
                result[f"evaluate{suffix}_s"] = timed(lambda p=project, w=warehouses[name]: evaluate(p, w, DAY_2))
        finally:
            for warehouse in warehouses.values():
                warehouse.close()
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""``segprovider land``: write the example project's landing files, dated relative to today, for a deployment.

A real deployment ingests what upstream systems export; the example project's sources read Parquet
files under ``<data dir>/landing/``. This command writes them (generated, seeded) with their newest
timestamp at ``--anchor`` (default: now), so the freshness gate of the run you trigger today passes. The
example DAGs in ``dags/`` read the same folder: ``$SEGPROVIDER_DATA_DIR``, else
``$AIRFLOW_HOME/segprovider_data``.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_segprovider.cli.common import EXIT_OK, as_of_type, int_at_least

if TYPE_CHECKING:
    from airflow_segprovider.cli.common import AddCommand


def cmd_land(args: argparse.Namespace) -> int:
    from airflow_segprovider.example.landing import default_data_dir, land_example_data

    data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_data_dir()
    counts, written = land_example_data(data_dir, anchor=args.anchor, customers=args.customers, seed=args.seed)
    anchor = args.anchor or dt.datetime.now(dt.timezone.utc)
    print(f"landed {counts.customers:,} customers, {counts.events:,} events, {counts.orders:,} orders and "
          f"{counts.consents:,} consent answers, newest at {anchor:%Y-%m-%d %H:%M} UTC:")
    for table, path in written.items():
        print(f"  {table:<10} {path}")
    print(f"the example DAGs read them when {data_dir} is their data folder "
          "(SEGPROVIDER_DATA_DIR; default $AIRFLOW_HOME/segprovider_data)")
    return EXIT_OK


def register(command: AddCommand) -> None:
    """Add this group's command to the ``segprovider`` parser."""
    p = command("land", cmd_land, "Write the example project's landing files (Parquet), dated relative to today, "
                "where the example DAGs read them.")
    p.add_argument("--data-dir", help="folder to write landing/<table>/<table>.parquet into (default: "
                   "$SEGPROVIDER_DATA_DIR, else $AIRFLOW_HOME/segprovider_data)")
    p.add_argument("--anchor", type=as_of_type, help="newest timestamp in the data, ISO 8601 (default: now, UTC)")
    p.add_argument("--customers", type=int_at_least(1, 100_000_000), default=50_000,
                   help="customers to generate (50,000)")
    p.add_argument("--seed", type=int_at_least(0), default=42,
                   help="random seed: the same seed and anchor give the same rows")

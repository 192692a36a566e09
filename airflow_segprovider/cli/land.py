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

from airflow_segprovider.cli.common import EXIT_OK

if TYPE_CHECKING:
    from airflow_segprovider.cli.common import AddCommand


def anchor_arg(text: str) -> dt.datetime:
    """``--anchor``: an ISO 8601 date or time (UTC unless it has an offset), between 1970 and 2200."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r} (e.g. 2026-12-02 or "
                                         "2026-12-02T06:00:00+00:00)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    if not dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) <= value <= dt.datetime(2200, 1, 1, tzinfo=dt.timezone.utc):
        raise argparse.ArgumentTypeError(f"{text!r} is outside 1970-01-01 .. 2200-01-01")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
    p.add_argument("--anchor", type=anchor_arg, help="newest timestamp in the data, ISO 8601 (default: now, UTC)")
    p.add_argument("--customers", type=positive_int, default=50_000, help="customers to generate (50,000)")
    p.add_argument("--seed", type=int, default=42, help="random seed: the same seed and anchor give the same rows")

"""``segprovider sync-log``: what each sync run sent, record by record, and what the destination answered.

Reads the per-record sync log (``segprovider_sync_log``) the sync engine appends in the same
transaction as each acknowledged batch's state. Every row carries the ``run_id`` of its run record
(``segprovider_sync_runs``, the ``run_id`` of ``segprovider sync --json``): the two join on
``(run_id, sync_id)``, which is how each row shows its destination and ``as_of``.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from airflow_segprovider.cli.common import EXIT_OK, add_db_arguments, as_of_type, int_at_least, load, open_warehouse
from airflow_segprovider.core.state.sync import RUNS as SYNC_RUNS

if TYPE_CHECKING:
    from airflow_segprovider.cli.common import AddCommand

#: the columns printed, in order, with their headings
COLUMNS = (("logged_at", "time (UTC)"), ("sync_id", "sync"), ("destination", "destination"), ("run_id", "run"),
           ("customer_key", "customer"), ("action", "action"), ("status", "answer"), ("error_code", "error"))


def cmd_sync_log(args: argparse.Namespace) -> int:
    from airflow_segprovider.core.sync.record import read_sync_log

    project = load(args.project) if args.project else None
    warehouse = open_warehouse(project, args.db, args.wait_for_lock)
    try:
        entries = read_sync_log(warehouse, sync_id=args.sync, customer_key=args.customer, run_id=args.run,
                                since=args.since, until=args.until, limit=args.limit)
    finally:
        warehouse.close()
    if args.json:
        print(json.dumps(entries, indent=2, default=str))
        return EXIT_OK
    if not entries:
        print("no sync-log rows match")
        return EXIT_OK
    rows = [[heading for _, heading in COLUMNS]] + [
        ["" if entry[name] is None else str(entry[name]) for name, _ in COLUMNS] for entry in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    for row in rows:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())
    if len(entries) == args.limit:
        print(f"(first {args.limit:,} rows, newest first; --limit N for more)")
    return EXIT_OK


def register(command: AddCommand) -> None:
    """Add this group's command to the ``segprovider`` parser."""
    p = command("sync-log", cmd_sync_log,
                "Show what sync runs sent, record by record, and what each destination answered (newest first). "
                f"Each row's run is the run_id of its run record in {SYNC_RUNS} (segprovider sync --json), "
                "the join key between the two; rows older than a sync's log retention (90 days by default) "
                "are deleted at the end of its runs.")
    p.add_argument("--project", help="the segments project (locates the DuckDB warehouse unless --db is given)")
    p.add_argument("--sync", metavar="ID", help="only this sync id (e.g. vip__mailchimp_newsletter)")
    p.add_argument("--customer", metavar="KEY", help="only this customer key")
    p.add_argument("--run", metavar="RUN_ID", help="only this run: the run_id of its run record")
    p.add_argument("--since", type=as_of_type, metavar="TIME",
                   help="rows logged at or after TIME (ISO 8601 date or time, UTC unless an offset is given)")
    p.add_argument("--until", type=as_of_type, metavar="TIME", help="rows logged before TIME (as --since)")
    p.add_argument("--limit", type=int_at_least(1, 1_000_000), default=100, metavar="N",
                   help="at most N rows (100)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    add_db_arguments(p)

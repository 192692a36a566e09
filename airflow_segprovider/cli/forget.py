"""``segprovider forget CUSTOMER...``: erase people from every destination and every table the project keeps.

Each person is first suppressed (nothing sends them from then on), then deleted for good at each
destination a sync sent them to (Mailchimp's permanent delete, HubSpot's GDPR delete, Meta's removal from
each audience, a webhook's ``erase`` event), then from every project table in one transaction, leaving only a
salted-hash tombstone that ingest honours. A destination that fails leaves the request pending: run the
command again (``--pending`` retries every unfinished one). The privacy salt comes from
``SEGPROVIDER_PRIVACY_SALT``; credentials from ``AIRFLOW_CONN_<CONNECTION_ID>``, as ``segprovider sync``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from airflow_segprovider.cli.common import EXIT_ERROR, EXIT_OK, add_db_arguments, load, open_warehouse
from airflow_segprovider.core.errors import TerminalError
from airflow_segprovider.core.state.privacy import SALT_ENV

if TYPE_CHECKING:
    from airflow_segprovider.cli.common import AddCommand


def customer_key_arg(text: str) -> str:
    """A customer key as given on the command line: not blank."""
    if not text.strip():
        raise argparse.ArgumentTypeError("a customer key cannot be empty")
    return text.strip()


def erasure_client(project, sync):
    """The connector of one sync an erasure reaches (a hub push's too), credentials from ``AIRFLOW_CONN_<ID>``."""
    from airflow_segprovider.destinations.connection import build_client, connection_from_env
    from airflow_segprovider.destinations.spokes import push_overrides

    destination = project.destinations[sync.destination]
    connection = connection_from_env(destination.connection_id, destination=destination.name)
    return build_client(project, sync, connection, push_overrides(project, sync))


def cmd_forget(args: argparse.Namespace) -> int:
    from airflow_segprovider.core.privacy import check_salt, forget, pending_erasures

    salt = check_salt(os.environ.get(SALT_ENV))  # refused before anything is opened
    if not args.customers and not args.pending:
        raise TerminalError("give the customer keys to forget, or --pending to retry the unfinished erasures")
    project = load(args.project)
    warehouse = open_warehouse(project, args.db, args.wait_for_lock)
    try:
        keys = list(args.customers) + (pending_erasures(warehouse) if args.pending else [])
        if not keys:
            print("no unfinished erasure")
            return EXIT_OK
        results = forget(project, warehouse, keys, clients=lambda sync: erasure_client(project, sync), salt=salt,
                         requested_by=f"cli:{args.requested_by}")
    finally:
        warehouse.close()
    status = EXIT_OK
    for given, result in zip(dict.fromkeys(keys), results):
        # the key is what the user typed: shown back to them here, never stored
        print(f"{given}: {result.status} (request {result.request_id})")
        for outcome in result.destinations:
            print(f"    {outcome.destination}{f' ({outcome.sync_id})' if outcome.sync_id else ''}: "
                  f"{outcome.status}: {outcome.detail}", file=sys.stderr if outcome.status == "failed" else sys.stdout)
        if result.tables:
            print(f"    project tables: {sum(result.tables.values()):,} rows deleted from "
                  + ", ".join(f"{table} ({count:,})" for table, count in sorted(result.tables.items())))
        for table in result.external_tables:
            print(f"    {table}: read but not loaded by the project: the customer stays suppressed until erased there "
                  "upstream; then run forget again")
        if result.status == "pending":
            status = EXIT_ERROR
            print(f"{given}: a destination failed; the person stays suppressed (nothing sends them). "
                  "Run 'segprovider forget' again (or --pending) to retry", file=sys.stderr)
    if args.json:
        print(json.dumps([result.to_dict() for result in results], indent=2, default=str))
    return status


def register(command: AddCommand) -> None:
    """Add this group's command to the ``segprovider`` parser."""
    p = command("forget", cmd_forget,
                "Erase customers from every destination (vendor permanent delete / GDPR endpoints) and from every "
                "table the project keeps, leaving a salted-hash tombstone that keeps them out of every later "
                f"ingest and sync. Needs {SALT_ENV}; credentials come from AIRFLOW_CONN_<CONNECTION_ID>.")
    p.add_argument("customers", nargs="*", type=customer_key_arg, metavar="CUSTOMER",
                   help="customer keys, as the customer table holds them")
    p.add_argument("--project", required=True, help="the segments project")
    p.add_argument("--pending", action="store_true", help="also retry every erasure a destination has not confirmed")
    p.add_argument("--requested-by", default=os.environ.get("USER") or "unknown", metavar="WHO",
                   help="who asked, recorded with the pending suppression (default: $USER)")
    p.add_argument("--json", action="store_true", help="also print each request's outcome as JSON (no keys)")
    add_db_arguments(p)

"""The read-only queries behind each view, written once in the SQL every warehouse reads alike.

The aggregate views read tables sized by segments x runs x days, never the membership history:
``segprovider_snapshots`` (one row per segment and ``as_of``, with its adds and removes, written by each
evaluation, incremental or not), the arm sizes and priority-group removals each evaluation writes beside it
(:mod:`airflow_segprovider.core.state.insights`), ``segprovider_sync_runs`` (one row per run and sync), the destination
counts and drift reports (one row per sync or finding and run), and the rejected records (bounded by
:data:`ROW_LIMIT`). Two answers read members, each bounded: the overlap matrix reads the members of **one**
``as_of`` (the size of one snapshot), and the customer lookup reads **one** customer's rows: their changes
and their rows of each segment's first snapshot, compared by key (see :func:`customer_history`).

Every value from a request is a bound parameter (``%(name)s``, see
:mod:`airflow_segprovider.core.warehouses.base`); table names are the core's constants.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.state import sync as sync_state
from airflow_segprovider.core.state.distributed import RUNS as RECONCILE_RUNS
from airflow_segprovider.core.state.gates import DESTINATION_COUNTS
from airflow_segprovider.core.state.hybrid import DRIFT_REPORTS
from airflow_segprovider.core.state.insights import ARM_SIZES, CUSTOMER_CHANGES, PRIORITY_REMOVALS
from airflow_segprovider.core.state.membership import BITS, CHANGES, MEMBERSHIPS, SNAPSHOTS, WORDS
from airflow_segprovider.core.state.sync import REJECTED
from airflow_segprovider.core.state.sync import RUNS as SYNC_RUNS

if TYPE_CHECKING:
    from airflow_segprovider.core.warehouses.base import Warehouse

#: Most rows of a per-record table (rejected records, a customer's sync log) one answer returns.
ROW_LIMIT = 200
SYNC_LOG = sync_state.LOG


def plain(value: Any) -> Any:
    """A JSON-ready value: timestamps as ISO text, decimals as floats."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _records(warehouse: Warehouse, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [{k: plain(v) for k, v in row.items()} for row in warehouse.query_records(sql, parameters)]


def _exists(warehouse: Warehouse, table: str) -> bool:
    return warehouse.columns(table) is not None


def snapshot_series(warehouse: Warehouse) -> dict[str, list[dict[str, Any]]]:
    """Per segment, its snapshots in time order: ``as_of``, members, added, removed."""
    if not _exists(warehouse, SNAPSHOTS):
        return {}
    series: dict[str, list[dict[str, Any]]] = {}
    for row in _records(warehouse, f"SELECT segment, as_of, members, added, removed, run_id FROM {SNAPSHOTS} "
                                   "ORDER BY segment, as_of"):
        series.setdefault(row.pop("segment"), []).append(row)
    return series


def snapshot_dates(warehouse: Warehouse) -> list[str]:
    """Every ``as_of`` with a snapshot, newest first."""
    if not _exists(warehouse, SNAPSHOTS):
        return []
    return [plain(r[0]) for r in warehouse.query(f"SELECT DISTINCT as_of FROM {SNAPSHOTS} ORDER BY as_of DESC")]


def overlap(warehouse: Warehouse, as_of: dt.datetime) -> dict[str, Any]:
    """Shared members of every pair of segments at ``as_of`` (the diagonal: each segment's size).

    Reads the members of that one ``as_of`` (bounded by one snapshot's size), never the history, and
    only once per snapshot: a snapshot's matrix is kept for as long as its writes are the ones the store
    holds (:func:`_snapshot_writes`, the cache key, changes when the ``as_of`` is evaluated again).
    """
    if not _exists(warehouse, SNAPSHOTS):
        return {"segments": [], "matrix": []}
    slots = _snapshot_writes(warehouse, as_of)
    key = (as_of, slots) if slots else None
    with _OVERLAP_LOCK:
        cached = _OVERLAP_CACHE.get(key) if key else None
        if cached is not None:
            _OVERLAP_CACHE.move_to_end(key)
    if cached is None:
        shared = _shared_packed(warehouse, as_of, slots) if slots and _one_word(slots) else None
        if shared is None:
            shared = _shared_rows(warehouse, as_of)
        segments = sorted({row for row, _ in shared})
        cached = {"segments": segments, "matrix": [[shared.get((a, b), 0) for b in segments] for a in segments]}
        if key:
            with _OVERLAP_LOCK:
                _OVERLAP_CACHE[key] = cached
                while len(_OVERLAP_CACHE) > OVERLAP_CACHE_SIZE:
                    _OVERLAP_CACHE.popitem(last=False)
    return {"segments": list(cached["segments"]), "matrix": [list(row) for row in cached["matrix"]]}


#: Overlap matrices kept, one per snapshot (about segments² integers each).
OVERLAP_CACHE_SIZE = 256
_OVERLAP_CACHE: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
_OVERLAP_LOCK = threading.Lock()


def _snapshot_writes(warehouse: Warehouse, as_of: dt.datetime) -> tuple[tuple[Any, ...], ...]:
    """The packed store's bits of ``as_of``: ``(write_id, word, segment, mask)`` rows, sorted; () without the store.

    ``write_id`` is new for every write (a uuid), and re-evaluating an ``as_of`` deletes or replaces its
    bit rows, so these rows identify the snapshot's content: the overlap cache's key.
    """
    if not _exists(warehouse, BITS) or not _exists(warehouse, WORDS):
        return ()
    return tuple(sorted(
        (str(r[0]), int(r[1]), str(r[2]), int(r[3])) for r in warehouse.query(
            f"SELECT write_id, word, segment, mask FROM {BITS} WHERE as_of = %(as_of)s", {"as_of": as_of})))


def _one_word(slots: tuple[tuple[Any, ...], ...]) -> bool:
    """Every segment of the snapshot is a bit of one word of one write: a member's row holds all of them."""
    return len({(write_id, word) for write_id, word, _, _ in slots}) == 1


def _shared_packed(warehouse: Warehouse, as_of: dt.datetime,
                   slots: tuple[tuple[Any, ...], ...]) -> dict[tuple[str, str], int]:
    """Pair counts from the packed rows: members counted per distinct bit pattern, pairs summed over patterns.

    One pass over the ``as_of``'s word rows, grouped by their bits (no join by customer key); then, with
    ``M`` the patterns x segments membership matrix and ``n`` each pattern's member count, the matrix of
    shared members is ``M^T diag(n) M`` (a split segment's arms are one segment: their masks are or-ed).
    """
    import numpy as np

    write_id, word = slots[0][0], slots[0][1]
    masks: dict[str, int] = {}
    for _, _, segment, mask in slots:
        masks[segment] = masks.get(segment, 0) | mask
    # the write's rows valid at as_of: an incremental run's snapshot is a delta on an earlier write
    rows = warehouse.query(f"SELECT bits, COUNT(*) AS n FROM {WORDS} WHERE as_of <= %(as_of)s "
                           "AND (valid_to IS NULL OR valid_to > %(as_of)s) "
                           "AND write_id = %(write_id)s AND word = %(word)s GROUP BY bits",
                           {"as_of": as_of, "write_id": write_id, "word": word})
    names = list(masks)
    if not rows:
        return {}
    patterns = np.array(rows, dtype=np.int64)
    member = ((patterns[:, :1] & np.array([masks[name] for name in names], dtype=np.int64)) != 0).astype(np.int64)
    # einsum's own loop, not a BLAS matmul: integer-exact, and no BLAS threads spinning on a busy machine
    shared = np.einsum("pi,pj->ij", member, member * patterns[:, 1:], optimize=False)
    return {(a, b): int(shared[i, j]) for i, a in enumerate(names) for j, b in enumerate(names)
            if shared[i, j]}


def _shared_rows(warehouse: Warehouse, as_of: dt.datetime) -> dict[tuple[str, str], int]:
    """Pair counts from the membership view (any store layout): the ``as_of``'s members joined by customer."""
    sql = (f"WITH m AS (SELECT DISTINCT segment, customer_key FROM {MEMBERSHIPS} WHERE as_of = %(as_of)s) "
           "SELECT a.segment AS row_segment, b.segment AS column_segment, COUNT(*) AS shared "
           "FROM m AS a JOIN m AS b ON a.customer_key = b.customer_key GROUP BY a.segment, b.segment")
    return {(r["row_segment"], r["column_segment"]): int(r["shared"])
            for r in warehouse.query_records(sql, {"as_of": as_of})}


def sync_runs(warehouse: Warehouse) -> dict[str, list[dict[str, Any]]]:
    """Per sync, its runs in time order with what each added, removed, rejected and suppressed."""
    if not _exists(warehouse, SYNC_RUNS):
        return {}
    rows = _records(warehouse,
                    "SELECT sync_id, segment, destination, run_id, as_of, status, dry_run, "
                    "succeeded_add AS added, succeeded_change AS changed, succeeded_remove AS removed, "
                    "failed_add + failed_change + failed_remove AS rejected, suppressed, duration_s, started_at "
                    f"FROM {SYNC_RUNS} ORDER BY sync_id, started_at")
    runs: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        runs.setdefault(row.pop("sync_id"), []).append(row)
    return runs


def rejected_records(warehouse: Warehouse) -> list[dict[str, Any]]:
    """The newest records a destination refused, with the reason (at most ROW_LIMIT)."""
    if not _exists(warehouse, REJECTED):
        return []
    return _records(warehouse, "SELECT sync_id, customer_key, operation, error_code, message, attempts, "
                               f"first_seen, last_seen FROM {REJECTED} ORDER BY last_seen DESC, sync_id, "
                               f"customer_key LIMIT {ROW_LIMIT}")


def destination_counts(warehouse: Warehouse) -> list[dict[str, Any]]:
    """Each sync's latest reported count per ``as_of`` and phase, beside the snapshot's size then."""
    if not _exists(warehouse, DESTINATION_COUNTS):
        return []
    sql = (f"WITH c AS (SELECT sync_id, destination, as_of, phase, reported_count, reported_at, "
           f"ROW_NUMBER() OVER (PARTITION BY sync_id, as_of, phase ORDER BY reported_at DESC) AS n "
           f"FROM {DESTINATION_COUNTS}) "
           f"SELECT c.sync_id, c.destination, c.as_of, c.phase, c.reported_count, r.segment, s.members AS central "
           f"FROM c LEFT JOIN (SELECT DISTINCT sync_id, segment FROM {SYNC_RUNS}) AS r ON r.sync_id = c.sync_id "
           f"LEFT JOIN {SNAPSHOTS} AS s ON s.segment = r.segment AND s.as_of = c.as_of "
           "WHERE c.n = 1 ORDER BY c.sync_id, c.as_of, c.phase")
    if not (_exists(warehouse, SYNC_RUNS) and _exists(warehouse, SNAPSHOTS)):
        sql = (f"SELECT sync_id, destination, as_of, phase, reported_count, NULL AS segment, NULL AS central "
               f"FROM {DESTINATION_COUNTS} ORDER BY sync_id, as_of, phase")
    return _records(warehouse, sql)


def drift_reports(warehouse: Warehouse) -> list[dict[str, Any]]:
    """Every drift finding: expected against reported, with the tolerance (the band a count may stray)."""
    if not _exists(warehouse, DRIFT_REPORTS):
        return []
    return _records(warehouse, "SELECT run_id, checked_at, kind, name, destination, expected, reported, drift, "
                               f"tolerance, status, detail FROM {DRIFT_REPORTS} ORDER BY kind, name, destination, "
                               "checked_at")


def reconcile_runs(warehouse: Warehouse) -> list[dict[str, Any]]:
    """The distributed model's reconcile runs over time: conflicts, planned and applied changes."""
    if not _exists(warehouse, RECONCILE_RUNS):
        return []
    return _records(warehouse, "SELECT run_id, segment, as_of, policy, status, customers, conflicts, "
                               f"planned_changes, applied_changes, rejected FROM {RECONCILE_RUNS} "
                               "ORDER BY segment, as_of")


def arm_series(warehouse: Warehouse) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per split segment and arm, its members at each ``as_of`` (the summaries each evaluation writes)."""
    if not _exists(warehouse, ARM_SIZES):
        return {}
    series: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in _records(warehouse, f"SELECT segment, arm, as_of, members FROM {ARM_SIZES} "
                                   "ORDER BY segment, arm, as_of"):
        series.setdefault(row.pop("segment"), {}).setdefault(row.pop("arm"), []).append(row)
    return series


def priority_removals(warehouse: Warehouse, as_of: dt.datetime) -> list[dict[str, Any]]:
    """What each priority group removed from its segments at ``as_of``: per segment and higher-priority segment,
    the customers the segment admitted whom that one took (the summaries each evaluation writes)."""
    if not _exists(warehouse, PRIORITY_REMOVALS):
        return []
    return _records(warehouse, "SELECT priority_group, segment, taken_by, customers "
                               f"FROM {PRIORITY_REMOVALS} WHERE as_of = %(as_of)s "
                               "ORDER BY priority_group, segment, taken_by", {"as_of": as_of})


def customer_history(warehouse: Warehouse, customer: str) -> dict[str, Any]:
    """One customer's memberships over time, and (once the per-record sync log exists) what syncs sent.

    ``memberships``: per segment, each period the customer was a member, ``since`` the ``as_of`` that added
    them and ``until`` the one that removed them (None: still a member at the segment's latest snapshot).
    Read by key, never by scanning the history: the customer's changes (the adds and removes of each
    ``as_of``, through the copy indexed by customer key each evaluation writes) and their rows of each
    segment's first snapshot (whose members are its first adds; the ``as_of`` prunes the store to one
    snapshot), replayed over the registry's ``as_of`` list of each segment.
    """
    periods: list[dict[str, Any]] = []
    if _exists(warehouse, SNAPSHOTS) and _exists(warehouse, MEMBERSHIPS):
        dates: dict[str, list[Any]] = {}
        for segment, as_of in warehouse.query(f"SELECT segment, as_of FROM {SNAPSHOTS} ORDER BY segment, as_of"):
            dates.setdefault(segment, []).append(as_of)
        firsts = sorted({at[0] for at in dates.values()})
        events: dict[tuple[str, Any], tuple[bool, str | None]] = {}
        if firsts:
            bound = {f"first_{n}": at for n, at in enumerate(firsts)}
            marks = ", ".join(f"%({name})s" for name in bound)
            for segment, arm, as_of in warehouse.query(
                    f"SELECT segment, arm, as_of FROM {MEMBERSHIPS} WHERE customer_key = %(customer)s "
                    f"AND as_of IN ({marks})", {"customer": customer, **bound}):
                if segment in dates and dates[segment][0] == as_of:
                    events[(segment, as_of)] = (True, arm)
        # the copy indexed by key; a warehouse no evaluation of this version has written has only the store's
        changes = CUSTOMER_CHANGES if _exists(warehouse, CUSTOMER_CHANGES) else CHANGES
        if _exists(warehouse, changes):
            for segment, change, arm, as_of in warehouse.query(
                    f"SELECT segment, change, arm, as_of FROM {changes} WHERE customer_key = %(customer)s",
                    {"customer": customer}):
                events[(segment, as_of)] = (change == "added", arm)
        for segment in sorted(dates):
            current: dict[str, Any] | None = None
            for as_of in dates[segment]:
                event = events.get((segment, as_of))
                if event is None:
                    continue
                joined, arm = event
                if joined and current is None:
                    current = {"segment": segment, "arm": arm, "since": plain(as_of), "until": None}
                    periods.append(current)
                elif not joined and current is not None:
                    current["until"] = plain(as_of)
                    current = None
    sent: list[dict[str, Any]] = []
    if _exists(warehouse, SYNC_LOG):
        sent = _records(warehouse, "SELECT sync_id, run_id, action, status, error_code, message, logged_at "
                                   f"FROM {SYNC_LOG} WHERE customer_key = %(customer)s "
                                   f"ORDER BY logged_at DESC LIMIT {ROW_LIMIT}", {"customer": customer})
    return {"memberships": sorted(periods, key=lambda p: (p["since"], p["segment"])), "sync_log": sent}

"""The distributed model on a warehouse: pull every tool's list, compare, resolve, push, log, never loop.

One reconcile run, for every segment with a ``reconcile:`` policy:

1. :meth:`Reconciler.pull` reads each readable system's list (Mailchimp segment or tag members,
   HubSpot list memberships) through the destination clients (the shared HTTP layer: paging, rate
   limits, retries), matches identities to customer keys and stages them in
   ``segprovider_reconcile_pulls`` with the time each system reports for each membership. Systems
   that cannot be read back (Meta) give their reported count (``segprovider_reconcile_counts``).
2. :meth:`Reconciler.plan` compares, per customer, presence in each system with what this project
   last wrote there (the sync engine's state table) and with the last agreed value
   (``segprovider_reconcile_state``), resolves with :mod:`airflow_segprovider.core.distributed.policy`, and
   writes the decisions (conflicts with both sides) and the exact change set the sync engine will
   send (``segprovider_reconcile_plan``). Nothing else changes: a blocked plan leaves no trace but itself.
3. :meth:`Reconciler.check_change_set` stops a run that would change more than
   ``max_change_fraction`` of any list.
4. :meth:`Reconciler.apply` records the pulled lists as the systems' known state and the decisions
   as the agreed values (one transaction), then runs the ordinary :class:`~airflow_segprovider.core.sync.engine.SyncEngine`
   with the decisions as its desired state: safe-delete guards, rejected records and the consent
   re-check all apply. Each acknowledged batch writes its audit rows (run, system, customer key,
   segment, before, after, rule, reason) in the same transaction as its state rows, so the audit
   log holds exactly the changes the destinations accepted.
5. :meth:`Reconciler.drift_report` gives the counts per system after the run.

Nothing here imports Airflow: the operators and the CLI pass in a warehouse and a way to build clients.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from airflow_segprovider.core.evaluate.dialects import quoted_table, render
from airflow_segprovider.core.errors import SegproviderError
from airflow_segprovider.core.state.membership import MEMBERSHIPS, in_list, text_literal, ts_literal
from airflow_segprovider.core.distributed.policy import (
    Agreed,
    Observation,
    ReconcileSettings,
    Written,
    classify,
    plan_changes,
    resolve,
)
from airflow_segprovider.core.project.distributed import MEMBERSHIP_TIMES
from airflow_segprovider.core.sync.engine import REJECTED, STATE, SyncEngine, SyncOptions, _state_rows

if TYPE_CHECKING:
    import concurrent.futures

    from airflow_segprovider.core.project.spec import Destination, Project, ReconcilePolicy, Sync
    from airflow_segprovider.core.warehouses.base import Warehouse
    from airflow_segprovider.core.destination import DestinationClient

log = logging.getLogger(__name__)

PULLS = "segprovider_reconcile_pulls"
COUNTS = "segprovider_reconcile_counts"
DECISIONS = "segprovider_reconcile_decisions"
PLAN = "segprovider_reconcile_plan"
AUDIT = "segprovider_reconcile_audit"
AGREED = "segprovider_reconcile_state"
RUNS = "segprovider_reconcile_runs"
DRIFT = "segprovider_reconcile_drift"

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {PULLS} (
        run_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, system VARCHAR NOT NULL, customer_key VARCHAR NOT NULL,
        identity VARCHAR, destination_id VARCHAR, changed_at TIMESTAMP, pulled_at TIMESTAMP NOT NULL,
        PRIMARY KEY (run_id, segment, system, customer_key))""",
    f"""CREATE TABLE IF NOT EXISTS {COUNTS} (
        run_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, system VARCHAR NOT NULL, kind VARCHAR NOT NULL,
        readable BOOLEAN NOT NULL, reported_count BIGINT, pulled_members BIGINT, matched BIGINT, unmatched BIGINT,
        pulled_at TIMESTAMP NOT NULL, PRIMARY KEY (run_id, segment, system))""",
    f"""CREATE TABLE IF NOT EXISTS {DECISIONS} (
        run_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, customer_key VARCHAR NOT NULL, as_of TIMESTAMP NOT NULL,
        member BOOLEAN NOT NULL, changed_at TIMESTAMP, rule VARCHAR NOT NULL, reason VARCHAR, source VARCHAR,
        conflict BOOLEAN NOT NULL, present_in VARCHAR, absent_from VARCHAR,
        PRIMARY KEY (run_id, segment, customer_key))""",
    f"""CREATE TABLE IF NOT EXISTS {PLAN} (
        run_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, system VARCHAR NOT NULL, customer_key VARCHAR NOT NULL,
        member_before BOOLEAN NOT NULL, member_after BOOLEAN NOT NULL, rule VARCHAR NOT NULL, reason VARCHAR,
        PRIMARY KEY (run_id, segment, system, customer_key))""",
    f"""CREATE TABLE IF NOT EXISTS {AUDIT} (
        run_id VARCHAR NOT NULL, system VARCHAR NOT NULL, customer_key VARCHAR NOT NULL, segment VARCHAR NOT NULL,
        member_before BOOLEAN NOT NULL, member_after BOOLEAN NOT NULL, rule VARCHAR NOT NULL, reason VARCHAR,
        sync_run_id VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL,
        PRIMARY KEY (run_id, system, segment, customer_key))""",
    f"""CREATE TABLE IF NOT EXISTS {AGREED} (
        segment VARCHAR NOT NULL, customer_key VARCHAR NOT NULL, member BOOLEAN NOT NULL, changed_at TIMESTAMP,
        rule VARCHAR NOT NULL, run_id VARCHAR NOT NULL, PRIMARY KEY (segment, customer_key))""",
    f"""CREATE TABLE IF NOT EXISTS {RUNS} (
        run_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, as_of TIMESTAMP NOT NULL, policy VARCHAR NOT NULL,
        status VARCHAR NOT NULL, customers BIGINT, conflicts BIGINT, stale_edits BIGINT, planned_changes BIGINT,
        applied_changes BIGINT, rejected BIGINT, absorbed BOOLEAN NOT NULL, error VARCHAR,
        started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP, PRIMARY KEY (run_id, segment))""",
    f"""CREATE TABLE IF NOT EXISTS {DRIFT} (
        run_id VARCHAR NOT NULL, segment VARCHAR NOT NULL, system VARCHAR NOT NULL, readable BOOLEAN NOT NULL,
        reported_before BIGINT, planned_add BIGINT, planned_remove BIGINT, applied_add BIGINT, applied_remove BIGINT,
        resolved_members BIGINT, reported_after BIGINT, drift BIGINT, measured_at TIMESTAMP NOT NULL,
        PRIMARY KEY (run_id, segment, system))""",
)

ClientFactory = Callable[["Sync"], "DestinationClient"]


class ReconcileError(SegproviderError):
    """A reconcile cannot go on; retrying does not help (a step out of order, a missing pull)."""


class ChangeSetTooLargeError(ReconcileError):
    """The change-set gate: the reconcile would change more than ``max_change_fraction`` of a list."""

    def __init__(self, message: str, offenders: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.offenders = offenders

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.offenders))


@dataclass
class SystemChangeSet:
    """What one reconcile plans for one system of one segment."""

    segment: str
    system: str
    readable: bool
    size_before: int
    add: int = 0
    remove: int = 0

    @property
    def changes(self) -> int:
        return self.add + self.remove

    @property
    def fraction(self) -> float:
        size_after = self.size_before + self.add - self.remove
        return self.changes / max(self.size_before, size_after, 1)


@dataclass
class ReconcilePlan:
    """The plan of one run: per segment, the decisions' counts and the change set per system."""

    run_id: str
    as_of: str
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    change_sets: list[SystemChangeSet] = field(default_factory=list)

    @property
    def total_changes(self) -> int:
        return sum(c.changes for c in self.change_sets)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "as_of": self.as_of, "segments": self.segments,
                "change_sets": [{**asdict(c), "changes": c.changes, "fraction": round(c.fraction, 4)}
                                for c in self.change_sets],
                "total_changes": self.total_changes}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """Vendor timestamps (with offsets) as naive UTC, the warehouse's convention."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


def new_run_id() -> str:
    return f"reconcile__{uuid.uuid4().hex[:12]}"


class Reconciler:
    """Runs the distributed model's steps for a project's reconciled segments on one warehouse.

    :param project: the validated project (its ``reconcile`` policies).
    :param warehouse: where staging, decisions, the audit log and the sync state live.
    :param clients: builds the destination client of one sync (the caller owns connections).
    """

    def __init__(self, project: Project, warehouse: Warehouse, clients: ClientFactory) -> None:
        self.project = project
        self.warehouse = warehouse
        self.clients = clients

    # --- helpers ------------------------------------------------------------------------------
    def _sql(self, duckdb_sql: str) -> str:
        return render(duckdb_sql, self.warehouse.dialect)

    def ensure_tables(self) -> None:
        SyncEngine(self.project, self.warehouse).ensure_tables()
        for statement in _DDL:
            self.warehouse.execute(self._sql(statement))

    def policies(self, segments: Sequence[str] | None = None) -> list[ReconcilePolicy]:
        """The reconciled segments, all or those named."""
        if not self.project.reconcile:
            raise ReconcileError("the project declares no reconcile policies; add a 'reconcile:' section "
                                 "(see docs/segments-language.md, 'Reconcile')")
        unknown = [s for s in segments or () if s not in self.project.reconcile]
        if unknown:
            raise ReconcileError(f"no reconcile policy for {', '.join(map(repr, unknown))}; reconciled segments: "
                                 f"{', '.join(self.project.reconcile)}")
        return [p for name, p in self.project.reconcile.items() if not segments or name in segments]

    def syncs_of(self, policy: ReconcilePolicy) -> list[Sync]:
        return [s for s in self.project.syncs if s.segment == policy.segment]

    def _run_segments(self, run_id: str) -> dict[str, tuple[str, dt.datetime]]:
        return {segment: (status, as_of) for segment, status, as_of in self.warehouse.query(self._sql(
            f"SELECT segment, status, as_of FROM {RUNS} WHERE run_id = {text_literal(run_id)}"))}

    def _known_run(self, run_id: str) -> dict[str, tuple[str, dt.datetime]]:
        """The run's segments; an unknown run (a wrong or unrendered id) is an error, never an empty success."""
        runs = self._run_segments(run_id)
        if not runs:
            raise ReconcileError(f"reconcile run {run_id!r} has pulled nothing; pull and plan it first")
        return runs

    # --- 1. pull ------------------------------------------------------------------------------
    def pull(self, run_id: str, as_of: dt.datetime, segments: Sequence[str] | None = None) -> dict[str, Any]:
        """Stage every system's list of each reconciled segment; returns counts per segment and system."""
        self.ensure_tables()
        summary: dict[str, Any] = {}
        for policy in self.policies(segments):
            summary[policy.segment] = {}
            self._start_run(run_id, policy, as_of)
            for sync in self.syncs_of(policy):
                destination = self.project.destinations[sync.destination]
                readable = sync.destination in policy.systems
                client = self.clients(sync)
                try:
                    pulled_at = _now()
                    members = list(client.iter_members()) if readable else []
                    reported = client.member_count()
                finally:
                    client.close()
                keyed = self._match(destination, [(m.identity, m.destination_id, _utc(m.last_changed))
                                                  for m in members]) if readable else []
                matched_identities = {identity.strip().lower() for _, identity, _, _ in keyed}
                unmatched = len({m.identity.strip().lower() for m in members} - matched_identities)
                with self.warehouse.transaction():
                    self.warehouse.execute(self._sql(
                        f"DELETE FROM {PULLS} WHERE run_id = {text_literal(run_id)} AND segment = "
                        f"{text_literal(policy.segment)} AND system = {text_literal(sync.destination)}"))
                    if keyed:
                        self.warehouse.upsert(PULLS, ["run_id", "segment", "system", "customer_key"], pa.table({
                            "run_id": [run_id] * len(keyed), "segment": [policy.segment] * len(keyed),
                            "system": [sync.destination] * len(keyed),
                            "customer_key": [k for k, _, _, _ in keyed],
                            "identity": [i for _, i, _, _ in keyed],
                            "destination_id": pa.array([d for _, _, d, _ in keyed], pa.string()),
                            "changed_at": pa.array([c for _, _, _, c in keyed], pa.timestamp("us")),
                            "pulled_at": pa.array([pulled_at] * len(keyed), pa.timestamp("us")),
                        }))
                    self.warehouse.upsert(COUNTS, ["run_id", "segment", "system"], pa.table({
                        "run_id": [run_id], "segment": [policy.segment], "system": [sync.destination],
                        "kind": [destination.kind], "readable": [readable],
                        "reported_count": pa.array([reported], pa.int64()),
                        "pulled_members": pa.array([len(members) if readable else None], pa.int64()),
                        "matched": pa.array([len({k for k, _, _, _ in keyed}) if readable else None], pa.int64()),
                        "unmatched": pa.array([unmatched if readable else None], pa.int64()),
                        "pulled_at": pa.array([pulled_at], pa.timestamp("us")),
                    }))
                summary[policy.segment][sync.destination] = {
                    "readable": readable, "reported_count": reported,
                    "pulled": len(members) if readable else None,
                    "matched": len({k for k, _, _, _ in keyed}) if readable else None,
                    "unmatched": unmatched if readable else None}
                log.info("reconcile %s: pulled %s of %s: %s", run_id, sync.destination, policy.segment,
                         summary[policy.segment][sync.destination])
        return summary

    def _start_run(self, run_id: str, policy: ReconcilePolicy, as_of: dt.datetime) -> None:
        status = self._run_segments(run_id).get(policy.segment)
        if status is not None and status[0] in ("applying", "applied", "partial"):
            raise ReconcileError(f"reconcile run {run_id} of {policy.segment!r} was already applied ({status[0]}); "
                                 "start a new run to pull again")
        with self.warehouse.transaction():
            self.warehouse.upsert(RUNS, ["run_id", "segment"], pa.table({
                "run_id": [run_id], "segment": [policy.segment],
                "as_of": pa.array([as_of], pa.timestamp("us")), "policy": [policy.policy], "status": ["pulled"],
                "customers": pa.array([None], pa.int64()), "conflicts": pa.array([None], pa.int64()),
                "stale_edits": pa.array([None], pa.int64()), "planned_changes": pa.array([None], pa.int64()),
                "applied_changes": pa.array([None], pa.int64()), "rejected": pa.array([None], pa.int64()),
                "absorbed": [False], "error": pa.array([None], pa.string()),
                "started_at": pa.array([_now()], pa.timestamp("us")),
                "finished_at": pa.array([None], pa.timestamp("us"))}))

    def _match(self, destination: Destination, members: list[tuple[str, str | None, dt.datetime | None]]
               ) -> list[tuple[str, str, str | None, dt.datetime | None]]:
        """``(customer key, identity, destination id, changed at)`` of the members the customer table knows."""
        customer = self.project.model.customer
        identity_col = customer.attributes[destination.identity].column
        by_identity = {identity.strip().lower(): (identity, vendor_id, changed)
                       for identity, vendor_id, changed in members if identity and identity.strip()}
        names = list(by_identity)
        out: list[tuple[str, str, str | None, dt.datetime | None]] = []
        # in chunks: the list has the destination's size, not the customer table's
        for start in range(0, len(names), 5000):
            values = ", ".join(text_literal(i) for i in names[start:start + 5000])
            for key, identity in self.warehouse.query(self._sql(
                    f"SELECT CAST(\"{customer.key}\" AS VARCHAR), LOWER(TRIM(CAST(\"{identity_col}\" AS VARCHAR))) "
                    f"FROM {quoted_table(customer.table, self.warehouse.schema)} "
                    f"WHERE LOWER(TRIM(CAST(\"{identity_col}\" AS VARCHAR))) IN ({values})")):
                original, vendor_id, changed = by_identity[identity]
                out.append((key, original, vendor_id, changed))
        return out

    # --- 2. compare and resolve -----------------------------------------------------------------
    def plan(self, run_id: str, segments: Sequence[str] | None = None) -> ReconcilePlan:
        """Resolve every customer of each pulled segment and write the decisions and the change set."""
        self.ensure_tables()
        runs = self._run_segments(run_id)
        policies = [p for p in self.policies(segments) if p.segment in runs]
        if not policies:
            raise ReconcileError(f"reconcile run {run_id} has pulled nothing; pull first")
        as_of = min(as_of for _, as_of in runs.values())
        result = ReconcilePlan(run_id, as_of.isoformat())
        for policy in policies:
            status, seg_as_of = runs[policy.segment]
            if status not in ("pulled", "planned", "blocked"):
                raise ReconcileError(f"reconcile run {run_id} of {policy.segment!r} is {status}; plan a new run")
            self._plan_segment(run_id, policy, seg_as_of, result)
        return result

    def _plan_segment(self, run_id: str, policy: ReconcilePolicy, as_of: dt.datetime, result: ReconcilePlan) -> None:
        rid, seg = text_literal(run_id), text_literal(policy.segment)
        syncs = {s.destination: s for s in self.syncs_of(policy)}
        pulled_at: dict[str, dt.datetime] = {system: at for system, at in self.warehouse.query(self._sql(
            f"SELECT system, pulled_at FROM {COUNTS} WHERE run_id = {rid} AND segment = {seg}"))}
        missing = [s for s in syncs if s not in pulled_at]
        if missing:
            raise ReconcileError(f"reconcile run {run_id} of {policy.segment!r} has no pull of {', '.join(missing)}; "
                                 "pull again")
        observed: dict[str, dict[str, dt.datetime | None]] = {s: {} for s in policy.systems}
        for system, key, changed_at in self.warehouse.query(self._sql(
                f"SELECT system, customer_key, changed_at FROM {PULLS} WHERE run_id = {rid} AND segment = {seg}")):
            observed[system][key] = changed_at
        written: dict[str, dict[str, Written]] = {s: {} for s in syncs}
        for system, sync in syncs.items():
            for key, present, at, origin in self.warehouse.query(self._sql(
                    f"SELECT customer_key, in_destination, synced_at, origin FROM {STATE} "
                    f"WHERE sync_id = {text_literal(sync.id)}")):
                written[system][key] = Written(bool(present), at, origin)
        agreed = {key: Agreed(bool(member), changed_at) for key, member, changed_at in self.warehouse.query(self._sql(
            f"SELECT customer_key, member, changed_at FROM {AGREED} WHERE segment = {seg}"))}
        keys: set[str] = set(agreed)
        for system in policy.systems:
            keys.update(observed[system])
            keys.update(k for k, w in written[system].items() if w.present)
        for system in syncs:
            keys.update(k for k, w in written[system].items() if w.present)

        settings = ReconcileSettings(policy.policy, policy.authority, policy.tie_break)
        now = _now()
        decisions: dict[str, Any] = {}
        stale = conflicts = 0
        for key in sorted(keys):
            claims = {}
            for system in policy.systems:
                exact = MEMBERSHIP_TIMES[self.project.destinations[system].kind] == "exact"
                seen = observed[system]
                obs = Observation(key in seen, seen.get(key), exact)
                claims[system] = classify(system, obs, written[system].get(key), pulled_at[system])
            previous = agreed.get(key)
            if previous is None and not any(c.present for c in claims.values()):
                # known only as a past member of a receiving system: the agreed value is "not a member"
                previous = Agreed(False, None)
            decision = resolve(settings, claims, previous, now)
            stale += sum(1 for c in claims.values() if c.kind == "stale")
            conflicts += decision.conflict
            decisions[key] = (decision, sorted(s for s, c in claims.items() if c.present),
                              sorted(s for s, c in claims.items() if not c.present))

        rows = list(decisions.items())
        with self.warehouse.transaction():
            for table in (DECISIONS, PLAN):
                self.warehouse.execute(self._sql(f"DELETE FROM {table} WHERE run_id = {rid} AND segment = {seg}"))
            self.warehouse.upsert(DECISIONS, ["run_id", "segment", "customer_key"], pa.table({
                "run_id": [run_id] * len(rows), "segment": [policy.segment] * len(rows),
                "customer_key": pa.array([k for k, _ in rows], pa.string()),
                "as_of": pa.array([as_of] * len(rows), pa.timestamp("us")),
                "member": pa.array([d.member for _, (d, _, _) in rows], pa.bool_()),
                "changed_at": pa.array([d.changed_at for _, (d, _, _) in rows], pa.timestamp("us")),
                "rule": pa.array([d.rule for _, (d, _, _) in rows], pa.string()),
                "reason": pa.array([d.reason for _, (d, _, _) in rows], pa.string()),
                "source": pa.array([d.source for _, (d, _, _) in rows], pa.string()),
                "conflict": pa.array([d.conflict for _, (d, _, _) in rows], pa.bool_()),
                "present_in": pa.array([",".join(p) for _, (_, p, _) in rows], pa.string()),
                "absent_from": pa.array([",".join(a) for _, (_, _, a) in rows], pa.string()),
            }))

        # what the sync engine will do: consent and sendability per system, from its own desired query
        engine = ReconcileSyncEngine(self.project, self.warehouse, run_id)
        change_rows: list[tuple[str, str, bool, bool, str, str]] = []
        sets: dict[str, SystemChangeSet] = {}
        consent_ok: dict[str, dict[str, bool]] = {}
        addable: dict[str, dict[str, bool]] = {}
        holdings: dict[str, set[str]] = {}
        for system, sync in syncs.items():
            consent_ok[system], addable[system] = engine.sendability(sync, as_of)
            holdings[system] = (set(observed[system]) if system in policy.systems
                                else {k for k, w in written[system].items() if w.present})
            sets[system] = SystemChangeSet(policy.segment, system, system in policy.systems, len(holdings[system]))
        for key, (decision, _, _) in rows:
            for change in plan_changes(decision, key, {s: key in holdings[s] for s in syncs},
                                       {s: consent_ok[s].get(key, False) for s in syncs},
                                       {s: addable[s].get(key, False) for s in syncs}):
                change_rows.append((change.system, key, change.before, change.after, change.rule, change.reason))
                if change.after:
                    sets[change.system].add += 1
                else:
                    sets[change.system].remove += 1
        with self.warehouse.transaction():
            self.warehouse.upsert(PLAN, ["run_id", "segment", "system", "customer_key"], pa.table({
                "run_id": [run_id] * len(change_rows), "segment": [policy.segment] * len(change_rows),
                "system": pa.array([r[0] for r in change_rows], pa.string()),
                "customer_key": pa.array([r[1] for r in change_rows], pa.string()),
                "member_before": pa.array([r[2] for r in change_rows], pa.bool_()),
                "member_after": pa.array([r[3] for r in change_rows], pa.bool_()),
                "rule": pa.array([r[4] for r in change_rows], pa.string()),
                "reason": pa.array([r[5] for r in change_rows], pa.string()),
            }))
            self.warehouse.execute(self._sql(
                f"UPDATE {RUNS} SET status = 'planned', customers = {len(rows)}, conflicts = {conflicts}, "
                f"stale_edits = {stale}, planned_changes = {len(change_rows)} WHERE run_id = {rid} AND segment = {seg}"))
        result.segments[policy.segment] = {
            "policy": policy.policy, "customers": len(rows), "members": sum(1 for _, (d, _, _) in rows if d.member),
            "conflicts": conflicts, "stale_edits": stale, "planned_changes": len(change_rows),
            "max_change_fraction": policy.max_change_fraction}
        result.change_sets.extend(sets.values())
        log.info("reconcile %s plan of %s: %s", run_id, policy.segment, result.segments[policy.segment])

    def load_plan(self, run_id: str) -> ReconcilePlan:
        """The plan of a run, as :meth:`plan` returned it (for the gate and the operators)."""
        runs = self._run_segments(run_id)
        if not runs:
            raise ReconcileError(f"no reconcile run {run_id}")
        result = ReconcilePlan(run_id, min(a for _, a in runs.values()).isoformat())
        rid = text_literal(run_id)
        counts = {(seg, system): (readable, reported) for seg, system, readable, reported in self.warehouse.query(
            self._sql(f"SELECT segment, system, readable, reported_count FROM {COUNTS} WHERE run_id = {rid}"))}
        pulled = {(seg, system): n for seg, system, n in self.warehouse.query(self._sql(
            f"SELECT segment, system, COUNT(*) FROM {PULLS} WHERE run_id = {rid} GROUP BY segment, system"))}
        changes = {(seg, system, after): n for seg, system, after, n in self.warehouse.query(self._sql(
            f"SELECT segment, system, member_after, COUNT(*) FROM {PLAN} WHERE run_id = {rid} "
            "GROUP BY segment, system, member_after"))}
        for segment, policy_name, customers, conflicts, stale, planned in self.warehouse.query(self._sql(
                f"SELECT segment, policy, customers, conflicts, stale_edits, planned_changes FROM {RUNS} "
                f"WHERE run_id = {rid} ORDER BY segment")):
            policy = self.project.reconcile[segment]
            result.segments[segment] = {"policy": policy_name, "customers": customers, "conflicts": conflicts,
                                        "stale_edits": stale, "planned_changes": planned,
                                        "max_change_fraction": policy.max_change_fraction}
            for sync in self.syncs_of(policy):
                readable, reported = counts.get((segment, sync.destination), (False, None))
                size = pulled.get((segment, sync.destination), 0) if readable else \
                    SyncEngine(self.project, self.warehouse).destination_count(sync)
                result.change_sets.append(SystemChangeSet(
                    segment, sync.destination, bool(readable), size,
                    changes.get((segment, sync.destination, True), 0),
                    changes.get((segment, sync.destination, False), 0)))
        return result

    # --- 3. the change-set gate -----------------------------------------------------------------
    def check_change_set(self, run_id: str, *, allow_large_change: bool = False) -> ReconcilePlan:
        """Stop a run that would change more than ``max_change_fraction`` of any list.

        :raises ChangeSetTooLargeError: naming each list, its size, the changes and the limit; the
            run is marked ``blocked`` and :meth:`apply` refuses it.
        """
        plan = self.load_plan(run_id)
        offenders = []
        syncs = {(s.segment, s.destination): s for s in self.project.syncs}
        for change_set in plan.change_sets:
            limit = self.project.reconcile[change_set.segment].max_change_fraction
            # the sync engine's own guard would stop the removals halfway through the apply: stop here instead
            remove_limit = syncs[(change_set.segment, change_set.system)].max_remove_fraction
            too_many = change_set.changes and change_set.fraction > limit
            too_many_removals = (change_set.size_before and
                                 change_set.remove > remove_limit * change_set.size_before)
            if too_many or too_many_removals:
                offenders.append({**asdict(change_set), "changes": change_set.changes,
                                  "fraction": round(change_set.fraction, 4), "max_change_fraction": limit,
                                  "max_remove_fraction": remove_limit,
                                  "limit": "max_change_fraction" if too_many else "max_remove_fraction"})
        if offenders and not allow_large_change:
            with self.warehouse.transaction():
                for segment in sorted({o["segment"] for o in offenders}):
                    self.warehouse.execute(self._sql(
                        f"UPDATE {RUNS} SET status = 'blocked', finished_at = {ts_literal(_now())} "
                        f"WHERE run_id = {text_literal(run_id)} AND segment = {text_literal(segment)}"))
            lines = [f"{o['segment']} in {o['system']}: {o['changes']} changes (+{o['add']} -{o['remove']}) to a "
                     f"list of {o['size_before']} = {o['fraction']:.0%} > max_change_fraction "
                     f"{o['max_change_fraction']:.0%}" if o["limit"] == "max_change_fraction" else
                     f"{o['segment']} in {o['system']}: {o['remove']} removals from a list of {o['size_before']} "
                     f"> the sync's max_remove_fraction {o['max_remove_fraction']:.0%}" for o in offenders]
            raise ChangeSetTooLargeError(
                f"reconcile {run_id} stopped before changing anything: " + "; ".join(lines)
                + ". Check the lists (a bulk edit, an import, a wrong policy?), then rerun with "
                "allow_large_change if it is intended", offenders)
        return plan

    # --- 4. apply -------------------------------------------------------------------------------
    def apply(self, run_id: str, *, options: SyncOptions | None = None,
              segments: Sequence[str] | None = None, allow_large_change: bool = False) -> dict[str, Any]:
        """Push the decisions to every system through the sync engine and log each accepted change.

        Safe to rerun after a failure: what was acknowledged is in the state table and the audit
        log, and the rerun sends only the rest.

        :param allow_large_change: the change-set gate's override; it also lifts the sync engine's own
            remove-fraction guard (``allow_mass_removal``), which would otherwise stop the same change.
        """
        self.ensure_tables()
        options = options or SyncOptions()
        if allow_large_change:
            options = replace(options, allow_mass_removal=True)
        runs = self._known_run(run_id)
        summary: dict[str, Any] = {}
        for policy in self.policies(segments):
            if policy.segment not in runs:
                continue
            status, as_of = runs[policy.segment]
            if status == "blocked":
                raise ReconcileError(f"reconcile run {run_id} of {policy.segment!r} was blocked by the change-set "
                                     "gate; nothing is applied")
            if status not in ("planned", "applying", "partial", "failed"):
                raise ReconcileError(f"reconcile run {run_id} of {policy.segment!r} is {status}; plan it first")
            self._absorb(run_id, policy)
            engine = ReconcileSyncEngine(self.project, self.warehouse, run_id)
            applied: dict[str, Any] = {}
            error: str | None = None
            pending = {system for (system,) in self.warehouse.query(self._sql(
                f"SELECT DISTINCT system FROM {PLAN} WHERE run_id = {text_literal(run_id)} "
                f"AND segment = {text_literal(policy.segment)}"))}
            try:
                for sync in self.syncs_of(policy):
                    if sync.destination not in pending:  # nothing planned for this list: nothing to send
                        applied[sync.destination] = {"added": 0, "removed": 0, "rejected": 0, "status": "unchanged"}
                        continue
                    client = self.clients(sync)
                    try:
                        record = engine.run(sync, client, as_of, options=options,
                                            run_id=f"{run_id}__{sync.destination}")
                    finally:
                        client.close()
                    applied[sync.destination] = {"added": record.succeeded["add"],
                                                 "removed": record.succeeded["remove"],
                                                 "rejected": sum(record.failed.values()), "status": record.status}
            except BaseException as exc:
                error = f"{type(exc).__name__}: {exc}"
                raise
            finally:
                self._finish(run_id, policy.segment, applied, error)
            summary[policy.segment] = applied
        return summary

    def _absorb(self, run_id: str, policy: ReconcilePolicy) -> None:
        """Record the pulled lists as what each system holds, and the decisions as agreed: once per run.

        From here on a system's list differing from its state row is a new edit, and our own writes
        (committed by the engine as they are acknowledged) match their state rows.
        """
        rid, seg = text_literal(run_id), text_literal(policy.segment)
        done = self.warehouse.query(self._sql(
            f"SELECT absorbed FROM {RUNS} WHERE run_id = {rid} AND segment = {seg}"))
        if done and done[0][0]:
            return
        with self.warehouse.transaction():
            for sync in self.syncs_of(policy):
                if sync.destination not in policy.systems:
                    continue
                sid, system = text_literal(sync.id), text_literal(sync.destination)
                pulled = (f"SELECT customer_key, identity, destination_id, pulled_at FROM {PULLS} "
                          f"WHERE run_id = {rid} AND segment = {seg} AND system = {system}")
                appeared = self.warehouse.query(self._sql(
                    f"SELECT p.customer_key, p.identity, p.destination_id, p.pulled_at, s.row_hash FROM ({pulled}) AS p "
                    f"LEFT JOIN {STATE} AS s ON s.sync_id = {sid} AND s.customer_key = p.customer_key "
                    "WHERE s.customer_key IS NULL OR NOT s.in_destination"))
                if appeared:
                    rows = _state_rows(sync.id, [r[0] for r in appeared], [r[1] for r in appeared],
                                       [r[4] for r in appeared], [r[2] for r in appeared], True, "observed", run_id)
                    self.warehouse.upsert(STATE, ["sync_id", "customer_key"], rows.set_column(
                        rows.schema.get_field_index("synced_at"), "synced_at",
                        pa.array([r[3] for r in appeared], pa.timestamp("us"))))
                pulled_at = self.warehouse.query(self._sql(
                    f"SELECT pulled_at FROM {COUNTS} WHERE run_id = {rid} AND segment = {seg} AND system = {system}"))
                self.warehouse.execute(self._sql(
                    f"UPDATE {STATE} SET in_destination = FALSE, origin = 'observed', "
                    f"synced_at = {ts_literal(pulled_at[0][0])}, run_id = {rid} "
                    f"WHERE sync_id = {sid} AND in_destination AND customer_key NOT IN "
                    f"(SELECT customer_key FROM ({pulled}) AS p)"))
            self.warehouse.execute(self._sql(
                f"DELETE FROM {AGREED} WHERE segment = {seg} AND customer_key IN "
                f"(SELECT customer_key FROM {DECISIONS} WHERE run_id = {rid} AND segment = {seg})"))
            self.warehouse.execute(self._sql(
                f"INSERT INTO {AGREED} (segment, customer_key, member, changed_at, rule, run_id) "
                f"SELECT segment, customer_key, member, changed_at, rule, run_id FROM {DECISIONS} "
                f"WHERE run_id = {rid} AND segment = {seg}"))
            self.warehouse.execute(self._sql(
                f"UPDATE {RUNS} SET absorbed = TRUE, status = 'applying' WHERE run_id = {rid} AND segment = {seg}"))

    def _finish(self, run_id: str, segment: str, applied: dict[str, Any], error: str | None) -> None:
        rid, seg = text_literal(run_id), text_literal(segment)
        count = self.warehouse.query(self._sql(
            f"SELECT COUNT(*) FROM {AUDIT} WHERE run_id = {rid} AND segment = {seg}"))[0][0]
        rejected = sum(a["rejected"] for a in applied.values())
        status = "failed" if error else ("partial" if rejected else "applied")
        with self.warehouse.transaction():
            self.warehouse.execute(self._sql(
                f"UPDATE {RUNS} SET status = {text_literal(status)}, applied_changes = {int(count)}, "
                f"rejected = {int(rejected)}, error = {text_literal(error[:1000]) if error else 'NULL'}, "
                f"finished_at = {ts_literal(_now())} WHERE run_id = {rid} AND segment = {seg}"))

    # --- 5. drift report ------------------------------------------------------------------------
    def drift_report(self, run_id: str, *, measure: bool = True) -> list[dict[str, Any]]:
        """Counts per system of each reconciled segment of the run: before, planned, applied, after.

        :param measure: ask each system for its size now (``reported_after``); ``drift`` is that
            size minus the number of resolved members the system may hold (consent, identity).
        """
        self.ensure_tables()
        rid = text_literal(run_id)
        runs = self._known_run(run_id)
        engine = ReconcileSyncEngine(self.project, self.warehouse, run_id)
        report: list[dict[str, Any]] = []
        for policy in self.policies([s for s in runs if s in self.project.reconcile] or None):
            if policy.segment not in runs:
                continue
            seg = text_literal(policy.segment)
            before = {system: n for system, n in self.warehouse.query(self._sql(
                f"SELECT system, reported_count FROM {COUNTS} WHERE run_id = {rid} AND segment = {seg}"))}
            planned = {(s, a): n for s, a, n in self.warehouse.query(self._sql(
                f"SELECT system, member_after, COUNT(*) FROM {PLAN} WHERE run_id = {rid} AND segment = {seg} "
                "GROUP BY system, member_after"))}
            applied = {(s, a): n for s, a, n in self.warehouse.query(self._sql(
                f"SELECT system, member_after, COUNT(*) FROM {AUDIT} WHERE run_id = {rid} AND segment = {seg} "
                "GROUP BY system, member_after"))}
            for sync in self.syncs_of(policy):
                system = sync.destination
                consent_ok, _ = engine.sendability(sync, runs[policy.segment][1])
                resolved = sum(1 for ok in consent_ok.values() if ok)
                after = None
                if measure:
                    client = self.clients(sync)
                    try:
                        after = client.member_count()
                    finally:
                        client.close()
                report.append({
                    "segment": policy.segment, "system": system, "readable": system in policy.systems,
                    "reported_before": before.get(system), "planned_add": planned.get((system, True), 0),
                    "planned_remove": planned.get((system, False), 0), "applied_add": applied.get((system, True), 0),
                    "applied_remove": applied.get((system, False), 0), "resolved_members": resolved,
                    "reported_after": after, "drift": None if after is None else after - resolved})
        if report:
            now = _now()
            with self.warehouse.transaction():
                self.warehouse.upsert(DRIFT, ["run_id", "segment", "system"], pa.table({
                    "run_id": [run_id] * len(report),
                    **{name: pa.array([r[name] for r in report], pa.int64() if name not in ("segment", "system",
                                      "readable") else (pa.bool_() if name == "readable" else pa.string()))
                       for name in ("segment", "system", "readable", "reported_before", "planned_add",
                                    "planned_remove", "applied_add", "applied_remove", "resolved_members",
                                    "reported_after", "drift")},
                    "measured_at": pa.array([now] * len(report), pa.timestamp("us"))}))
        return report

    # --- everything -----------------------------------------------------------------------------
    def reconcile(self, *, as_of: dt.datetime | None = None, run_id: str | None = None,
                  segments: Sequence[str] | None = None, options: SyncOptions | None = None,
                  allow_large_change: bool = False, dry_run: bool = False) -> dict[str, Any]:
        """Pull, plan, gate and (unless ``dry_run``) apply; returns the plan and what was applied."""
        run_id = run_id or new_run_id()
        as_of = as_of or _now()
        self.pull(run_id, as_of, segments)
        self.plan(run_id, segments)
        plan = self.check_change_set(run_id, allow_large_change=allow_large_change)
        applied = {} if dry_run else self.apply(run_id, options=options, segments=segments,
                                                allow_large_change=allow_large_change)
        return {"run_id": run_id, "plan": plan.to_dict(), "applied": applied}

    # --- reading ------------------------------------------------------------------------------
    def audit(self, run_id: str | None = None) -> list[dict[str, Any]]:
        where = f"WHERE run_id = {text_literal(run_id)} " if run_id else ""
        return self.warehouse.query_records(self._sql(
            f"SELECT run_id, system, customer_key, segment, member_before, member_after, rule, reason, sync_run_id, "
            f"applied_at FROM {AUDIT} {where}ORDER BY applied_at, system, customer_key"))

    def conflicts(self, run_id: str) -> list[dict[str, Any]]:
        return self.warehouse.query_records(self._sql(
            f"SELECT segment, customer_key, present_in, absent_from, member, rule, reason FROM {DECISIONS} "
            f"WHERE run_id = {text_literal(run_id)} AND conflict ORDER BY segment, customer_key"))

    def latest_as_of(self, segments: Iterable[str]) -> dt.datetime | None:
        """The newest ``as_of`` any reconcile of ``segments`` ran at (for the backfill rule)."""
        self.ensure_tables()
        names = list(segments)
        if not names:
            return None
        return self.warehouse.query(self._sql(
            f"SELECT MAX(as_of) FROM {RUNS} WHERE segment IN {in_list(names)} AND status <> 'pulled'"))[0][0]


class ReconcileSyncEngine(SyncEngine):
    """The sync engine with one run's decisions as its desired state, writing the audit log as it goes.

    Everything else is the engine's own: batching, per-batch state commits, rejected records, the
    consent re-check, the empty-list and remove-fraction guards. Two differences: membership only
    (attributes are the centralized model's job, so no attribute-change pass), and removals are
    not limited to members this project added, because the reconcile policy decided them.
    """

    def __init__(self, project: Project, warehouse: Warehouse, reconcile_run_id: str) -> None:
        super().__init__(project, warehouse)
        self.reconcile_run_id = reconcile_run_id
        self._planned: dict[tuple[str, str], tuple[bool, str, str]] = {}

    def _decisions(self, sync: Sync, as_of: dt.datetime) -> str:
        return (f"(SELECT segment, customer_key, as_of, CAST(NULL AS VARCHAR) AS arm FROM {DECISIONS} "
                f"WHERE run_id = {text_literal(self.reconcile_run_id)} AND segment = {text_literal(sync.segment)} "
                "AND member)")

    def _desired_sql(self, sync: Sync, destination: Destination, as_of: dt.datetime) -> str:
        sql = super()._desired_sql(sync, destination, as_of)
        token = f"FROM {MEMBERSHIPS} AS m"
        if sql.count(token) != 1:  # the engine's query changed shape: fail loudly, never sync the wrong set
            raise ReconcileError("the sync engine's desired-state query no longer reads the membership table "
                                 "the reconcile replaces; update ReconcileSyncEngine")
        return sql.replace(token, f"FROM {self._decisions(sync, as_of)} AS m")

    def _plan_sql(self, sync: Sync, destination: Destination, as_of: dt.datetime, max_attempts: int
                  ) -> dict[str, str]:
        queries = super()._plan_sql(sync, destination, as_of, max_attempts)
        desired = self._desired_sql(sync, destination, as_of)
        queries["change"] = queries["add"] + " AND FALSE"
        queries["remove"] = self._sql(
            f"SELECT s.customer_key, s.identity, s.row_hash, s.destination_id FROM {STATE} AS s "
            f"WHERE s.sync_id = {text_literal(sync.id)} AND s.in_destination AND s.customer_key NOT IN "
            f"(SELECT customer_key FROM ({desired}) AS d WHERE d.consent_ok)")
        return queries

    def _require_snapshot(self, sync: Sync, at: dt.datetime) -> None:
        # the decisions are the snapshot; an empty one is legitimate and left to the safety guards
        pass

    def sendability(self, sync: Sync, as_of: dt.datetime) -> tuple[dict[str, bool], dict[str, bool]]:
        """Per resolved member: consent allows the system's channel; and it can be added (identity, not exhausted)."""
        self.ensure_tables()
        destination = self.project.destinations[sync.destination]
        desired = self._desired_sql(sync, destination, as_of)
        exhausted = (f"SELECT customer_key FROM {REJECTED} WHERE sync_id = {text_literal(sync.id)} "
                     f"AND attempts >= {SyncOptions().max_attempts}")
        consent: dict[str, bool] = {}
        addable: dict[str, bool] = {}
        for key, ok, can_add in self.warehouse.query(self._sql(
                f"SELECT d.customer_key, d.consent_ok, d.consent_ok AND d.identity IS NOT NULL AND d.identity <> '' "
                f"AND d.customer_key NOT IN ({exhausted}) FROM ({desired}) AS d")):
            consent[key] = bool(ok)
            addable[key] = bool(can_add)
        return consent, addable

    def run(self, sync: Sync, client: DestinationClient, as_of: str | dt.datetime, **kwargs: Any) -> Any:
        rid = text_literal(self.reconcile_run_id)
        self._planned = {(system, key): (after, rule, reason) for system, key, after, rule, reason in
                         self.warehouse.query(self._sql(
                             f"SELECT system, customer_key, member_after, rule, reason FROM {PLAN} WHERE run_id = {rid} "
                             f"AND segment = {text_literal(sync.segment)} AND system = {text_literal(sync.destination)}"))}
        return super().run(sync, client, as_of, **kwargs)

    def _commit(self, sync: Sync, operation: str, future: concurrent.futures.Future, record: Any,
                progress: Any) -> None:
        """The engine's batch commit and the batch's audit rows, in one transaction."""
        with self.warehouse.transaction():
            super()._commit(sync, operation, future, record, progress)
            result = future.result()
            records = future.meta[0]  # type: ignore[attr-defined]
            sent = {r.key for r in records}
            keys = [k for k in result.acknowledged if k in sent]
            if not keys:
                return
            after = operation != "remove"
            rules = [self._planned.get((sync.destination, k), (after, "unplanned", "not in the reconcile plan"))
                     for k in keys]
            now = _now()
            self.warehouse.upsert(AUDIT, ["run_id", "system", "segment", "customer_key"], pa.table({
                "run_id": [self.reconcile_run_id] * len(keys), "system": [sync.destination] * len(keys),
                "customer_key": pa.array(keys, pa.string()), "segment": [sync.segment] * len(keys),
                "member_before": [not after] * len(keys), "member_after": [after] * len(keys),
                "rule": [r[1] for r in rules], "reason": [r[2] for r in rules],
                "sync_run_id": [record.run_id] * len(keys),
                "applied_at": pa.array([now] * len(keys), pa.timestamp("us")),
            }))

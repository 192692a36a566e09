"""Planning a sync: what the destination should hold, and what must change to get there.

The **desired** state is the segment's snapshot at ``as_of``, joined with the
customer's identity and mapped attributes, minus anyone whose consent for the
destination's channel is withdrawn *now*. The **acknowledged** state is what the
destination confirmed (``segprovider_sync_state``). The difference is the plan:

* **add**: desired, not in the destination;
* **change**: in both, attributes hash differs (mirror and upsert modes);
* **remove**: in the destination because *we* added it, no longer desired (every mode in
  :data:`REMOVING_MODES`: mirror and upsert; ``add_only`` removes no one who merely left the segment);
* **consent_remove**: in the destination (whoever put it there) and no longer *allowed* on the
  destination's channel: the latest consent answer withdraws it, or the project's suppression list names its
  key or identity (an erasure in progress suppresses its person too; see
  :func:`~airflow_segprovider.core.sync.consent.not_allowed_keys_sql`, the one "not allowed" predicate).
  Consent ranks above every mode, guard and gate: these removals are planned in
  every mode, ``add_only`` included, are never counted by the safety guards (which judge membership
  removals only), and are the one operation a held sync still sends;
* **reidentify**: in the destination, still desired, but the identity the state recorded as sent differs
  from the customer's identity now (an e-mail changed, or was blanked): the old identity is removed, and
  the customer, out of the state, is sent again as an **add** with the new one (an invalid new address is
  then a rejected record: the old address is gone either way, it is no longer the customer's);
* **restore** (a repair run only, :attr:`SyncOptions.repair`): in the state as in the destination, still
  desired with the same identity and still sendable, but absent from the members the destination listed
  (removed by hand in the tool): sent again as an add. Consent, suppression and exhaustion apply as to any add.
  The listed members no row of the state holds are **added by hand**: reported (``added_by_hand``), never
  removed, since a sync removes only what it added.

An identity a customer who is no longer allowed holds (their address now, or the one the state recorded
for them) is **withdrawn** for everyone (:func:`withdrawn_identities_sql`): two customers sharing an address
are one contact in the destination, and its owner's opt-out covers the address. It is never sent for the
other holder either, and every row of the state holding it is a consent removal.

Identities are shared, not owned: a removal or a re-identification sends the old identity only when no
contact that stays holds it; otherwise the leaving row is **released** from the state without a call
(:func:`shared_identity_queries`). Consent removals are never narrowed that way.

Each operation is one query listing its keys (with what is needed to send them); the
plan counts them in the warehouse, never loading the members into memory.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from airflow_segprovider.core.evaluate.customers import customer_relation_sql
from airflow_segprovider.core.sql.dialects import render, text_literal, ts_literal
from airflow_segprovider.core.state.membership import MEMBERSHIPS
from airflow_segprovider.core.state.sync import REJECTED, STATE
from airflow_segprovider.core.sync.consent import latest_consent_sql

if TYPE_CHECKING:
    from airflow_segprovider.core.destination import DestinationClient
    from airflow_segprovider.core.project.spec import Destination, Project, Sync
    from airflow_segprovider.core.warehouses.base import Warehouse

log = logging.getLogger(__name__)

OPERATIONS = ("add", "change", "remove", "consent_remove", "reidentify", "restore")
#: the operations that take contacts out of the destination (sent with the vendor ids the state knows)
REMOVALS = ("remove", "consent_remove", "reidentify")
#: the operations sent with the vendor ids the state holds: the removals, and changes (a connector whose id is
#: the row it uploaded, Meta's, replaces that row: an upload alone would leave the old keys matching)
WITH_IDS = (*REMOVALS, "change")
#: the sync modes whose plan removes members who left the segment (``add_only`` adds, nothing else);
#: the safety guards (:func:`~airflow_segprovider.core.sync.safety.check_safety`) hold back each of them
REMOVING_MODES = ("mirror", "upsert")


@dataclass
class SyncOptions:
    """How one sync run behaves.

    :param dry_run: plan and report, never call the destination's write endpoints.
    :param allow_mass_removal: let a run remove more than ``max_remove_fraction`` of the destination.
    :param max_attempts: a refused record is retried on later runs until it was refused this often.
    :param concurrency: batches in flight at once (the connector also caps its own connections); None
        (default) takes the connector's ``batches_in_flight`` (4 unless its vendor needs more to keep its
        connections busy: Mailchimp 20).
    :param sample_size: keys shown per operation in a dry run.
    :param progress_every_s: seconds between progress lines in the log.
    :param batch_size: records per call; None (default) uses the vendor's documented maximum.
    :param held_by: why this sync's membership changes are held (a failed segment gate, named): nothing
        is added, changed or removed for membership, but members who withdrew consent are still removed,
        because an opt-out is never held back.
    :param repair: read the destination's members first (where its API can list them: Mailchimp, HubSpot)
        and restore members the state holds that are missing there (removed by hand); contacts added by hand
        are counted and sampled, never removed. A destination that cannot list its members (Meta) is
        synced as usual and the run record says the repair was not possible.
    :param log_retention_days: rows of the per-record sync log (``segprovider_sync_log``) older than this
        are deleted for this sync at the end of each run that sends; None keeps them forever.
    :raises ValueError: naming the field, for a count that must be at least 1 and is not (a concurrency of 0
        would never send a batch).
    """

    dry_run: bool = False
    allow_mass_removal: bool = False
    max_attempts: int = 3
    concurrency: int | None = None
    sample_size: int = 5
    progress_every_s: float = 10.0
    batch_size: int | None = None
    held_by: str | None = None
    log_retention_days: int | None = 90
    repair: bool = False

    def __post_init__(self) -> None:
        at_least_one = {"max_attempts": self.max_attempts, "concurrency": self.concurrency,
                        "batch_size": self.batch_size, "log_retention_days": self.log_retention_days}
        for name, value in at_least_one.items():
            if value is None and name in ("batch_size", "log_retention_days", "concurrency"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SyncOptions.{name} must be a whole number >= 1, got {value!r}"
                                 + ("; leave it None for the vendor's maximum" if name == "batch_size" else ""))
        if isinstance(self.sample_size, bool) or not isinstance(self.sample_size, int) or self.sample_size < 0:
            raise ValueError(f"SyncOptions.sample_size must be a whole number >= 0, got {self.sample_size!r}")


@dataclass
class SyncPlan:
    add: int
    change: int
    remove: int | None  # None: unknown (a destination we cannot read and have no state for)
    suppressed: int
    missing_identity: int
    exhausted: int  # refused too often, no longer retried
    destination_size: int | None
    baseline: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)
    #: contacts removed because their consent was withdrawn: apart from ``remove``, which the guards judge
    consent_remove: int = 0
    #: old identities removed because the member's identity changed (the new one is sent as an add)
    reidentify: int = 0
    #: leaving customers whose identity another staying contact holds: out of the state, no call
    released: int = 0
    #: members the state holds that a repair found missing in the destination (removed by hand): re-added
    restore: int = 0
    #: contacts a repair found in the destination that no row of the state holds: reported, never removed;
    #: None when the destination's members were not read (no repair, or a destination that cannot list them)
    added_by_hand: int | None = None


def desired_sql(project: Project, sync: Sync, destination: Destination, as_of: dt.datetime,
                schema: str | None) -> str:
    """Members to hold: snapshot rows with identity, mapped attributes, row hash and consent now."""
    model = project.model
    customer = model.customer
    attrs = customer.attributes
    identity_col = attrs[destination.identity].column
    fields = sorted(destination.field_mapping.items())
    projections = [f'c."{attrs[attr].column}" AS "f__{name}"' for name, attr in fields]
    hash_input = " || '|' || ".join(
        [f"COALESCE(CAST(c.\"{identity_col}\" AS VARCHAR), '')"]
        + [f"COALESCE(CAST(c.\"{attrs[attr].column}\" AS VARCHAR), '\u2205')" for _, attr in fields])
    arm = f" AND m.arm = {text_literal(sync.arm)}" if sync.arm else ""
    consent_join, consent_ok = "", "TRUE"
    if model.consent is not None and destination.channel in model.consent.channels:
        consent = model.consent
        require = model.consent.channels[destination.channel].require_opt_in
        # consent is checked again at sync time: the latest answer, whenever it was given
        consent_join = (f"LEFT JOIN ({latest_consent_sql(consent, destination.channel, schema)}) "
                        f"AS consent ON consent.k = m.customer_key")
        consent_ok = f"COALESCE(consent.opted_in, {'FALSE' if require else 'TRUE'})"
    return (
        f"SELECT m.customer_key, CAST(c.\"{identity_col}\" AS VARCHAR) AS identity, "
        + "".join(p + ", " for p in projections)
        + f"MD5({hash_input}) AS row_hash, {consent_ok} AS consent_ok "
        # identities and mapped fields as they were at the snapshot's as_of (point-in-time attributes)
        f"FROM {MEMBERSHIPS} AS m JOIN {customer_relation_sql(project, schema, as_of, alias='c')} "
        f"ON CAST(c.\"{customer.key}\" AS VARCHAR) = m.customer_key {consent_join} "
        f"WHERE m.segment = {text_literal(sync.segment)} AND m.as_of = {ts_literal(as_of)}{arm}"
    )


def withdrawn_identities_sql(project: Project, sync: Sync, destination: Destination, as_of: dt.datetime,
                             schema: str | None, not_allowed: str) -> str:
    """Identities (trimmed, lower-cased) held by a customer who is not allowed on the destination's channel.

    The address the customer holds at ``as_of`` and every address the sync state recorded for them: an
    address whose owner opted out is out for every customer sharing it.

    :param not_allowed: the keys no longer allowed (the plan's ``not_allowed``).
    """
    customer = project.model.customer
    identity_col = customer.attributes[destination.identity].column
    held_now = _norm(f'CAST(c."{identity_col}" AS VARCHAR)')
    now = (f"SELECT CAST(c.\"{customer.key}\" AS VARCHAR) AS k, {held_now} AS identity "
           f"FROM {customer_relation_sql(project, schema, as_of, alias='c')}")
    recorded = (f"SELECT w.customer_key AS k, {_norm('w.identity')} AS identity FROM {STATE} AS w "
                f"WHERE w.sync_id = {text_literal(sync.id)}")
    # both sources first, one test of the keys after: the "not allowed" query is read once
    return (f"SELECT DISTINCT held.identity FROM ({now} UNION ALL {recorded}) AS held "
            f"WHERE held.identity <> '' AND held.k IN ({not_allowed})")


def plan_queries(sync: Sync, destination: Destination, desired: str, max_attempts: int,
                 dialect: str, not_allowed: str | None = None, *, withdrawn: str | None = None,
                 read_back: str | None = None) -> dict[str, str]:
    """Queries listing the keys of each operation (with what is needed to send them).

    :param desired: the desired-state query (:func:`desired_sql`, or a subclass's own).
    :param dialect: the warehouse's dialect the queries are rendered in.
    :param not_allowed: keys no longer allowed on the destination's channel: withdrawn consent, the
        suppression list (:func:`~airflow_segprovider.core.sync.consent.not_allowed_keys_sql`); never sent,
        and a consent removal wherever the destination holds them. None: nobody is (nothing is a consent removal).
    :param withdrawn: identities no longer allowed (:func:`withdrawn_identities_sql`): never sent for anyone,
        and a consent removal for every row of the state holding one. None: only keys are judged.
    :param read_back: a query of the identities (trimmed, lower-cased) the destination listed in a repair
        run; None: not read, so nothing is restored and nothing is reported as added by hand.
    """
    sid = text_literal(sync.id)
    # a missing identity never exhausts sending: once the customer has one, it is sent
    exhausted = (f"SELECT customer_key, identity FROM {REJECTED} WHERE sync_id = {sid} "
                 f"AND error_code <> 'missing_identity' "
                 f"AND (attempts >= {int(max_attempts)} OR COALESCE(final, FALSE))")
    # a refusal is of the identity it refused: once the customer holds another, that one is sent (rows of an
    # earlier version, without the identity, still block the customer)
    blocked = (f"{_norm('d.customer_key')} || '|' || {_norm('d.identity')} NOT IN (SELECT {_norm('x.customer_key')} "
               f"|| '|' || {_norm('x.identity')} FROM ({exhausted}) AS x) AND d.customer_key NOT IN "
               f"(SELECT x.customer_key FROM ({exhausted}) AS x WHERE x.identity IS NULL)")
    state = f"SELECT * FROM {STATE} WHERE sync_id = {sid} AND in_destination"
    fields = "".join(f', d."f__{name}"' for name in sorted(destination.field_mapping))
    # consent now, and not suppressed: whoever is not allowed is never sent, whatever the mode
    allowed = "d.consent_ok" + (f" AND d.customer_key NOT IN ({not_allowed})" if not_allowed else "")
    if withdrawn:
        allowed += f" AND {_norm('d.identity')} NOT IN ({withdrawn})"
    sendable = f"{allowed} AND d.identity IS NOT NULL AND d.identity <> '' AND {blocked}"
    consent_remove = consent_removals_sql(sync, not_allowed, withdrawn)
    # a state row that is a consent removal (its key not allowed, or its identity withdrawn) is nothing else
    leaving_for_consent = ((f" AND s.customer_key NOT IN ({not_allowed})" if not_allowed else "")
                           + (f" AND {_norm('s.identity')} NOT IN ({withdrawn})" if withdrawn else ""))
    queries = {
        "desired": desired,
        "add": (f"SELECT d.customer_key, d.identity, d.row_hash{fields} FROM ({desired}) AS d "
                f"LEFT JOIN ({state}) AS s ON s.customer_key = d.customer_key "
                f"WHERE s.customer_key IS NULL AND {sendable}"),
        # a new identity is not a change of the old contact: see "reidentify"
        "change": (f"SELECT d.customer_key, d.identity, d.row_hash{fields}, s.destination_id FROM ({desired}) AS d "
                   f"JOIN ({state}) AS s ON s.customer_key = d.customer_key "
                   f"WHERE (s.row_hash IS NULL OR s.row_hash <> d.row_hash) AND {sendable} "
                   f"AND {_norm('s.identity')} = {_norm('d.identity')}"
                   # a member a repair restores is sent whole by "restore"
                   + (f" AND {_norm('d.identity')} IN ({read_back})" if read_back else "")),
        # a member who is no longer allowed is a consent removal, never a membership removal too
        "remove": (f"SELECT s.customer_key, s.identity, s.row_hash, s.destination_id FROM ({state}) AS s "
                   f"WHERE s.origin = 'segprovider' AND s.customer_key NOT IN "
                   f"(SELECT customer_key FROM ({desired}) AS d WHERE d.consent_ok)" + leaving_for_consent),
        "consent_remove": consent_remove,
        # the member's identity changed (a new address, or none): the old one leaves; "add" then sends the new
        "reidentify": (f"SELECT s.customer_key, s.identity, s.row_hash, s.destination_id FROM ({state}) AS s "
                       f"JOIN ({desired}) AS d ON d.customer_key = s.customer_key "
                       f"WHERE d.consent_ok AND {_norm('s.identity')} <> {_norm('d.identity')}" + leaving_for_consent),
        # removed by hand in the tool: held in the state, missing from what the destination listed
        "restore": (f"SELECT d.customer_key, d.identity, d.row_hash{fields} FROM ({desired}) AS d "
                    f"JOIN ({state}) AS s ON s.customer_key = d.customer_key "
                    f"WHERE {sendable} AND {_norm('s.identity')} = {_norm('d.identity')} "
                    + (f"AND {_norm('d.identity')} NOT IN ({read_back})" if read_back else "AND FALSE")),
        # listed by the destination, held by no row of the state: reported, never removed
        "added_by_hand": (f"SELECT r.identity AS customer_key FROM ({read_back}) AS r WHERE r.identity NOT IN "
                          f"(SELECT {_norm('h.identity')} FROM ({state}) AS h)" if read_back else
                          "SELECT CAST(NULL AS VARCHAR) AS customer_key WHERE FALSE"),
        "suppressed": f"SELECT d.customer_key FROM ({desired}) AS d WHERE NOT ({allowed})",
        "missing_identity": (f"SELECT d.customer_key FROM ({desired}) AS d WHERE {allowed} "
                             f"AND (d.identity IS NULL OR d.identity = '')"),
        "exhausted": exhausted,
    }
    if sync.mode == "add_only":
        queries["change"] = queries["add"] + " AND FALSE"
    if sync.mode not in REMOVING_MODES:
        queries["remove"] = queries["remove"] + " AND FALSE"
        queries["reidentify"] = queries["reidentify"] + " AND FALSE"
    # consent_remove is never turned off: not by add_only, not by a hold (see held_queries)
    queries.update(shared_identity_queries(state, queries))
    return {name: render(sql, dialect) for name, sql in queries.items()}


def _norm(column: str) -> str:
    """An identity as destinations match it: trimmed, lower-cased, never NULL (so ``NOT IN`` is safe)."""
    return f"LOWER(TRIM(COALESCE({column}, '')))"


def shared_identity_queries(state: str, queries: dict[str, str]) -> dict[str, str]:
    """``remove`` and ``reidentify`` narrowed to identities no staying contact holds, and ``release``.

    Destinations hold an identity (an address), not a customer: two customers sharing an address are
    one contact there. An identity leaves the destination only when no contact that *stays* (a row
    of the state that this run neither removes, re-identifies nor consent-removes) holds it; the rows
    of a leaving customer whose identity another contact still holds are **released**: taken out of
    the state without a call (``release``, applied before anything is sent). Consent removals are
    not narrowed: a withdrawal removes the address whoever else shares it.
    """
    leaving = " UNION ".join(f"SELECT customer_key FROM ({queries[op]}) AS {op}_keys"
                             for op in ("remove", "reidentify", "consent_remove"))
    held = f"SELECT {_norm('h.identity')} FROM ({state}) AS h WHERE h.customer_key NOT IN ({leaving})"
    narrowed = {op: f"SELECT * FROM ({queries[op]}) AS q WHERE {_norm('q.identity')} NOT IN ({held})"
                for op in ("remove", "reidentify")}
    narrowed["release"] = " UNION ".join(
        f"SELECT q.customer_key, q.identity FROM ({queries[op]}) AS q WHERE {_norm('q.identity')} IN ({held})"
        for op in ("remove", "reidentify"))
    return narrowed


def consent_removals_sql(sync: Sync, not_allowed: str | None, withdrawn: str | None = None) -> str:
    """Contacts the destination holds for ``sync`` (ours or a baseline's) whose key is ``not_allowed``,
    or whose identity is ``withdrawn`` (another holder of the address opted out).

    A baseline member (found in the list on a first run) is removed too: consent outranks ownership.
    Without a ``not_allowed`` query the result is empty, with the same columns.
    """
    state = f"SELECT * FROM {STATE} WHERE sync_id = {text_literal(sync.id)} AND in_destination"
    reasons = [f"s.customer_key IN ({not_allowed})"] if not_allowed else []
    if withdrawn:
        reasons.append(f"{_norm('s.identity')} IN ({withdrawn})")
    return (f"SELECT s.customer_key, s.identity, s.row_hash, s.destination_id FROM ({state}) AS s WHERE "
            + (" OR ".join(reasons) if reasons else "FALSE"))


def held_queries(queries: dict[str, str]) -> dict[str, str]:
    """``queries`` of a sync whose membership changes are held (a failed gate): only consent removals are left.

    Adds, changes, membership removals, re-identifications, restores and releases are emptied;
    ``consent_remove`` is kept as planned, so a held sync and a free one remove the same withdrawn contacts.
    """
    held = dict(queries)
    for operation in ("add", "change", "remove", "reidentify", "release", "restore"):
        held[operation] = f"SELECT * FROM ({queries[operation]}) AS q WHERE FALSE"
    return held


def count_rows(warehouse: Warehouse, sql: str) -> int:
    """How many rows ``sql`` (already rendered) returns, counted in the warehouse."""
    return int(warehouse.query(f"SELECT COUNT(*) FROM ({sql}) AS q")[0][0])


def plan_sync(warehouse: Warehouse, sync: Sync, client: DestinationClient, queries: dict[str, str],
              sample_size: int, count: Callable[[str], int], baseline: Callable[[], int] | None, *,
              read_back: bool = False) -> SyncPlan:
    """Count each operation of ``queries`` into a :class:`SyncPlan`, with a few sample keys each.

    :param count: counts the rows of a rendered query (the engine's ``_count``).
    :param baseline: records an existing list's members on a first run (see
        :func:`~airflow_segprovider.core.sync.safety.baseline_members`) and returns how many;
        None when this run must not read or record them (a dry run, an attribute push).
    :param read_back: the destination's members were read for a repair: count and sample ``added_by_hand``.
    """
    sid = text_literal(sync.id)
    has_state = count(render(f"SELECT 1 FROM {STATE} WHERE sync_id = {sid}", warehouse.dialect)) > 0
    baselined = 0
    if not has_state and baseline is not None and client.can_read_members:
        baselined = baseline()
        has_state = True
    plan = SyncPlan(
        add=count(queries["add"]), change=count(queries["change"]),
        remove=count(queries["remove"]), suppressed=count(queries["suppressed"]),
        consent_remove=count(queries["consent_remove"]), reidentify=count(queries["reidentify"]),
        released=count(queries["release"]),
        missing_identity=count(queries["missing_identity"]), exhausted=count(queries["exhausted"]),
        destination_size=count(render(f"SELECT 1 FROM {STATE} WHERE sync_id = {sid} AND in_destination",
                                      warehouse.dialect)),
        baseline=baselined, restore=count(queries["restore"]),
        added_by_hand=count(queries["added_by_hand"]) if read_back else None,
    )
    if not has_state and client.can_read_members and baseline is None:
        plan.remove = None  # a dry run of a first sync: the destination's current members are not read
    if not has_state and not client.can_read_members:
        plan.destination_size = None
    for operation in (*OPERATIONS, "added_by_hand") if read_back else OPERATIONS:
        plan.samples[operation] = [row[0] for row in warehouse.query(
            f"SELECT customer_key FROM ({queries[operation]}) AS q ORDER BY customer_key "
            f"LIMIT {int(sample_size)}")]
    log.info("sync %s plan: %s", sync.id, {k: v for k, v in asdict(plan).items() if k != "samples"})
    return plan

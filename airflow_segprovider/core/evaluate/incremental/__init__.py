"""Incremental evaluation: a run at ``as_of₂`` after a snapshot at ``as_of₁`` re-evaluates only the
customers whose membership can have changed, and carries everyone else's over.

Why it is exact. A customer's memberships are a function of one row of the plan's ``base``
relation (the customer's attributes as rules read them, every aggregate of the plan, the latest
consent per channel) and of ``as_of`` (relative predicates such as ``within_last``); segment
references, priority groups and splits are computed per customer from that row. The warehouse keeps
the ``base`` of the latest snapshot (:data:`~airflow_segprovider.core.state.incremental.BASE`), and a
run brings it to ``as_of₂`` for the customers whose row can differ:

* **events** (event types and orders): an event counts in an aggregate at ``as_of`` when it lies in
  the aggregate's window and passes its filters. Between the two runs an event's contribution can
  change only if it arrived since (a row of an ingest load, ``_segprovider_load``, the state had not
  seen: new *and late* events alike), or its timestamp crossed a window edge: ``(as_of₁, as_of₂]``,
  or ``[as_of₁ - W, as_of₂ - W]`` for each window ``W`` of the source. One scan of those rows gives,
  per customer and aggregate, the contribution at ``as_of₂`` minus the one at ``as_of₁`` (the state
  saw the old loads only). Counts, sums and averages (kept as sum and count, exact decimals) add
  it; ``first``/``last``/``min``/``max`` take the extreme of the old value and the events now counted,
  unless an event left the window: such a customer (and a new one) is recomputed from all its events.
  A filter with a relative value (``within_last``) changes with ``as_of`` for any event: its source is
  scanned whole (correct, not faster).
* **attributes**: the customer relation (:func:`~airflow_segprovider.core.evaluate.customers.customer_relation`,
  point in time when the project keeps history) at ``as_of₂`` is compared with the stored values;
  new customers and customers gone (deleted, erased) are touched too.
* **consent**: customers with a consent row updated in ``(as_of₁, as_of₂]`` or of a new load.
* **relative predicates** on a date or timestamp (an attribute, or a ``first``/``last``): customers
  whose value lies between the predicate's bounds at ``as_of₁`` and at ``as_of₂``.

The touched customers' ``base`` rows are replaced, their flags computed from them by the compiled
plan itself (its ``base`` CTE read from the state), and the membership words that changed are written
as a delta on the previous snapshot's write (:meth:`MembershipStore.write_delta`): the diff comes out
of the same rows. Readers still read one full snapshot per ``as_of`` through the view.

When it is not used (the run record says why, ``EvaluationResult.mode``/``reason``): ``full=True``;
a subset of segments; no state (first run); a changed plan (rules, data model, schema: the state's
fingerprint); a backfill or re-run (``as_of`` not after the latest snapshot); the latest snapshot
rewritten since the state; an event or consent table without ``_segprovider_load`` (not an append
load: which rows arrived since cannot be told), or one of whose seen loads changed (its row count or
the checksum of its rows over the columns the plan reads differs from the state's, or the state has no
checksum for it: kept by an earlier version); new rows beyond
:data:`limits.MAX_NEW_ROWS_SHARE` of a table, or touched customers beyond :data:`limits.MAX_TOUCHED_SHARE` (a full
evaluation is then cheaper); and a write whose deltas reached :data:`limits.MAX_DELTA_SHARE` of its base
(a new full write keeps reads fast).
"""

from __future__ import annotations

from airflow_segprovider.core.evaluate.incremental import limits
from airflow_segprovider.core.evaluate.incremental.decision import (
    FINGERPRINT_AS_OF,
    FULL,
    INCREMENTAL,
    Decision,
    decide,
    ensure_tables,
    fingerprint,
    load_counts,
)
from airflow_segprovider.core.evaluate.incremental.plan import flags_from_state
from airflow_segprovider.core.evaluate.incremental.run import IncrementalOutcome, Staged, apply, cleanup, run, stage
from airflow_segprovider.core.evaluate.incremental.state import (
    drop_staged_base,
    record_run,
    save_state,
    stage_base,
    write_base,
)

__all__ = ["FINGERPRINT_AS_OF", "FULL", "INCREMENTAL", "Decision", "IncrementalOutcome", "Staged", "apply", "cleanup",
           "decide", "drop_staged_base", "ensure_tables", "fingerprint", "flags_from_state", "limits", "load_counts",
           "record_run", "run", "save_state", "stage", "stage_base", "write_base"]

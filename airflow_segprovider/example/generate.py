"""Deterministic synthetic marketing data for the example project's data model.

``generate(warehouse, customers=N, seed=S)`` writes ``customers``, ``events``,
``orders`` and ``consents`` with realistic shapes: activity is heavily skewed
(a few customers produce most events), recency decays, some customers opted out,
some attributes are missing. The same seed and anchor always give the same rows.
Data is produced in numpy chunks and loaded through Arrow, never row by row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from airflow_segprovider.core.warehouses.duckdb import DuckDBWarehouse

DEFAULT_ANCHOR = dt.datetime(2026, 11, 24)
EVENT_TYPES = np.array(["page_view", "email_open", "email_click", "add_to_cart", "purchase"])
EVENT_WEIGHTS = np.array([0.55, 0.25, 0.06, 0.09, 0.05])
COUNTRIES = np.array(["US", "DE", "FR", "GB", "NL", "IT", "ES", "CA", "BR", "JP"])
COUNTRY_WEIGHTS = np.array([0.30, 0.14, 0.10, 0.10, 0.06, 0.07, 0.07, 0.06, 0.05, 0.05])
DOMAINS = np.array(["gmail.com", "yahoo.com", "outlook.com", "example.com", "mail.de"])
DOMAIN_WEIGHTS = np.array([0.42, 0.13, 0.2, 0.15, 0.1])
FIRST_NAMES = np.array(["Ada", "Ben", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hiro", "Inès", "Jonas",
                        "Kofi", "Lena", "Mateo", "Nora", "Omar", "Priya"])
PLANS = np.array(["free", "plus", "pro"])
CHANNELS = np.array(["web", "app", "email"])
CATEGORIES = np.array(["shoes", "outerwear", "accessories", "home", "beauty"])
STATUSES = np.array(["completed", "refunded", "cancelled"])
US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class GeneratedCounts:
    customers: int
    events: int
    orders: int
    consents: int


def _timestamps(anchor_us: int, ages_days: np.ndarray) -> np.ndarray:
    return (anchor_us - (ages_days * US_PER_DAY).astype(np.int64)).astype("datetime64[us]")


def _with_nulls(rng: np.random.Generator, values: np.ndarray, fraction: float) -> pa.Array:
    mask = rng.random(len(values)) < fraction
    return pa.array(values, mask=mask)


def generate(warehouse: DuckDBWarehouse, customers: int, *, seed: int = 42, events_per_customer: float = 20.0,
             anchor: dt.datetime = DEFAULT_ANCHOR, chunk_rows: int = 4_000_000) -> GeneratedCounts:
    """Write the example dataset into ``warehouse`` (replacing the four tables).

    :param customers: number of customers.
    :param seed: random seed; same seed, same data.
    :param events_per_customer: mean events per customer (the benchmark uses 20: 1M customers, 20M events).
    :param anchor: the newest timestamp in the data; activity is spread over the two years before it.
    :param chunk_rows: events generated per chunk, which bounds peak memory.
    """
    if customers <= 0:
        raise ValueError("customers must be a positive number")
    rng = np.random.default_rng(seed)
    anchor_us = int(np.datetime64(anchor, "us").astype(np.int64))
    con = warehouse.connection
    ids = np.arange(1, customers + 1, dtype=np.int64)

    # customers ---------------------------------------------------------------------------
    signup_age = rng.uniform(0, 3 * 365, customers)
    # most customers were seen recently; a dormant minority was last seen long ago
    seen_age = np.minimum(signup_age, np.where(rng.random(customers) < 0.3, rng.uniform(0, 3 * 365, customers),
                                               rng.exponential(20, customers)))
    emails = np.char.add(np.char.add(np.char.add("user", ids.astype(str)), "@"),
                         rng.choice(DOMAINS, customers, p=DOMAIN_WEIGHTS))
    ltv = np.round(rng.lognormal(5.5, 1.3, customers), 2)
    birth = (np.datetime64("1950-01-01") + rng.integers(0, 55 * 365, customers).astype("timedelta64[D]"))
    table = pa.table({
        "customer_id": ids,
        "email": _with_nulls(rng, emails, 0.02),
        "first_name": rng.choice(FIRST_NAMES, customers),
        "country": _with_nulls(rng, rng.choice(COUNTRIES, customers, p=COUNTRY_WEIGHTS), 0.03),
        "plan": rng.choice(PLANS, customers, p=[0.7, 0.2, 0.1]),
        "lifetime_value": _with_nulls(rng, ltv, 0.05),
        "is_employee": _with_nulls(rng, rng.random(customers) < 0.005, 0.10),
        "birth_date": _with_nulls(rng, birth, 0.10),
        "signup_at": _timestamps(anchor_us, signup_age),
        "last_seen_at": _with_nulls(rng, _timestamps(anchor_us, seen_age), 0.05),
    })
    con.register("_gen_customers", table)
    con.execute("CREATE OR REPLACE TABLE customers AS SELECT * FROM _gen_customers")
    con.unregister("_gen_customers")
    del table, emails

    # events: skewed activity, recency decaying over two years ------------------------------
    activity = rng.lognormal(0, 1.2, customers)
    cumulative = np.cumsum(activity / activity.sum())
    total_events = int(customers * events_per_customer)
    con.execute("""CREATE OR REPLACE TABLE events (customer_id BIGINT, event_type VARCHAR, occurred_at TIMESTAMP,
                   revenue DOUBLE, channel VARCHAR, category VARCHAR)""")
    written = 0
    while written < total_events:
        n = min(chunk_rows, total_events - written)
        owner_index = np.minimum(np.searchsorted(cumulative, rng.random(n)), customers - 1)
        owners = ids[owner_index]
        types = rng.choice(len(EVENT_TYPES), n, p=EVENT_WEIGHTS)
        # a customer's events happen before they were last seen (email opens need no visit, so they go on)
        ages = np.minimum(np.where(types == 1, 0, seen_age[owner_index]) + rng.exponential(90, n), 730)
        revenue = np.round(rng.lognormal(4, 0.8, n), 2)
        chunk = pa.table({
            "customer_id": owners,
            "event_type": pa.DictionaryArray.from_arrays(pa.array(types.astype(np.int32)), pa.array(EVENT_TYPES)),
            "occurred_at": _timestamps(anchor_us, ages),
            "revenue": pa.array(revenue, mask=types != 4),
            "channel": pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 3, n).astype(np.int32)),
                                                      pa.array(CHANNELS)),
            "category": pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 5, n).astype(np.int32)),
                                                       pa.array(CATEGORIES)),
        })
        con.register("_gen_events", chunk)
        con.execute("INSERT INTO events SELECT customer_id, CAST(event_type AS VARCHAR), occurred_at, revenue, "
                    "CAST(channel AS VARCHAR), CAST(category AS VARCHAR) FROM _gen_events")
        con.unregister("_gen_events")
        written += n
        del chunk, owners, owner_index, types, ages, revenue

    # orders ------------------------------------------------------------------------------
    order_count = int(customers * 1.5)
    order_owners = ids[np.minimum(np.searchsorted(cumulative, rng.random(order_count)), customers - 1)]
    orders = pa.table({
        "order_id": np.arange(1, order_count + 1, dtype=np.int64),
        "customer_id": order_owners,
        "ordered_at": _timestamps(anchor_us, np.minimum(rng.exponential(150, order_count), 730)),
        "amount": np.round(rng.lognormal(4.3, 0.9, order_count), 2),
        "status": rng.choice(STATUSES, order_count, p=[0.85, 0.1, 0.05]),
    })
    con.register("_gen_orders", orders)
    con.execute("CREATE OR REPLACE TABLE orders AS SELECT * FROM _gen_orders")
    con.unregister("_gen_orders")

    # consents: most customers answered for each channel; some changed their mind ----------
    parts = []
    for channel, answered, opt_in in (("email", 0.92, 0.85), ("sms", 0.5, 0.4), ("ads", 0.7, 0.8)):
        who = ids[rng.random(customers) < answered]
        n = len(who)
        latest_age = rng.uniform(0, 700, n)
        parts.append(pa.table({
            "customer_id": who, "channel": np.full(n, channel),
            "opted_in": rng.random(n) < opt_in, "updated_at": _timestamps(anchor_us, latest_age)}))
        changed = rng.random(n) < 0.1  # an older, opposite answer
        parts.append(pa.table({
            "customer_id": who[changed], "channel": np.full(int(changed.sum()), channel),
            "opted_in": ~parts[-1]["opted_in"].to_numpy(zero_copy_only=False)[changed],
            "updated_at": _timestamps(anchor_us, latest_age[changed] + rng.uniform(1, 300, int(changed.sum())))}))
    consents = pa.concat_tables(parts)
    con.register("_gen_consents", consents)
    con.execute("CREATE OR REPLACE TABLE consents AS SELECT * FROM _gen_consents")
    con.unregister("_gen_consents")
    return GeneratedCounts(customers, total_events, order_count, consents.num_rows)

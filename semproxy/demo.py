"""A deterministic demo warehouse: a web shop's customers, products, orders, items, refunds.

    generate(Path("data/demo.duckdb"), orders=100_000, seed=42)

Built column-wise with numpy and Arrow (100k orders in well under a second) and written
to a DuckDB file in schema `main`, matching semantic-models/production/. The same seed
gives the same rows. The data holds the traps real warehouses hold, so that the semantic
layer's answers are tested against them:

- ~0.5% of orders name a customer_id that matches no customer (orphans);
- ~8% of customers never ordered;
- NULLs in dimensions: orders.region (~1%), customers.region and segment, products.brand;
- seasonality (weekends, a November-December peak, growth) over 2023-01-01..2025-12-31;
- orders.amount is exactly the sum of its items' line_amount; refunds never exceed it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

START = np.datetime64("2023-01-01", "D")
DAYS = int((np.datetime64("2026-01-01", "D") - START).astype(int))
REGIONS = ["North America", "Europe", "Asia Pacific", "Latin America"]
COUNTRIES = [["US", "CA", "MX"], ["DE", "FR", "GB", "NL", "ES"], ["JP", "AU", "SG", "IN"], ["BR", "AR", "CL"]]
SEGMENTS = ["consumer", "small_business", "enterprise"]
CHANNELS = ["web", "mobile", "store", "partner"]
STATUSES = ["completed", "shipped", "cancelled", "returned"]
CATEGORIES = ["Electronics", "Home", "Outdoors", "Toys", "Books", "Apparel", "Beauty"]
BRANDS = ["Acme", "Globex", "Initech", "Umbrella", "Soylent", "Hooli", "Vandelay", "Stark"]
REASONS = ["damaged", "wrong item", "not as described", "late delivery", "changed mind"]
FIRST = ["Ada", "Alan", "Grace", "Linus", "Barbara", "Dennis", "Edsger", "Frances", "Ken", "Margaret",
         "Niklaus", "Radia", "Tim", "Donald", "Sophie", "Guido", "Karen", "John", "Hedy", "Yukihiro"]
LAST = ["Lovelace", "Turing", "Hopper", "Torvalds", "Liskov", "Ritchie", "Dijkstra", "Allen", "Thompson",
        "Hamilton", "Wirth", "Perlman", "Berners-Lee", "Knuth", "Wilson", "van Rossum", "Jones", "Backus"]


def _decimal(cents: np.ndarray, precision: int) -> pa.Array:
    """Exact DECIMAL(precision, 2) from integer cents: 128-bit little-endian unscaled values."""
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63  # sign extension
    return pa.Array.from_buffers(pa.decimal128(precision, 2), len(cents), [None, pa.py_buffer(words.tobytes())])


def _labels(values: list[str], index: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """values[index] as a string column; NULL where `null`."""
    return pa.array(values, pa.string()).take(pa.array(index, pa.int64(), mask=null))


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array((START + days.astype("timedelta64[D]")).astype("datetime64[D]"), pa.date32())


def _day_weights() -> np.ndarray:
    day = np.arange(DAYS)
    date = START + day.astype("timedelta64[D]")
    day_of_year = (date - date.astype("datetime64[Y]")).astype(int)
    weekday = (day + 6) % 7  # 2023-01-01 was a Sunday; 5, 6 = Saturday, Sunday
    weights = 1.0 + 0.6 * day / DAYS  # growth
    weights *= 1.0 + 0.15 * (weekday >= 5)
    weights *= 1.0 + 0.2 * np.sin(2 * np.pi * (day_of_year - 80) / 365)
    weights *= 1.0 + 0.7 * (day_of_year >= 320)  # mid-November to December
    return weights / weights.sum()


def _customers(rng: np.random.Generator, n: int) -> tuple[dict[str, pa.Array], np.ndarray]:
    region = rng.choice(len(REGIONS), n, p=[0.4, 0.3, 0.2, 0.1])
    per_region = [np.array(c, dtype=object)[rng.integers(0, len(c), n)] for c in COUNTRIES]
    country = np.choose(region, per_region)
    first = np.array(FIRST, dtype=object)[rng.integers(0, len(FIRST), n)]
    last = np.array(LAST, dtype=object)[rng.integers(0, len(LAST), n)]
    ids = np.arange(1, n + 1)
    return {
        "customer_id": pa.array(ids, pa.int64()),
        "name": pa.array(first + " " + last, pa.string()),
        "email": pa.array(
            [f"{f}.{la}{i}@example.com".lower().replace(" ", "") for f, la, i in zip(first, last, ids, strict=True)],
            pa.string(),
        ),
        "region": _labels(REGIONS, region, rng.random(n) < 0.02),
        "segment": _labels(SEGMENTS, rng.choice(3, n, p=[0.7, 0.22, 0.08]), rng.random(n) < 0.03),
        "country": pa.array(country, pa.string()),
    }, region


def _products(rng: np.random.Generator, n: int) -> tuple[dict[str, pa.Array], np.ndarray]:
    category = rng.integers(0, len(CATEGORIES), n)
    brand = rng.integers(0, len(BRANDS), n)
    cents = np.clip(np.round(np.exp(rng.normal(3.2, 0.9, n)) * 100), 199, 250_000).astype(np.int64)
    names = [f"{CATEGORIES[c]} item {i + 1}" for i, c in enumerate(category)]
    return {
        "product_id": pa.array(np.arange(1, n + 1), pa.int64()),
        "name": pa.array(names, pa.string()),
        "category": _labels(CATEGORIES, category),
        "brand": _labels(BRANDS, brand, rng.random(n) < 0.1),
        "unit_price": _decimal(cents, 10),
    }, cents


def generate(db_path: Path, orders: int = 100_000, seed: int = 42) -> None:
    """Write the demo warehouse to `db_path` (replaced atomically), deterministically from `seed`."""
    rng = np.random.default_rng(seed)
    n_customers, n_products = max(50, orders // 5), 200
    customers, customer_region = _customers(rng, n_customers)
    products, price_cents = _products(rng, n_products)

    # Orders, in time order so that order_id grows with ordered_at.
    day = np.sort(rng.choice(DAYS, orders, p=_day_weights()))
    hour_weights = np.array([1, 1, 1, 1, 1, 2, 4, 6, 8, 9, 10, 10, 11, 10, 9, 9, 9, 10, 12, 13, 12, 9, 5, 2], float)
    seconds = rng.choice(24, orders, p=hour_weights / hour_weights.sum()) * 3600 + rng.integers(0, 3600, orders)
    ordered_at = (START + day.astype("timedelta64[D]")).astype("datetime64[s]") + seconds.astype("timedelta64[s]")
    ordered_at = np.sort(ordered_at)
    day = (ordered_at.astype("datetime64[D]") - START).astype(np.int64)

    buyers = np.flatnonzero(rng.random(n_customers) >= 0.08)  # the rest never order
    loyalty = rng.pareto(1.5, len(buyers)) + 1
    customer_idx = rng.choice(buyers, orders, p=loyalty / loyalty.sum())
    orphan = rng.random(orders) < 0.005
    customer_id = np.where(orphan, n_customers + 1 + rng.integers(0, 1000, orders), customer_idx + 1)
    region = np.where(orphan, rng.integers(0, len(REGIONS), orders), customer_region[customer_idx])

    # Items: 1-8 lines per order; an order's amount is the sum of its lines.
    lines_per_order = np.minimum(1 + rng.poisson(1.2, orders), 8)
    starts = np.concatenate(([0], np.cumsum(lines_per_order)[:-1]))
    item_order = np.repeat(np.arange(orders), lines_per_order)
    popularity = rng.pareto(1.2, n_products) + 1
    product_idx = rng.choice(n_products, len(item_order), p=popularity / popularity.sum())
    quantity = np.minimum(rng.geometric(0.6, len(item_order)), 10)
    line_cents = quantity * price_cents[product_idx]
    amount_cents = np.add.reduceat(line_cents, starts)
    discount_pct = np.where(rng.random(orders) < 0.25, rng.choice([5, 10, 15, 20], orders), 0)
    status = rng.choice(len(STATUSES), orders, p=[0.72, 0.13, 0.08, 0.07])

    # Refunds: every returned order in full (a few partly), and ~2% of completed ones partly.
    refunded = np.flatnonzero((status == 3) | ((status == 0) & (rng.random(orders) < 0.02)))
    share = np.where((status[refunded] == 3) & (rng.random(len(refunded)) < 0.85), 100, rng.integers(10, 60, len(refunded)))
    refund_cents = amount_cents[refunded] * share // 100

    tables = {
        "customers": {**customers, "signup_date": _dates(_signup_days(rng, n_customers, customer_idx, day))},
        "products": products,
        "orders": {
            "order_id": pa.array(np.arange(1, orders + 1), pa.int64()),
            "customer_id": pa.array(customer_id, pa.int64()),
            "order_date": _dates(day),
            "ordered_at": pa.array(ordered_at.astype("datetime64[us]"), pa.timestamp("us")),
            "status": _labels(STATUSES, status),
            "channel": _labels(CHANNELS, rng.choice(len(CHANNELS), orders, p=[0.5, 0.3, 0.15, 0.05])),
            "region": _labels(REGIONS, region, rng.random(orders) < 0.01),
            "amount": _decimal(amount_cents, 12),
            "discount": _decimal(amount_cents * discount_pct // 100, 12),
        },
        "order_items": {
            "item_id": pa.array(np.arange(1, len(item_order) + 1), pa.int64()),
            "order_id": pa.array(item_order + 1, pa.int64()),
            "product_id": pa.array(product_idx + 1, pa.int64()),
            "quantity": pa.array(quantity, pa.int32()),
            "unit_price": _decimal(price_cents[product_idx], 10),
            "line_amount": _decimal(line_cents, 12),
        },
        "refunds": {
            "refund_id": pa.array(np.arange(1, len(refunded) + 1), pa.int64()),
            "order_id": pa.array(refunded + 1, pa.int64()),
            "refunded_at": _dates(day[refunded] + rng.integers(3, 31, len(refunded))),
            "refund_amount": _decimal(refund_cents, 12),
            "reason": _labels(REASONS, rng.integers(0, len(REASONS), len(refunded))),
        },
    }
    _write(db_path, {name: pa.table(columns) for name, columns in tables.items()})


def _signup_days(rng: np.random.Generator, n: int, customer_idx: np.ndarray, order_day: np.ndarray) -> np.ndarray:
    """Signup days from 2021 on, never after a customer's first order."""
    signup = rng.integers(-730, DAYS, n)
    np.minimum.at(signup, customer_idx, order_day)
    return signup


def _write(db_path: Path, tables: dict[str, pa.Table]) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = db_path.with_name(f".{db_path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        with duckdb.connect(str(tmp)) as con:
            for name, table in tables.items():
                con.from_arrow(table).create(name)
        with contextlib.suppress(FileNotFoundError):
            Path(f"{db_path}.wal").unlink()  # a stale log of the old file must not replay onto the new one
        os.replace(tmp, db_path)
    finally:
        tmp.unlink(missing_ok=True)

"""Demo data: a year of a small shop's life, fast enough to make 100,000 orders.

Rows are generated in Python from one ``random.Random(seed)`` (same seed and same
``now``, same rows) and written with Core ``executemany`` in large batches inside one
transaction. Primary keys are assigned here, starting after the current maximum, so
order lines can point at their orders without a round trip per order.

The shape is skewed the way real shops are: a few categories, a handful of best sellers
(Zipf weights), repeat customers, most orders shipped, some cancelled, reviews piling up
on popular products with mostly high ratings, and some products sold out or running low.

The seed writes the tables directly, like any bulk load a real shop runs: it knows
nothing of the CQRS toolkit. Rebuild the read models after it (``flask cqrs backfill``;
``make run`` does).
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import Connection, Engine, Table, func, inspect, select, text

from .extensions import db
from .models import Category, Customer, Order, OrderLine, OrderStatus, Product, Review, Stock
from .types import utcnow

Row = dict[str, Any]
Progress = Callable[[int], None]

SEEDED_MODELS = (Category, Product, Stock, Customer, Order, OrderLine, Review)
BATCH_SIZE = 10_000
HISTORY = timedelta(days=365)

CATEGORY_NAMES = (
    "Kitchen",
    "Garden",
    "Books",
    "Toys",
    "Electronics",
    "Clothing",
    "Sports",
    "Office",
    "Beauty",
    "Pets",
    "Music",
    "Tools",
)
ADJECTIVES = (
    "Blue", "Red", "Green", "Classic", "Compact", "Deluxe", "Eco", "Handmade", "Large",
    "Mini", "Modern", "Rustic", "Smart", "Soft", "Sturdy", "Vintage", "Wooden", "Bamboo",
)  # fmt: skip
NOUNS = (
    "Mug", "Kettle", "Lamp", "Notebook", "Backpack", "Scarf", "Ball", "Puzzle", "Speaker",
    "Planter", "Brush", "Bottle", "Blanket", "Candle", "Chair", "Clock", "Jacket", "Hammer",
)  # fmt: skip
FIRST_NAMES = (
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Femi", "Grace", "Hiro", "Ines", "Jon", "Kira",
    "Luis", "Maya", "Noor", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Vera",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Brown", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lopez", "Murphy", "Nguyen", "Okafor", "Patel", "Rossi", "Smith",
)  # fmt: skip
REVIEW_BODIES = (
    "",
    "Does the job.",
    "Great value, would buy again.",
    "Arrived quickly and well packed.",
    "Not what I expected.",
    "Love it!",
    "Broke after a week.",
    "Exactly as described.",
)
RATINGS = (1, 2, 3, 4, 5)
# Weights are cumulative (rng.choices(cum_weights=...)). Ratings skew happy, with a tail.
RATING_WEIGHTS = tuple(itertools.accumulate((5, 7, 13, 30, 45)))
LINES_PER_ORDER = (1, 2, 3, 4, 5, 6)
LINES_WEIGHTS = tuple(itertools.accumulate((15, 20, 30, 18, 10, 7)))  # ~3 lines an order
QUANTITIES = (1, 2, 3, 4, 5)
QUANTITY_WEIGHTS = tuple(itertools.accumulate((70, 18, 7, 3, 2)))


@dataclass(frozen=True)
class SeedCounts:
    """How much to make of each thing."""

    categories: int = 8
    products: int = 200
    customers: int = 500
    orders: int = 2000
    reviews: int = 600


class WeightedPicker:
    """Draws ids with Zipf-like popularity; popularity is shuffled so ranks aren't ids.

    Callers check that ``ids`` is not empty before drawing (``seed_database`` does).
    """

    def __init__(self, rng: random.Random, ids: Sequence[int], exponent: float) -> None:
        self._rng = rng
        self._ids = list(ids)
        rng.shuffle(self._ids)
        weights = [1.0 / (rank**exponent) for rank in range(1, len(self._ids) + 1)]
        self._cumulative = list(itertools.accumulate(weights))

    def pick(self) -> int:
        # bisect on the cumulative weights: the same draw as rng.choices, without its overhead.
        point = self._rng.random() * self._cumulative[-1]
        return self._ids[bisect.bisect_right(self._cumulative, point)]

    def pick_distinct(self, count: int) -> list[int]:
        count = min(count, len(self._ids))
        chosen: dict[int, None] = {}
        while len(chosen) < count:
            chosen[self.pick()] = None
        return list(chosen)


def seed_database(
    bind: Engine | Connection,
    *,
    categories: int = SeedCounts.categories,
    products: int = SeedCounts.products,
    customers: int = SeedCounts.customers,
    orders: int = SeedCounts.orders,
    reviews: int = SeedCounts.reviews,
    seed: int = 42,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Insert demo data and return how many rows went into each table.

    With an ``Engine`` everything is committed in one transaction; with a ``Connection``
    the caller owns the transaction. ``progress`` is called with the number of
    categories/products/customers/orders/reviews just written (see ``progress_total``).
    """
    if categories < 1 and (products or orders):
        raise ValueError("products need at least one category")
    if (products < 1 or customers < 1) and orders:
        raise ValueError("orders need at least one product and one customer")
    if products < 1 and reviews:
        raise ValueError("reviews need at least one product")
    counts = SeedCounts(categories, products, customers, orders, reviews)
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            return _Seeder(conn, counts, seed, now or utcnow(), progress).run()
    return _Seeder(bind, counts, seed, now or utcnow(), progress).run()


def progress_total(counts: SeedCounts) -> int:
    return counts.categories + counts.products + counts.customers + counts.orders + counts.reviews


class _Seeder:
    def __init__(
        self,
        conn: Connection,
        counts: SeedCounts,
        seed: int,
        now: datetime,
        progress: Progress | None,
    ) -> None:
        self.conn = conn
        self.counts = counts
        self.rng = random.Random(seed)
        # Naive UTC, as stored; skips the per-value time-zone conversion on 400k rows.
        self.now = now.astimezone(UTC).replace(tzinfo=None)
        self.progress = progress or (lambda _n: None)
        self.written: dict[str, int] = {}

    def run(self) -> dict[str, int]:
        category_ids = self._categories()
        prices = self._products(category_ids)
        product_ids = list(prices)
        # One popularity ranking for sales and reviews: reviews pile up on best sellers.
        popularity = WeightedPicker(self.rng, product_ids, exponent=1.1)
        customer_ids = self._customers_and_orders(popularity, prices)
        self._reviews(popularity, customer_ids)
        if self.conn.dialect.name == "postgresql":
            self._reset_sequences()
        return self.written

    # -- helpers -------------------------------------------------------------------------

    def _next_ids(self, table: Table, count: int) -> range:
        current = self.conn.execute(select(func.max(table.c.id))).scalar() or 0
        return range(current + 1, current + 1 + count)

    def _insert(self, table: Table, rows: list[Row]) -> None:
        for start in range(0, len(rows), BATCH_SIZE):
            self.conn.execute(table.insert(), rows[start : start + BATCH_SIZE])
        self.written[table.name] = self.written.get(table.name, 0) + len(rows)

    def _moment_in_history(self) -> datetime:
        return self.now - HISTORY * self.rng.random()

    # -- tables --------------------------------------------------------------------------

    def _categories(self) -> list[int]:
        table = Category.__table__
        taken = set(self.conn.execute(select(table.c.name)).scalars())
        rows: list[Row] = []
        for category_id in self._next_ids(table, self.counts.categories):
            base = CATEGORY_NAMES[(category_id - 1) % len(CATEGORY_NAMES)]
            # Seeding an already seeded database must not trip the unique name.
            name = base if base not in taken else f"{base} {category_id}"
            taken.add(name)
            rows.append({"id": category_id, "name": name})
        self._insert(table, rows)
        self.progress(len(rows))
        return [row["id"] for row in rows]

    def _products(self, category_ids: list[int]) -> dict[int, int]:
        """Products and their stock rows; returns product id -> price in cents."""
        rng = self.rng
        rows: list[Row] = []
        stock_rows: list[Row] = []
        for product_id in self._next_ids(Product.__table__, self.counts.products):
            category_id = rng.choice(category_ids)
            # Log-normal prices around $20, ending in .99 like a shop's would.
            price_cents = max(1, round(rng.lognormvariate(3.0, 0.9))) * 100 - 1
            created = self.now - HISTORY - timedelta(days=rng.uniform(1, 60))
            rows.append(
                {
                    "id": product_id,
                    "sku": f"SEED-{product_id:06d}",
                    "name": f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}",
                    "description": "",
                    "price_cents": price_cents,
                    "category_id": category_id,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            stock_rows.append(
                {"product_id": product_id, "quantity": self._stock_level(), "updated_at": created}
            )
        self._insert(Product.__table__, rows)
        self._insert(Stock.__table__, stock_rows)
        self.progress(len(rows))
        return {row["id"]: row["price_cents"] for row in rows}

    def _stock_level(self) -> int:
        roll = self.rng.random()
        if roll < 0.08:
            return 0  # sold out
        if roll < 0.25:
            return self.rng.randint(1, 10)  # running low
        return self.rng.randint(11, 500)

    def _customers_and_orders(
        self, popularity: WeightedPicker, prices: dict[int, int]
    ) -> list[int]:
        rng = self.rng
        customer_ids = list(self._next_ids(Customer.__table__, self.counts.customers))
        # Order times and buyers are drawn first so each customer can sign up before
        # their first order; ids then increase with time, as in a real shop.
        times = sorted(self._moment_in_history() for _ in range(self.counts.orders))
        # A gentler skew than products: many one-off buyers, some loyal regulars.
        buyers = WeightedPicker(rng, customer_ids, exponent=0.5)
        buyer_ids = [buyers.pick() for _ in times]
        first_order: dict[int, datetime] = {}
        for at, customer_id in zip(times, buyer_ids, strict=True):
            first_order.setdefault(customer_id, at)
        self._customers(customer_ids, first_order)

        order_ids = self._next_ids(Order.__table__, len(times))
        line_ids = itertools.count(self._next_ids(OrderLine.__table__, 1).start)
        for chunk in _chunks(range(len(times)), BATCH_SIZE):
            order_rows: list[Row] = []
            line_rows: list[Row] = []
            for index in chunk:
                order_id = order_ids[index]
                order_rows.append(self._order(order_id, buyer_ids[index], times[index]))
                line_count = rng.choices(LINES_PER_ORDER, cum_weights=LINES_WEIGHTS)[0]
                for product_id in popularity.pick_distinct(line_count):
                    line_rows.append(
                        {
                            "id": next(line_ids),
                            "order_id": order_id,
                            "product_id": product_id,
                            "quantity": rng.choices(QUANTITIES, cum_weights=QUANTITY_WEIGHTS)[0],
                            "unit_price_cents": prices[product_id],
                        }
                    )
            self._insert(Order.__table__, order_rows)
            self._insert(OrderLine.__table__, line_rows)
            self.progress(len(order_rows))
        self.written.setdefault("orders", 0)
        self.written.setdefault("order_lines", 0)
        return customer_ids

    def _customers(self, customer_ids: list[int], first_order: dict[int, datetime]) -> None:
        rng = self.rng
        rows: list[Row] = []
        for customer_id in customer_ids:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            if customer_id in first_order:
                signed_up = first_order[customer_id] - timedelta(minutes=rng.uniform(5, 90 * 1440))
            else:
                signed_up = self._moment_in_history()
            rows.append(
                {
                    "id": customer_id,
                    # The id keeps emails unique; the domain keeps them apart from test data.
                    "email": f"{first}.{last}.{customer_id}@seed.example".lower(),
                    "name": f"{first} {last}",
                    "created_at": signed_up,
                }
            )
        self._insert(Customer.__table__, rows)
        self.progress(len(rows))

    def _order(self, order_id: int, customer_id: int, created: datetime) -> Row:
        rng = self.rng
        age = self.now - created
        roll = rng.random()
        # Recent orders are still in flight; older ones have mostly shipped.
        if age < timedelta(days=3):
            status = _pick_status(roll, placed=0.35, paid=0.35, shipped=0.25)
        else:
            status = _pick_status(roll, placed=0.02, paid=0.04, shipped=0.87)
        paid_at = shipped_at = cancelled_at = None
        if status in (OrderStatus.PAID, OrderStatus.SHIPPED) or (
            status is OrderStatus.CANCELLED and rng.random() < 0.4
        ):
            paid_at = min(self.now, created + timedelta(minutes=rng.uniform(1, 120)))
        if status is OrderStatus.SHIPPED:
            assert paid_at is not None
            shipped_at = min(self.now, paid_at + timedelta(hours=rng.uniform(2, 72)))
        if status is OrderStatus.CANCELLED:
            cancelled_at = min(self.now, (paid_at or created) + timedelta(hours=rng.uniform(1, 48)))
        return {
            "id": order_id,
            "customer_id": customer_id,
            "status": status.value,
            "created_at": created,
            "paid_at": paid_at,
            "shipped_at": shipped_at,
            "cancelled_at": cancelled_at,
        }

    def _reviews(self, popularity: WeightedPicker, customer_ids: list[int]) -> None:
        rng = self.rng
        rows: list[Row] = []
        for review_id in self._next_ids(Review.__table__, self.counts.reviews):
            anonymous = not customer_ids or rng.random() < 0.1
            rows.append(
                {
                    "id": review_id,
                    "product_id": popularity.pick(),
                    "customer_id": None if anonymous else rng.choice(customer_ids),
                    "rating": rng.choices(RATINGS, cum_weights=RATING_WEIGHTS)[0],
                    "body": rng.choice(REVIEW_BODIES),
                    "created_at": self._moment_in_history(),
                }
            )
        self._insert(Review.__table__, rows)
        self.progress(len(rows))

    def _reset_sequences(self) -> None:
        """Move each id sequence past the ids inserted here, so ORM inserts don't collide."""
        for model in SEEDED_MODELS:
            name = model.__tablename__
            # stock is keyed by product_id: no sequence of its own.
            if model is not Stock and self.written.get(name):
                self.conn.execute(
                    text(
                        "SELECT setval(pg_get_serial_sequence(:table, 'id'), "
                        f"(SELECT MAX(id) FROM {name}))"
                    ),
                    {"table": name},
                )


def _pick_status(roll: float, *, placed: float, paid: float, shipped: float) -> OrderStatus:
    """The rest of the probability (1 - placed - paid - shipped) is cancelled."""
    if roll < placed:
        return OrderStatus.PLACED
    if roll < placed + paid:
        return OrderStatus.PAID
    if roll < placed + paid + shipped:
        return OrderStatus.SHIPPED
    return OrderStatus.CANCELLED


def _chunks(items: range, size: int) -> Iterator[range]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def parse_now(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    """``--now``: an ISO 8601 date-time (``Z`` or an offset; none means UTC)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date-time (e.g. 2026-03-01T12:00:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command("seed")
@click.option("--categories", default=SeedCounts.categories, show_default=True, type=int)
@click.option("--products", default=SeedCounts.products, show_default=True, type=int)
@click.option("--customers", default=SeedCounts.customers, show_default=True, type=int)
@click.option("--orders", default=SeedCounts.orders, show_default=True, type=int)
@click.option("--reviews", default=SeedCounts.reviews, show_default=True, type=int)
@click.option("--seed", "random_seed", default=42, show_default=True, help="Random seed.")
@click.option(
    "--now",
    callback=parse_now,
    help="Where the year of history ends, as an ISO 8601 date-time (e.g. "
    "2026-03-01T12:00:00Z; no offset means UTC): the same --seed and --now give the same "
    "rows, timestamps included.",
    show_default="the current time",
)
@click.option("--if-empty", is_flag=True, help="Do nothing when products already exist.")
@with_appcontext
def seed_command(
    categories: int,
    products: int,
    customers: int,
    orders: int,
    reviews: int,
    random_seed: int,
    now: datetime | None,
    if_empty: bool,
) -> None:
    """Fill the database with demo data: a year of a shop's life ending at --now (by
    default the current time, so only the timestamps differ between two runs with the
    same --seed)."""
    for option, value in (
        ("--categories", categories),
        ("--products", products),
        ("--customers", customers),
        ("--orders", orders),
        ("--reviews", reviews),
    ):
        if value < 0:
            raise click.BadParameter("must not be negative", param_hint=option)
    engine = db.engine
    # Checked before writing anything, so a missing table never leaves a half-done seed.
    needed = {model.__tablename__ for model in SEEDED_MODELS}
    missing = needed - set(inspect(engine).get_table_names())
    if missing:
        raise click.ClickException(
            f"tables missing ({', '.join(sorted(missing))}): run `alembic upgrade head` first"
        )
    if if_empty:
        with engine.connect() as conn:
            existing = conn.execute(select(func.count()).select_from(Product.__table__)).scalar()
        if existing:
            click.echo(f"Database already has {existing} products; not seeding.")
            return
    counts = SeedCounts(categories, products, customers, orders, reviews)
    try:
        with click.progressbar(length=progress_total(counts), label="Seeding") as bar:
            written = seed_database(
                engine,
                categories=categories,
                products=products,
                customers=customers,
                orders=orders,
                reviews=reviews,
                seed=random_seed,
                now=now,
                progress=bar.update,
            )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(", ".join(f"{count} {table}" for table, count in written.items()))

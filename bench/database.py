"""A fresh database per backend: created, migrated, seeded, backfilled, and thrown away.

PostgreSQL gets a uniquely named database made through the admin URL and dropped at the
end (``WITH (FORCE)``, so a crashed server connection cannot keep it alive), the way
``tests/databases.py`` does it; SQLite gets a file in a temporary folder.

The write records' legacy side runs on a copy of it without change capture
(:func:`copy_without_capture`): the shop before the migration.
"""

from __future__ import annotations

import os
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, func, inspect, select, text, update
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def postgres_admin_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def postgres_version(admin_url: str) -> str | None:
    """The server's version, or None when it cannot be reached (then it is skipped)."""
    engine = create_engine(admin_url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar_one())
    except Exception:  # any failure to connect means "not available here"
        return None
    finally:
        engine.dispose()


@contextmanager
def fresh_database(backend: str, workdir: str) -> Iterator[str]:
    """Yield the URL of an empty database on ``backend``; remove it afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="shop-bench-", dir=workdir) as tmp:
            yield f"sqlite:///{tmp}/shop.db"
        return
    admin_url = postgres_admin_url()
    name = f"shop_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


#: PostgreSQL refuses CREATE DATABASE ... TEMPLATE while anything is connected to the
#: template (autovacuum may be, after a bulk load): tries, a second apart.
TEMPLATE_TRIES = 30


@contextmanager
def copy_without_capture(backend: str, url: str, workdir: str) -> Iterator[str]:
    """Yield the URL of a copy of the database at ``url`` with the change capture of every
    shop read model removed (its triggers and its ``cqrs_captures`` rows); remove the copy
    afterwards. Nothing may be connected to ``url`` while the copy is made."""
    if backend == "sqlite":
        source = make_url(url).database
        assert source, url
        with tempfile.TemporaryDirectory(prefix="shop-bench-plain-", dir=workdir) as tmp:
            target = f"{tmp}/shop.db"
            # The backup API copies a consistent snapshot, whatever sits in the WAL.
            with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
                src.backup(dst)
            copy = f"sqlite:///{target}"
            _remove_capture(copy)
            yield copy
        return
    admin = create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    original = make_url(url).database
    name = f"{original}_plain"
    try:
        _create_from_template(admin, name, str(original))
        copy = make_url(url).set(database=name).render_as_string(hide_password=False)
        _remove_capture(copy)
        yield copy
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _create_from_template(admin: Engine, name: str, template: str) -> None:
    for attempt in range(TEMPLATE_TRIES):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
            return
        except Exception as error:  # "source database ... is being accessed by other users"
            if "being accessed" not in str(error) or attempt == TEMPLATE_TRIES - 1:
                raise
            time.sleep(1.0)


def _remove_capture(url: str) -> None:
    from cqrs_layer.core.tables import changes
    from cqrs_layer.schema import remove_capture
    from legacy_app.cqrs.read_models import READ_MODELS

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            remove_capture(conn, *READ_MODELS)
            conn.execute(changes.delete())
    finally:
        engine.dispose()


@dataclass(frozen=True)
class SchemaReport:
    seconds: float
    method: str  # how the schema was made, for the record
    #: Tables no migration made (yet), created from the metadata instead.
    created_outside_migrations: tuple[str, ...] = ()
    #: "table.column" the models declare but the migrated schema lacks.
    missing_columns: tuple[str, ...] = ()


def _all_metadata() -> list[MetaData]:
    from legacy_app.cqrs.schema import cqrs_metadata
    from legacy_app.extensions import db

    return [db.metadata, *cqrs_metadata()]


def prepare_schema(url: str) -> SchemaReport:
    """Migrate, and make up for what the migrations do not cover yet (said in the report).

    The migrations are the real path. While the toolkit's and the read models' revisions
    are still being written, the tables they lack are created from the metadata; and if
    the migrated schema lacks columns the models declare (a model changed, its revision
    not written yet), the whole schema is built from the metadata instead, so the
    benchmark measures the code as it is rather than failing on a half-migrated database.
    """
    started = time.perf_counter()
    try:
        from legacy_app import migrate
    except ImportError:
        migrate = None  # type: ignore[assignment]
    engine = create_engine(url)
    try:
        if migrate is None:
            _create_all(engine)
            return SchemaReport(time.perf_counter() - started, "create_all (no migrations)")
        migrate.upgrade_database(url)
        before = set(inspect(engine).get_table_names())
        _create_all(engine)  # checkfirst: leaves migrated tables alone
        created = tuple(sorted(set(inspect(engine).get_table_names()) - before))
        missing = _missing_columns(engine)
        if missing:
            _drop_everything(engine)
            _create_all(engine)
            method = "create_all (the migrations lack columns the models declare)"
            return SchemaReport(time.perf_counter() - started, method, created, missing)
        method = "alembic" if not created else "alembic + create_all for unmigrated tables"
        return SchemaReport(time.perf_counter() - started, method, created)
    finally:
        engine.dispose()


def _create_all(engine: Engine) -> None:
    for metadata in _all_metadata():
        metadata.create_all(engine)


def _missing_columns(engine: Engine) -> tuple[str, ...]:
    inspector = inspect(engine)
    missing = []
    for metadata in _all_metadata():
        for table in metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in present]
    return tuple(missing)


def _drop_everything(engine: Engine) -> None:
    existing = MetaData()
    existing.reflect(engine)
    existing.drop_all(engine)


@dataclass(frozen=True)
class SeedSize:
    """Shop size for a number of orders: 100k orders -> 1k products, 10k customers, 30k
    reviews (about 300k order lines)."""

    orders: int
    categories: int = 12

    @property
    def products(self) -> int:
        return min(1_000, max(50, self.orders // 100))

    @property
    def customers(self) -> int:
        return max(50, self.orders // 10)

    @property
    def reviews(self) -> int:
        return max(30, self.orders * 3 // 10)

    def as_kwargs(self) -> dict[str, int]:
        return {
            "categories": self.categories,
            "products": self.products,
            "customers": self.customers,
            "orders": self.orders,
            "reviews": self.reviews,
        }


def seed(url: str, size: SeedSize) -> tuple[float, dict[str, int]]:
    from legacy_app.seed import seed_database

    engine = create_engine(url)
    try:
        started = time.perf_counter()
        written = seed_database(
            engine,
            categories=size.categories,
            products=size.products,
            customers=size.customers,
            orders=size.orders,
            reviews=size.reviews,
        )
        seconds = time.perf_counter() - started
        _analyze(engine)
    finally:
        engine.dispose()
    return seconds, written


#: Products the write records order from, and the units each gets before any order.
ORDER_POOL = 200
POOL_STOCK = 1_000_000
#: The low-stock report's default threshold: the pool is chosen above it, so stocking it
#: leaves that report's answers as the seed made them.
LOW_STOCK = 10


def stock_order_pool(url: str, rng: random.Random) -> list[int]:
    """Choose the products the write records order from and give each ``POOL_STOCK``
    units, in one UPDATE of the seeded shop (before the backfill, which covers it): no
    order runs out of stock, and no restock runs during the measurements."""
    from legacy_app.models import Stock

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            candidates = list(
                conn.execute(
                    select(Stock.product_id)
                    .where(Stock.quantity > LOW_STOCK)
                    .order_by(Stock.product_id)
                ).scalars()
            )
            pool = sorted(rng.sample(candidates, min(ORDER_POOL, len(candidates))))
            conn.execute(
                update(Stock)
                .where(Stock.product_id.in_(pool))
                .values(quantity=Stock.quantity + POOL_STOCK)
            )
    finally:
        engine.dispose()
    return pool


def backfill(url: str) -> tuple[float, list[Any]]:
    """Every shop read model through the toolkit's backfill; total seconds and per model."""
    from cqrs_layer.read.backfill import backfill_all
    from legacy_app.cqrs.read_models import READ_MODELS

    engine = create_engine(url)
    try:
        started = time.perf_counter()
        results = backfill_all(engine, READ_MODELS)
        seconds = time.perf_counter() - started
        _analyze(engine)
    finally:
        engine.dispose()
    return seconds, results


def _analyze(engine: Engine) -> None:
    # PostgreSQL's autovacuum analyzes a freshly loaded table within a minute; do it now so
    # neither path is measured against empty-table estimates. SQLite never analyzes by
    # itself, so it is left as a deployed shop would have it.
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()


@dataclass(frozen=True)
class DataFacts:
    """What the request generators draw from: ids that exist, products in stock."""

    product_ids: list[int]
    customer_ids: list[int]
    in_stock_product_ids: list[int]
    low_stock_count: int  # products with stock <= 10 (the low-stock report's default)
    order_pool: list[int]  # products the writes order from, stocked for any run


def data_facts(url: str, order_pool: list[int]) -> DataFacts:
    from legacy_app.models import Customer, Product, Stock

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            products = list(conn.execute(select(Product.id).order_by(Product.id)).scalars())
            customers = list(conn.execute(select(Customer.id).order_by(Customer.id)).scalars())
            in_stock = list(
                conn.execute(
                    select(Stock.product_id).where(Stock.quantity > 0).order_by(Stock.product_id)
                ).scalars()
            )
            low = conn.execute(
                select(func.count()).select_from(Stock).where(Stock.quantity <= 10)
            ).scalar_one()
    finally:
        engine.dispose()
    return DataFacts(products, customers, in_stock, int(low), order_pool)

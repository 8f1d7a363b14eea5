"""Throwaway shops: one seeded template per backend, and a fresh copy of it per scenario.

A scenario leaves its database in any state (killed workers, a renamed table, thousands of
fuzzed rows), so each one gets its own copy: PostgreSQL clones the template database
(``CREATE DATABASE ... TEMPLATE``, a file copy on the server), SQLite copies the file with
the backup API. Every database this module creates is named ``shop_stress_<run>_...`` and
dropped when its block ends (``WITH (FORCE)``: a killed server's connection cannot keep it
alive); no other database on the server is touched.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, Table, create_engine, func, inspect, select, text, update
from sqlalchemy.engine import make_url

from .sizes import Sizes

BACKENDS = ("sqlite", "postgresql")
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
#: Stock of the products the long-running writers buy from: they never run out.
BULK_STOCK = 1_000_000
BULK_PRODUCTS = 8


def postgres_admin_url() -> str:
    """Where throwaway databases are made: ``TEST_POSTGRES_URL`` (as for the tests), else
    the local server with trust auth."""
    return os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def postgres_version(admin_url: str) -> str | None:
    """The server's version, or None when it cannot be reached."""
    engine = create_engine(admin_url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar_one())
    except Exception:  # any failure to connect means "not available here"
        return None
    finally:
        engine.dispose()


@dataclass(frozen=True)
class ShopFacts:
    """What the clients draw from: ids that exist in every copy of the template."""

    customer_ids: tuple[int, ...]
    product_ids: tuple[int, ...]
    #: Products with BULK_STOCK units: buying them never fails for want of stock.
    bulk_product_ids: tuple[int, ...]
    category_id: int
    #: The highest order id the seed made: orders above it were made by a scenario.
    last_seeded_order_id: int


@dataclass(frozen=True)
class Template:
    backend: str
    url: str
    facts: ShopFacts
    #: Tables no migration made (the migrations lagging the models), made from metadata.
    created_outside_migrations: tuple[str, ...]
    _workdir: Path
    _copies: Iterator[int]

    @contextmanager
    def copy(self, label: str) -> Iterator[str]:
        """A fresh copy of the seeded shop for one scenario, dropped afterwards."""
        number = next(self._copies)
        if self.backend == "sqlite":
            path = self._workdir / f"{label}-{number}.db"
            _copy_sqlite(_sqlite_path(self.url), path)
            try:
                yield f"sqlite:///{path}"
            finally:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        template_name = str(make_url(self.url).database)
        name = f"{template_name}_{label.replace('-', '_')}_{number}"
        _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
        try:
            yield make_url(self.url).set(database=name).render_as_string(hide_password=False)
        finally:
            _drop_postgres_database(name)


@contextmanager
def shop_template(backend: str, sizes: Sizes) -> Iterator[Template]:
    """Create, migrate, seed and backfill a small shop on ``backend``; drop it afterwards."""
    with tempfile.TemporaryDirectory(prefix="shop-stress-") as workdir:
        if backend == "sqlite":
            yield _prepared(backend, f"sqlite:///{workdir}/template.db", sizes, Path(workdir))
            return
        name = f"shop_stress_{uuid.uuid4().hex[:10]}"
        _admin_execute(f'CREATE DATABASE "{name}"')
        try:
            url = make_url(postgres_admin_url()).set(database=name)
            yield _prepared(
                backend, url.render_as_string(hide_password=False), sizes, Path(workdir)
            )
        finally:
            _drop_postgres_database(name)


def _prepared(backend: str, url: str, sizes: Sizes, workdir: Path) -> Template:
    created = _migrate(url)
    engine = create_engine(url)
    try:
        _seed(engine, sizes)
        facts = _facts(engine)
        _backfill(engine)
    finally:
        engine.dispose()  # a PostgreSQL template must have no session open when cloned
    return Template(backend, url, facts, created, workdir, itertools.count(1))


def _migrate(url: str) -> tuple[str, ...]:
    """alembic upgrade head (the real path), then any table the migrations lack."""
    from legacy_app.cqrs.schema import cqrs_metadata
    from legacy_app.extensions import db
    from legacy_app.migrate import upgrade_database

    upgrade_database(url)
    engine = create_engine(url)
    try:
        before = set(inspect(engine).get_table_names())
        for metadata in (db.metadata, *cqrs_metadata()):
            metadata.create_all(engine)  # checkfirst: migrated tables are left alone
        return tuple(sorted(set(inspect(engine).get_table_names()) - before))
    finally:
        engine.dispose()


def _seed(engine: Engine, sizes: Sizes) -> None:
    from legacy_app.models import Stock
    from legacy_app.seed import seed_database

    seed_database(
        engine,
        categories=4,
        products=sizes.products,
        customers=sizes.customers,
        orders=sizes.orders,
        reviews=sizes.products * 2,
    )
    # Before the backfill, so the read models start out agreeing with the stock.
    with engine.begin() as conn:
        conn.execute(
            update(Stock).where(Stock.product_id <= BULK_PRODUCTS).values(quantity=BULK_STOCK)
        )


def _backfill(engine: Engine) -> None:
    from cqrs_layer.read.backfill import backfill_all
    from legacy_app.cqrs.read_models import READ_MODELS

    backfill_all(engine, READ_MODELS)


def _facts(engine: Engine) -> ShopFacts:
    from legacy_app.models import Category, Customer, Order, Product

    with engine.connect() as conn:
        customers = tuple(conn.execute(select(Customer.id).order_by(Customer.id)).scalars())
        products = tuple(conn.execute(select(Product.id).order_by(Product.id)).scalars())
        category = conn.execute(select(func.min(Category.id))).scalar_one()
        last_order = conn.execute(select(func.max(Order.id))).scalar_one()
    bulk = tuple(p for p in products if p <= BULK_PRODUCTS)
    return ShopFacts(customers, products, bulk, int(category), int(last_order or 0))


def _admin_execute(statement: str) -> None:
    engine = create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def _drop_postgres_database(name: str) -> None:
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _sqlite_path(url: str) -> Path:
    return Path(str(make_url(url).database))


def _copy_sqlite(source: Path, target: Path) -> None:
    # The backup API copies a consistent database (WAL content included), unlike a file copy.
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


@contextmanager
def connected(url: str) -> Iterator[Engine]:
    """An engine on a scenario's database, for checks the HTTP API cannot make."""
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def toolkit_table(name: str) -> Table:
    """One of the toolkit's tables (``cqrs_outbox``, ``cqrs_flag_audit``...), through its
    public schema module."""
    from cqrs_layer.schema import metadata

    return metadata.tables[name]


def missing_orders(url: str, order_ids: list[int]) -> list[int]:
    """Of ``order_ids`` (acknowledged to a client), the ones the database does not hold."""
    from legacy_app.models import Order

    with connected(url) as engine, engine.connect() as conn:
        present = set(conn.execute(select(Order.id).where(Order.id.in_(order_ids))).scalars())
    return [order_id for order_id in order_ids if order_id not in present]

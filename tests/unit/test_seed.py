"""The demo data seeder: deterministic, consistent, appendable, and safe for later inserts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from legacy_app.extensions import db
from legacy_app.models import (
    Category,
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    Review,
    Stock,
)
from legacy_app.seed import SeedCounts, progress_total, seed_database
from legacy_app.types import UTCDateTime

NOW = datetime(2026, 6, 15, 12, 30, tzinfo=UTC)
SMALL = {"categories": 3, "products": 40, "customers": 25, "orders": 120, "reviews": 30}
SEEDED_TABLES = [
    model.__table__ for model in (Category, Product, Stock, Customer, Order, OrderLine, Review)
]


def dump(*, with_timestamps=True):
    """Every seeded row, by primary key; optionally without the time columns."""
    tables = {}
    with db.engine.connect() as conn:
        for table in SEEDED_TABLES:
            columns = [
                c for c in table.columns if with_timestamps or not isinstance(c.type, UTCDateTime)
            ]
            stmt = select(*columns).order_by(*table.primary_key.columns)
            tables[table.name] = [tuple(row) for row in conn.execute(stmt)]
    return tables


def delete_everything():
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_counts_returned_match_the_rows_written(app):
    written = seed_database(db.engine, **SMALL, seed=1, now=NOW)
    line_count = count(OrderLine)
    assert written == {
        "categories": 3,
        "products": 40,
        "stock": 40,
        "customers": 25,
        "orders": 120,
        "order_lines": line_count,
        "reviews": 30,
    }
    assert [count(m) for m in (Category, Product, Stock, Customer, Order, Review)] == [
        3,
        40,
        40,
        25,
        120,
        30,
    ]
    # 1..6 lines an order, about 3 on average.
    assert 120 * 2.5 < line_count < 120 * 3.5


def test_same_seed_gives_the_same_rows_and_another_seed_does_not(app):
    seed_database(db.engine, **SMALL, seed=7, now=NOW)
    first = dump()
    delete_everything()
    seed_database(db.engine, **SMALL, seed=7, now=NOW)
    assert dump() == first
    delete_everything()
    seed_database(db.engine, **SMALL, seed=8, now=NOW)
    assert dump() != first


def test_first_rows_are_named_from_their_ids(app):
    seed_database(db.engine, **SMALL, seed=7, now=NOW)
    assert db.session.get(Category, 1).name == "Kitchen"
    assert [c.name for c in db.session.scalars(select(Category).order_by(Category.id))] == [
        "Kitchen",
        "Garden",
        "Books",
    ]
    assert db.session.get(Product, 1).sku == "SEED-000001"
    assert db.session.get(Customer, 1).email.endswith(".1@seed.example")


def test_progress_reports_every_entity_once(app):
    steps = []
    seed_database(db.engine, **SMALL, seed=3, now=NOW, progress=steps.append)
    assert sum(steps) == progress_total(SeedCounts(**SMALL)) == 3 + 40 + 25 + 120 + 30


def test_seeded_data_is_consistent(app):
    seed_database(
        db.engine,
        categories=5,
        products=200,
        customers=100,
        orders=1500,
        reviews=300,
        seed=11,
        now=NOW,
    )
    session = db.session
    stock = list(session.scalars(select(Stock.quantity)))
    assert min(stock) >= 0
    assert 0 in stock  # some products are sold out ...
    assert any(1 <= q <= 10 for q in stock)  # ... some are running low

    orphan_lines = session.scalar(
        select(func.count())
        .select_from(OrderLine)
        .outerjoin(Order, Order.id == OrderLine.order_id)
        .outerjoin(Product, Product.id == OrderLine.product_id)
        .where((Order.id.is_(None)) | (Product.id.is_(None)))
    )
    assert orphan_lines == 0
    mispriced = session.scalar(
        select(func.count())
        .select_from(OrderLine)
        .join(Product, Product.id == OrderLine.product_id)
        .where(OrderLine.unit_price_cents != Product.price_cents)
    )
    assert mispriced == 0

    per_order = session.execute(
        select(func.count(OrderLine.id), func.count(func.distinct(OrderLine.product_id))).group_by(
            OrderLine.order_id
        )
    ).all()
    assert len(per_order) == 1500  # every order has lines
    assert all(1 <= lines <= 6 and lines == distinct for lines, distinct in per_order)

    orders = list(session.scalars(select(Order)))
    by_status = {s.value: 0 for s in OrderStatus}
    for order in orders:
        by_status[order.status] += 1
        assert NOW - timedelta(days=365) <= order.created_at <= NOW
        if order.status in ("paid", "shipped"):
            assert order.paid_at is not None
        if order.status == "placed":
            assert order.paid_at is None
        assert (order.shipped_at is not None) == (order.status == "shipped")
        assert (order.cancelled_at is not None) == (order.status == "cancelled")
        if order.shipped_at:
            assert order.created_at <= order.paid_at <= order.shipped_at <= NOW
    ordered_before_signing_up = session.scalar(
        select(func.count())
        .select_from(Order)
        .join(Customer, Customer.id == Order.customer_id)
        .where(Customer.created_at > Order.created_at)
    )
    assert ordered_before_signing_up == 0
    # Mostly shipped or paid, with some placed and some cancelled.
    assert by_status["shipped"] > 1500 * 0.7
    assert by_status["shipped"] + by_status["paid"] > 1500 * 0.8
    assert by_status["placed"] > 0
    assert by_status["cancelled"] > 0

    ratings = list(session.scalars(select(Review.rating)))
    assert sum(r >= 4 for r in ratings) > len(ratings) * 0.6
    assert set(ratings) == {1, 2, 3, 4, 5}

    # Popular products: the best seller sells far more than the median product.
    units = sorted(
        session.scalars(select(func.sum(OrderLine.quantity)).group_by(OrderLine.product_id)),
        reverse=True,
    )
    assert units[0] > 10 * units[len(units) // 2]
    # Repeat customers: someone ordered many times.
    top_buyer = session.scalar(
        select(func.count())
        .select_from(Order)
        .group_by(Order.customer_id)
        .order_by(func.count().desc())
        .limit(1)
    )
    assert top_buyer >= 40


def test_reviews_pile_up_on_best_sellers(app):
    seed_database(
        db.engine, categories=3, products=100, customers=50, orders=1000, reviews=500, seed=5
    )
    best_seller = db.session.scalar(
        select(OrderLine.product_id)
        .group_by(OrderLine.product_id)
        .order_by(func.sum(OrderLine.quantity).desc(), OrderLine.product_id)
        .limit(1)
    )
    most_reviewed = db.session.scalar(
        select(Review.product_id)
        .group_by(Review.product_id)
        .order_by(func.count().desc(), Review.product_id)
        .limit(1)
    )
    assert most_reviewed == best_seller


def test_seeding_twice_appends_after_the_existing_ids(app):
    seed_database(db.engine, **SMALL, seed=1, now=NOW)
    lines_first = count(OrderLine)
    seed_database(db.engine, **{**SMALL, "categories": 14}, seed=1, now=NOW)
    assert count(Product) == 80
    assert count(Order) == 240
    assert count(OrderLine) == 2 * lines_first
    assert db.session.scalar(select(func.max(Order.id))) == 240
    # Category names cycle through a list of 12; names already taken get their id.
    names = list(db.session.scalars(select(Category.name).order_by(Category.id)))
    assert names[:4] == ["Kitchen", "Garden", "Books", "Toys"]
    assert names[11:] == [
        "Tools",
        "Kitchen 13",
        "Garden 14",
        "Books 15",
        "Toys 16",
        "Electronics 17",
    ]


def test_orm_inserts_after_seeding_get_fresh_ids(app, db_session):
    """On PostgreSQL the id sequences must be moved past the explicit ids."""
    seed_database(db.engine, **SMALL, seed=2, now=NOW)
    category = Category(name="Fresh")
    customer = Customer(email="fresh@example.com", name="Fresh")
    product = Product(sku="FRESH-1", name="Fresh", price_cents=100, category=category)
    product.stock = Stock(quantity=5)
    order = Order(customer=customer, status="placed")
    order.lines.append(OrderLine(product=product, quantity=1, unit_price_cents=100))
    review = Review(product=product, customer_id=None, rating=5)
    db_session.add_all([order, review])
    db_session.commit()
    assert (category.id, product.id, customer.id, order.id, review.id) == (4, 41, 26, 121, 31)
    assert order.lines[0].id == count(OrderLine)


def seed_args(seed):
    return [
        "seed",
        "--categories=2",
        "--products=15",
        "--customers=10",
        "--orders=60",
        "--reviews=12",
        f"--seed={seed}",
    ]


def test_cli_seeds_deterministically(runner):
    result = runner.invoke(args=seed_args(4))
    assert result.exit_code == 0, result.output
    assert "2 categories, 15 products, 15 stock, 10 customers, 60 orders," in result.output
    first = dump(with_timestamps=False)
    assert len(first["orders"]) == 60
    delete_everything()
    assert runner.invoke(args=seed_args(4)).exit_code == 0
    # The CLI anchors the year of history at "now", so only timestamps may differ.
    assert dump(with_timestamps=False) == first


def test_cli_with_now_seeds_the_same_rows_timestamps_included(runner):
    """--now anchors the year of history at a fixed moment instead of the wall clock."""
    now = "--now=2026-03-01T12:00:00+00:00"
    assert runner.invoke(args=[*seed_args(4), now]).exit_code == 0
    first = dump()
    newest = db.session.scalar(select(func.max(Order.created_at)))
    assert datetime(2026, 2, 1, tzinfo=UTC) < newest <= datetime(2026, 3, 1, 12, tzinfo=UTC)
    delete_everything()
    assert runner.invoke(args=[*seed_args(4), now]).exit_code == 0
    assert dump() == first


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01"])
def test_cli_refuses_a_now_that_is_not_an_iso_date_time(runner, value):
    result = runner.invoke(args=["seed", f"--now={value}"])
    assert result.exit_code == 2
    assert "--now" in result.output and "ISO 8601" in result.output
    assert count(Order) == 0


def test_cli_help_says_the_data_depends_on_the_clock_unless_now_is_given(runner):
    help_text = " ".join(runner.invoke(args=["seed", "--help"]).output.split())
    assert "--now" in help_text and "the current time" in help_text


def test_cli_if_empty_does_nothing_on_a_seeded_database(runner):
    assert runner.invoke(args=[*seed_args(1), "--if-empty"]).exit_code == 0
    before = dump()
    assert len(before["products"]) == 15

    result = runner.invoke(args=[*seed_args(2), "--if-empty"])
    assert result.exit_code == 0
    assert "already has 15 products" in result.output
    assert dump() == before


def test_cli_refuses_negative_counts(runner):
    result = runner.invoke(args=["seed", "--orders=-1"])
    assert result.exit_code == 2
    assert "--orders" in result.output
    assert count(Order) == 0


def test_cli_refuses_orders_without_products(runner):
    result = runner.invoke(args=["seed", "--products=0", "--orders=5", "--reviews=0"])
    assert result.exit_code == 2
    assert "orders need at least one product" in result.output
    assert count(Category) == 0  # nothing was written

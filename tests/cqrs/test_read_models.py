"""Each read model's backfill from the legacy tables equals its source, with known rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from cqrs_layer.read.backfill import backfill, backfill_all
from cqrs_layer.read.verify import verify
from cqrs_layer.testing import read_model_drift
from legacy_app.cqrs import read_models as rm
from legacy_app.extensions import db
from legacy_app.models import OrderStatus, Stock

from ..factories import (
    CategoryFactory,
    CustomerFactory,
    OrderFactory,
    OrderLineFactory,
    ProductFactory,
    ReviewFactory,
)

PAID, CANCELLED = OrderStatus.PAID.value, OrderStatus.CANCELLED.value
T0 = datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)  # last instant of a day
NAIVE_T0 = T0.replace(tzinfo=None)


def place(customer, at, status, *lines):
    order = OrderFactory(customer=customer, created_at=at, status=status)
    for product, quantity in lines:
        OrderLineFactory(order=order, product=product, quantity=quantity)
    return order


@pytest.fixture
def shop(read_db):
    kitchen = CategoryFactory(name="Kitchen")
    garden = CategoryFactory(name="Garden")
    mug = ProductFactory(sku="MUG", name="Mug", price_cents=1000, category=kitchen)
    rake = ProductFactory(sku="RAKE", name="Rake", price_cents=250, category=garden)
    spoon = ProductFactory(sku="SPOON", name="Spoon", price_cents=100, category=kitchen)
    ann = CustomerFactory(name="Ann")
    bob = CustomerFactory(name="Bob")
    CustomerFactory(name="Cy")  # never ordered
    place(ann, T0, PAID, (mug, 2), (rake, 1))
    place(ann, T0 + timedelta(microseconds=1), "shipped", (rake, 3))  # the next day
    place(ann, T0 + timedelta(days=5), CANCELLED, (mug, 7))
    place(bob, T0 - timedelta(days=2), "placed", (mug, 1), (spoon, 4))
    OrderFactory(customer=bob, created_at=T0 + timedelta(days=9), status="placed")  # no lines
    ReviewFactory(product=mug, rating=5)
    ReviewFactory(product=mug, rating=4)
    ReviewFactory(product=rake, rating=2)
    db.session.flush()
    db.session.delete(db.session.get(Stock, spoon.id))  # a product without a stock row
    db.session.commit()
    return {"mug": mug.id, "rake": rake.id, "spoon": spoon.id, "ann": ann.id, "bob": bob.id}


def rows(table, *order_by):
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(table).order_by(*order_by))]


@pytest.mark.parametrize("model", rm.READ_MODELS, ids=lambda m: m.name)
def test_backfill_equals_source(shop, model):
    result = backfill(db.engine, model)
    report = verify(db.engine, model)
    assert report.ok, report.to_dict()
    assert result.rows == report.source_rows == report.table_rows > 0


def test_verify_sees_drift(shop):
    backfill(db.engine, rm.catalog)
    with db.engine.begin() as conn:
        conn.execute(update(rm.catalog_view).values(units_sold=rm.catalog_view.c.units_sold + 1))
    report = verify(db.engine, rm.catalog)
    assert not report.ok
    assert len(report.different) == 3


def test_catalog_rows(shop):
    backfill(db.engine, rm.catalog)
    c = rm.catalog_view.c
    with db.engine.connect() as conn:
        got = conn.execute(
            select(
                c.sku,
                c.category_name,
                c.stock,
                c.rating_sum,
                c.rating_count,
                c.rating_sort_key,
                c.units_sold,
            ).order_by(c.product_id)
        ).all()
    assert [tuple(r) for r in got] == [
        ("MUG", "Kitchen", 10, 9, 2, 4.5, 3),  # the cancelled 7 do not count
        ("RAKE", "Garden", 10, 2, 1, 2.0, 4),
        ("SPOON", "Kitchen", None, 0, 0, -1.0, 4),  # no stock row, unrated: sorts last
    ]


def test_customer_models_rows(shop):
    backfill_all(db.engine, rm.READ_MODELS)
    ann, bob = shop["ann"], shop["bob"]
    assert rows(rm.customer_orders_view, "order_id") == [
        (1, ann, "paid", NAIVE_T0, 2, 3, 2250),
        (2, ann, "shipped", NAIVE_T0 + timedelta(microseconds=1), 1, 3, 750),
        (3, ann, "cancelled", NAIVE_T0 + timedelta(days=5), 1, 7, 7000),
        (4, bob, "placed", NAIVE_T0 - timedelta(days=2), 2, 5, 1400),
        (5, bob, "placed", NAIVE_T0 + timedelta(days=9), 0, 0, 0),
    ]
    assert rows(rm.customer_summary_view, "customer_id") == [
        (ann, 2, 3000, NAIVE_T0, NAIVE_T0 + timedelta(microseconds=1)),
        (bob, 2, 1400, NAIVE_T0 - timedelta(days=2), NAIVE_T0 + timedelta(days=9)),
        (3, 0, 0, None, None),
    ]
    assert rows(rm.customer_category_units_view, "customer_id", "category_id") == [
        (ann, 1, "Kitchen", 2),
        (ann, 2, "Garden", 4),
        (bob, 1, "Kitchen", 5),
    ]
    assert rows(rm.customer_product_units_view, "customer_id", "product_id") == [
        (ann, shop["mug"], 1, 2),
        (ann, shop["rake"], 2, 4),
        (bob, shop["mug"], 1, 1),
        (bob, shop["spoon"], 1, 4),
    ]


def test_sales_models_rows(shop):
    backfill_all(db.engine, rm.READ_MODELS)
    day0 = date(2026, 3, 1)
    assert rows(rm.product_sales_view, "product_id") == [
        (shop["mug"], "MUG", "Mug", 3, 3000),
        (shop["rake"], "RAKE", "Rake", 4, 1000),
        (shop["spoon"], "SPOON", "Spoon", 4, 400),
    ]
    # Running totals per product in day order; the cancelled day-5 order is absent.
    assert rows(rm.product_daily_sales_view, "product_id", "day") == [
        (shop["mug"], day0 - timedelta(days=2), 1, 1000, 1, 1000),
        (shop["mug"], day0, 2, 2000, 3, 3000),
        (shop["rake"], day0, 1, 250, 1, 250),
        (shop["rake"], day0 + timedelta(days=1), 3, 750, 4, 1000),
        (shop["spoon"], day0 - timedelta(days=2), 4, 400, 4, 400),
    ]
    assert rows(rm.daily_sales_view, "day") == [
        (day0 - timedelta(days=2), 1, 5, 1400),
        (day0, 1, 3, 2250),
        (day0 + timedelta(days=1), 1, 3, 750),
        (day0 + timedelta(days=9), 1, 0, 0),  # an order without lines still counts
    ]


def test_after_a_seed_flask_cqrs_backfill_makes_every_read_model_exact(app, runner, read_db):
    """The seed is a bulk load that knows nothing of the toolkit; ``make run`` rebuilds the
    read models after it, as a team would after any bulk load."""
    seeded = runner.invoke(
        args=["seed", "--categories=2", "--products=15", "--customers=20", "--orders=60"]
    )
    assert seeded.exit_code == 0, seeded.output
    # Captured as it went: behind (its changes pending), not drifting.
    catalog = read_model_drift(app)["catalog"]
    assert (catalog["behind"], catalog["missing"]) == (15, 0)

    result = runner.invoke(args=["cqrs", "backfill"])

    assert result.exit_code == 0, result.output
    assert "catalog: 15 rows" in result.output
    assert "customer_orders: 60 rows" in result.output
    assert read_model_drift(app) == {}

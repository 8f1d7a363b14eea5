"""Every change to the shop keeps every read model equal to its source (verify clean),
on data that was backfilled first.

Placing an order, the hot path, is projected by hand: its events are applied through the
dispatcher in the order's transaction, and the tests check that the projections alone
made the read models exact (the refresh before commit found nothing left to do). Every
other change is made the legacy way and committed: the read models are refreshed by key
from what change capture recorded, with no event and no projection involved.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from cqrs_layer.core.own_changes import expect_writes
from cqrs_layer.core.tables import changes
from cqrs_layer.read.backfill import backfill_all
from cqrs_layer.read.projections import ProjectionDispatcher
from cqrs_layer.read.verify import verify
from cqrs_layer.write import outbox
from legacy_app.cqrs import events as ev
from legacy_app.cqrs import queries
from legacy_app.cqrs.projections import PROJECTIONS
from legacy_app.cqrs.read_models import READ_MODELS, customer_summary_view
from legacy_app.extensions import db
from legacy_app.models import Order, OrderStatus, Product, Stock
from legacy_app.services import catalog as catalog_services
from legacy_app.services import customers as customer_services
from legacy_app.services import orders as order_services

from ..factories import (
    CategoryFactory,
    CustomerFactory,
    OrderFactory,
    OrderLineFactory,
    ProductFactory,
    ReviewFactory,
)

NOW = datetime.now(UTC)


def place(customer, at, status, *lines):
    order = OrderFactory(customer=customer, created_at=at, status=status)
    for product, quantity in lines:
        OrderLineFactory(order=order, product=product, quantity=quantity)
    return order


@pytest.fixture
def shop(read_db):
    """Backfilled read models over a small shop; ids: categories 1-2, products 1-3,
    customers 1-3, orders 1-4 (order 4 cancelled)."""
    kitchen = CategoryFactory(name="Kitchen")
    garden = CategoryFactory(name="Garden")
    mug = ProductFactory(sku="MUG", name="Mug", price_cents=1000, category=kitchen)
    rake = ProductFactory(sku="RAKE", name="Rake", price_cents=250, category=garden)
    ProductFactory(sku="SPOON", name="Spoon", price_cents=100, category=kitchen)
    ann, bob = CustomerFactory(), CustomerFactory()
    CustomerFactory()
    place(ann, NOW - timedelta(days=10), OrderStatus.SHIPPED.value, (mug, 1))
    place(ann, NOW - timedelta(days=3), OrderStatus.PAID.value, (mug, 2), (rake, 1))
    place(bob, NOW - timedelta(days=3), OrderStatus.PLACED.value, (rake, 3))
    place(bob, NOW - timedelta(days=1), OrderStatus.CANCELLED.value, (mug, 5))
    ReviewFactory(product=mug, rating=5)
    db.session.commit()
    backfill_all(db.engine, READ_MODELS)
    assert_read_models_agree()


def project(*events):
    """Record the events and project them in the session's transaction, then commit;
    the projections must have left the refresh before commit nothing to recompute."""
    connection = db.session.connection()
    stored = outbox.append(connection, events)
    ProjectionDispatcher(PROJECTIONS).apply(connection, stored)
    left = connection.execute(select(changes.c.model, changes.c.key)).all()
    assert left == [], "the projections left changes for the refresh to recompute"
    db.session.commit()


def commit():
    """Commit the legacy change; the refresh before commit keeps the read models."""
    db.session.commit()
    with db.engine.connect() as connection:
        assert connection.execute(select(changes.c.model, changes.c.key)).all() == []


def assert_read_models_agree():
    for model in READ_MODELS:
        report = verify(db.engine, model)
        assert report.ok, report.to_dict()


def summary(customer_id):
    with db.engine.connect() as conn:
        return queries.customer_summary(queries.CustomerSummary(customer_id=customer_id), conn)


# -- event builders: what the command handlers will record ---------------------------------


def product_state(product_id):
    product = db.session.get(Product, product_id)
    db.session.refresh(product)
    return product


def stock_of(product_id):
    stock = db.session.get(Stock, product_id)
    db.session.refresh(stock)
    return stock.quantity


def line_snapshots(order):
    return [
        ev.OrderLineSnapshot(
            line_id=line.id,
            product_id=line.product_id,
            category_id=product_state(line.product_id).category_id,
            quantity=line.quantity,
            unit_price_cents=line.unit_price_cents,
            stock_after=stock_of(line.product_id),
        )
        for line in order.lines
    ]


def place_order(customer_id, *lines):
    # As a command does: on SQLite the transaction then tells its own changes apart.
    expect_writes(db.session.connection())
    order = order_services.place_order(
        db.session, customer_id, [order_services.Line(p, q) for p, q in lines]
    )
    return ev.OrderPlaced(
        order_id=order.id,
        customer_id=customer_id,
        created_at=order.created_at,
        lines=line_snapshots(order),
    )


# -- the hot path: placing an order, projected by hand -----------------------------------


def test_order_placed(shop):
    project(place_order(3, (1, 2), (3, 4)))  # a first order, a product never sold before
    assert_read_models_agree()
    project(place_order(1, (2, 1)))  # a repeat customer, a product sold before
    assert_read_models_agree()
    assert summary(3)["favourite_category"] == {"id": 1, "name": "Kitchen", "units": 6}


def test_an_event_applied_twice_counts_once(shop):
    connection = db.session.connection()
    stored = outbox.append(connection, [place_order(1, (2, 1))])
    dispatcher = ProjectionDispatcher(PROJECTIONS)
    dispatcher.apply(connection, stored)
    dispatcher.apply(connection, stored)
    db.session.commit()
    assert_read_models_agree()


# -- every other change: refreshed by key ------------------------------------------------


def test_category_created(shop):
    catalog_services.create_category(db.session, name="Toys")
    commit()
    assert_read_models_agree()


def test_product_created(shop):
    category = catalog_services.create_category(db.session, name="Toys")
    catalog_services.create_product(
        db.session, sku="BALL", name="Ball", price_cents=399, category_id=category.id, stock=7
    )
    commit()
    assert_read_models_agree()


def test_product_updated_in_place(shop):
    catalog_services.update_product(
        db.session, 1, name="Big Mug", sku="MUG-XL", price_cents=1500, description="huge"
    )
    commit()
    assert_read_models_agree()


def test_product_moved_to_another_category(shop):
    # Ann bought 2+1 mugs (Kitchen) and 1 rake (Garden): Kitchen is her favourite.
    assert summary(1)["favourite_category"] == {"id": 1, "name": "Kitchen", "units": 3}
    catalog_services.update_product(db.session, 1, category_id=2)
    commit()
    assert_read_models_agree()
    assert summary(1)["favourite_category"] == {"id": 2, "name": "Garden", "units": 4}
    assert summary(2)["favourite_category"] == {"id": 2, "name": "Garden", "units": 3}


def test_product_deleted(shop):
    ReviewFactory(product_id=3, rating=1)
    db.session.commit()
    backfill_all(db.engine, READ_MODELS)
    catalog_services.delete_product(db.session, 3)
    commit()
    assert_read_models_agree()


def test_product_restocked(shop):
    catalog_services.restock(db.session, 2, 40)
    commit()
    assert_read_models_agree()


@pytest.mark.parametrize("ratings", [(3,), (1, 2, 5)])
def test_review_added(shop, ratings):
    for rating in ratings:
        catalog_services.add_review(db.session, 2, rating=rating, customer_id=1)
    commit()
    assert_read_models_agree()


def test_customer_registered_updated_deleted(shop):
    c = customer_services.create_customer(db.session, email="Dee@Example.com", name="Dee")
    commit()
    assert_read_models_agree()
    assert summary(c.id)["order_count"] == 0
    customer_services.update_customer(db.session, c.id, name="Deirdre")
    commit()
    assert_read_models_agree()
    customer_services.delete_customer(db.session, c.id)
    commit()
    assert_read_models_agree()
    with db.engine.connect() as conn:
        ids = conn.execute(select(customer_summary_view.c.customer_id)).scalars()
        assert sorted(ids) == [1, 2, 3]


@pytest.mark.parametrize("status", ["paid", "shipped"])
def test_order_paid_and_shipped(shop, status):
    order_services.pay_order(db.session, 3)
    commit()
    if status == "shipped":
        order_services.ship_order(db.session, 3)
        commit()
    assert_read_models_agree()


@pytest.mark.parametrize(
    "order_id",
    [
        2,  # Ann's last order: last_order_at falls back to order 1
        3,  # Bob's only counted order: his summary empties
    ],
)
def test_order_cancelled(shop, order_id):
    order_services.cancel_order(db.session, order_id)
    commit()
    assert_read_models_agree()


def test_cancelling_an_earlier_order_updates_later_running_totals(shop):
    # Order 1 (10 days ago) sold a mug; the mug's later day (3 days ago) includes it.
    # It shipped, so make it cancellable first.
    db.session.execute(Order.__table__.update().where(Order.id == 1).values(status="paid"))
    commit()
    order_services.cancel_order(db.session, 1)
    commit()
    assert_read_models_agree()
    assert summary(1)["first_order_at"] == (NOW - timedelta(days=3)).isoformat()


def test_placing_then_cancelling_today_leaves_nothing_behind(shop):
    placed = place_order(3, (2, 2))
    project(placed)
    order_services.cancel_order(db.session, placed.order_id)
    commit()
    assert_read_models_agree()
    assert summary(3)["order_count"] == 0
    assert summary(3)["favourite_category"] is None

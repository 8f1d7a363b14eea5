"""Behaviour of a customer's order history and lifetime summary on known data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from legacy_app.models import OrderStatus
from legacy_app.queries import customers as customer_queries

from ..factories import (
    CategoryFactory,
    CustomerFactory,
    OrderFactory,
    OrderLineFactory,
    ProductFactory,
)


def at(day, hour=12, microsecond=0):
    return datetime(2026, 2, day, hour, 0, 0, microsecond, tzinfo=UTC)


def iso(day, hour=12, microsecond=0):
    return at(day, hour, microsecond).isoformat()


def order(customer, created_at, status, *lines):
    placed = OrderFactory(customer=customer, created_at=created_at, status=status.value)
    for product, quantity, unit_price in lines:
        OrderLineFactory(
            order=placed, product=product, quantity=quantity, unit_price_cents=unit_price
        )
    return placed


@pytest.fixture
def history(db_session):
    """Customer 1 with five orders (ids 1..5); customer 2 with one; customer 3 with none.

    Orders 2 and 3 share a timestamp (tie broken by id desc). Order 4 is cancelled.
    Non-cancelled units: Kitchen (category 1) 6, Garden (category 2) 5; the cancelled
    order's 9 rakes would make Garden the favourite if it were counted.
    """
    ann, bob = CustomerFactory(), CustomerFactory()
    CustomerFactory()
    kitchen = CategoryFactory(name="Kitchen")
    garden = CategoryFactory(name="Garden")
    mug = ProductFactory(category=kitchen, price_cents=1299)
    spoon = ProductFactory(category=kitchen, price_cents=250)
    rake = ProductFactory(category=garden, price_cents=3000)
    order(ann, at(1, microsecond=500), OrderStatus.SHIPPED, (mug, 2, 1000), (spoon, 1, 250))
    order(ann, at(3), OrderStatus.PAID, (rake, 3, 3000))
    order(ann, at(3), OrderStatus.PLACED, (mug, 1, 1299), (spoon, 1, 250), (rake, 2, 3000))
    order(ann, at(4), OrderStatus.CANCELLED, (rake, 9, 3000))
    order(ann, at(2, hour=7), OrderStatus.PLACED, (spoon, 1, 7))
    order(bob, at(5), OrderStatus.PLACED, (rake, 1, 3000))
    db_session.commit()


# --- history ----------------------------------------------------------------------------

ANN_HISTORY = [
    {
        "id": 4,
        "status": "cancelled",
        "created_at": iso(4),
        "line_count": 1,
        "item_count": 9,
        "total_cents": 27000,
    },
    {
        "id": 3,
        "status": "placed",
        "created_at": iso(3),
        "line_count": 3,
        "item_count": 4,
        "total_cents": 7549,
    },
    {
        "id": 2,
        "status": "paid",
        "created_at": iso(3),
        "line_count": 1,
        "item_count": 3,
        "total_cents": 9000,
    },
    {
        "id": 5,
        "status": "placed",
        "created_at": iso(2, hour=7),
        "line_count": 1,
        "item_count": 1,
        "total_cents": 7,
    },
    {
        "id": 1,
        "status": "shipped",
        "created_at": "2026-02-01T12:00:00.000500+00:00",
        "line_count": 2,
        "item_count": 3,
        "total_cents": 2250,
    },
]


def test_history_lists_orders_newest_first_with_totals(client, history):
    response = client.get("/api/customers/1/orders")
    assert response.status_code == 200
    assert response.get_json() == {"items": ANN_HISTORY, "total": 5, "page": 1, "per_page": 20}


@pytest.mark.parametrize(("page", "ids"), [(1, [4, 3]), (2, [2, 5]), (3, [1]), (4, [])])
def test_history_paginates(client, history, page, ids):
    body = client.get(f"/api/customers/1/orders?per_page=2&page={page}").get_json()
    assert [item["id"] for item in body["items"]] == ids
    assert (body["total"], body["page"], body["per_page"]) == (5, page, 2)


def test_history_shows_only_the_customers_orders(client, history):
    assert client.get("/api/customers/2/orders").get_json()["items"] == [
        {
            "id": 6,
            "status": "placed",
            "created_at": iso(5),
            "line_count": 1,
            "item_count": 1,
            "total_cents": 3000,
        }
    ]
    assert client.get("/api/customers/3/orders").get_json() == {
        "items": [],
        "total": 0,
        "page": 1,
        "per_page": 20,
    }


def test_history_follows_api_writes(client, db_session, history):
    placed = client.post(
        "/api/orders",
        json={"customer_id": 3, "lines": [{"product_id": 2, "quantity": 2}]},
    )
    assert placed.status_code == 201
    assert client.post("/api/orders/7/cancel").status_code == 200
    items = client.get("/api/customers/3/orders").get_json()["items"]
    assert items == [
        {
            "id": 7,
            "status": "cancelled",
            "created_at": placed.get_json()["created_at"],
            "line_count": 1,
            "item_count": 2,
            "total_cents": 500,
        }
    ]


@pytest.mark.parametrize("path", ["/api/customers/4/orders", "/api/customers/4/summary"])
def test_unknown_customer_is_404(client, history, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    assert [f["field"] for f in response.get_json()["error"]["fields"]] == ["customer_id"]


@pytest.mark.parametrize(
    ("query", "field"), [("page=0", "page"), ("per_page=101", "per_page"), ("page=x", "page")]
)
def test_history_refuses_bad_pagination(client, history, query, field):
    response = client.get(f"/api/customers/1/orders?{query}")
    assert response.status_code == 422
    assert [f["field"] for f in response.get_json()["error"]["fields"]] == [field]


def test_history_page_is_one_query_plus_count(app, db_session, history):
    """No N+1: the page's aggregates come from one GROUP BY, ``total`` from one COUNT."""
    statements = []
    engine = db_session.get_bind()

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        items, total = customer_queries.order_history(db_session, 1, page=1, per_page=20)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert (items, total) == (ANN_HISTORY, 5)
    assert len(statements) == 2
    assert "GROUP BY" in statements[0]


# --- summary ----------------------------------------------------------------------------


def test_summary_aggregates_non_cancelled_orders(client, history):
    response = client.get("/api/customers/1/summary")
    assert response.status_code == 200
    assert response.get_json() == {
        "customer_id": 1,
        "order_count": 4,
        "lifetime_value_cents": 2250 + 9000 + 7549 + 7,
        "average_order_value_cents": 18806 // 4,
        "first_order_at": "2026-02-01T12:00:00.000500+00:00",
        "last_order_at": iso(3),
        # Kitchen: mugs 2 + 1, spoons 1 + 1 + 1; Garden: rakes 3 + 2 (9 cancelled).
        "favourite_category": {"id": 1, "name": "Kitchen", "units": 6},
    }


def test_summary_favourite_category_tie_goes_to_lowest_id(client, db_session):
    customer = CustomerFactory()
    first = CategoryFactory(name="Zebra")  # id 1, sorts last by name
    second = CategoryFactory(name="Aardvark")  # id 2
    tool = ProductFactory(category=second)
    toy = ProductFactory(category=first)
    order(customer, at(1), OrderStatus.PLACED, (tool, 4, 100), (toy, 4, 100))
    order(customer, at(2), OrderStatus.CANCELLED, (tool, 50, 100))
    db_session.commit()
    summary = client.get("/api/customers/1/summary").get_json()
    assert summary["favourite_category"] == {"id": 1, "name": "Zebra", "units": 4}
    assert (summary["order_count"], summary["lifetime_value_cents"]) == (1, 800)


def test_summary_without_orders_is_empty(client, history):
    assert client.get("/api/customers/3/summary").get_json() == {
        "customer_id": 3,
        "order_count": 0,
        "lifetime_value_cents": 0,
        "average_order_value_cents": 0,
        "first_order_at": None,
        "last_order_at": None,
        "favourite_category": None,
    }


def test_summary_with_only_cancelled_orders_is_empty(client, db_session):
    customer = CustomerFactory()
    order(customer, at(1), OrderStatus.CANCELLED, (ProductFactory(), 2, 500))
    db_session.commit()
    summary = client.get("/api/customers/1/summary").get_json()
    assert summary == {
        "customer_id": 1,
        "order_count": 0,
        "lifetime_value_cents": 0,
        "average_order_value_cents": 0,
        "first_order_at": None,
        "last_order_at": None,
        "favourite_category": None,
    }


def test_summary_average_rounds_down(client, db_session):
    customer = CustomerFactory()
    product = ProductFactory()
    order(customer, at(1), OrderStatus.PLACED, (product, 1, 100))
    order(customer, at(2), OrderStatus.PAID, (product, 1, 100))
    order(customer, at(3), OrderStatus.SHIPPED, (product, 1, 101))
    db_session.commit()
    summary = client.get("/api/customers/1/summary").get_json()
    assert (summary["lifetime_value_cents"], summary["average_order_value_cents"]) == (301, 100)
    assert (summary["first_order_at"], summary["last_order_at"]) == (iso(1), iso(3))


def test_large_totals_do_not_overflow(client, db_session):
    """quantity * unit price beyond 2**31 must still add up exactly (BIGINT arithmetic)."""
    customer = CustomerFactory()
    expensive = ProductFactory(price_cents=2_000_000_000)
    order(customer, at(1), OrderStatus.PLACED, (expensive, 1000, 2_000_000_000))
    db_session.commit()
    history_item = client.get("/api/customers/1/orders").get_json()["items"][0]
    assert history_item["total_cents"] == 2_000_000_000_000
    summary = client.get("/api/customers/1/summary").get_json()
    assert summary["lifetime_value_cents"] == 2_000_000_000_000
    assert client.get("/api/orders/1").get_json()["total_cents"] == 2_000_000_000_000

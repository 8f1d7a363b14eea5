"""Behaviour of the order endpoints: placing, reading, transitions, bad input, concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from legacy_app.models import Order, OrderLine, Product, Stock

from ..factories import CustomerFactory, OrderFactory, OrderLineFactory, ProductFactory

PLACED_AT = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
PLACED_ISO = "2026-05-06T07:08:09.123456+00:00"


def db_state(db_session):
    """What a failed request must leave untouched: orders, lines and every stock level."""
    db_session.expire_all()
    return {
        "orders": db_session.execute(select(Order.id, Order.status).order_by(Order.id)).all(),
        "lines": db_session.scalar(select(func.count()).select_from(OrderLine)),
        "stock": dict(db_session.execute(select(Stock.product_id, Stock.quantity)).all()),
    }


def error_fields(response):
    return [f["field"] for f in response.get_json()["error"]["fields"]]


@pytest.fixture
def shop(db_session):
    """Customer 1; products 1 (1299c, stock 5), 2 (250c, stock 3), 3 (999c, stock 0)."""
    CustomerFactory(email="ann@example.com", name="Ann")
    ProductFactory(sku="SKU-MUG", name="Blue Mug", price_cents=1299, stock__quantity=5)
    ProductFactory(sku="SKU-SPOON", name="Spoon", price_cents=250, stock__quantity=3)
    ProductFactory(sku="SKU-PLATE", name="Plate", price_cents=999, stock__quantity=0)
    db_session.commit()


def place(client, *lines, customer_id=1):
    body = {
        "customer_id": customer_id,
        "lines": [{"product_id": p, "quantity": q} for p, q in lines],
    }
    return client.post("/api/orders", json=body)


# --- place ------------------------------------------------------------------------------


def test_place_order_returns_order_json_and_takes_stock(client, db_session, shop):
    before = datetime.now(UTC)
    response = place(client, (2, 3), (1, 2))
    assert response.status_code == 201
    body = response.get_json()
    created_at = datetime.fromisoformat(body.pop("created_at"))
    assert before <= created_at <= datetime.now(UTC)
    assert body == {
        "id": 1,
        "customer_id": 1,
        "status": "placed",
        "paid_at": None,
        "shipped_at": None,
        "cancelled_at": None,
        "lines": [
            {
                "id": 1,
                "product_id": 2,
                "sku": "SKU-SPOON",
                "name": "Spoon",
                "quantity": 3,
                "unit_price_cents": 250,
                "line_total_cents": 750,
            },
            {
                "id": 2,
                "product_id": 1,
                "sku": "SKU-MUG",
                "name": "Blue Mug",
                "quantity": 2,
                "unit_price_cents": 1299,
                "line_total_cents": 2598,
            },
        ],
        "item_count": 5,
        "total_cents": 3348,
    }
    assert list(response.get_json()) == [
        "id", "customer_id", "status", "created_at", "paid_at", "shipped_at",
        "cancelled_at", "lines", "item_count", "total_cents",
    ]  # fmt: skip
    state = db_state(db_session)
    assert state["stock"] == {1: 3, 2: 0, 3: 0}
    assert state["lines"] == 2
    assert client.get("/api/orders/1").get_json() == response.get_json()


def test_unit_price_is_captured_when_placed(client, db_session, shop):
    assert place(client, (1, 1)).status_code == 201
    db_session.get(Product, 1).price_cents = 5000
    db_session.commit()
    order = client.get("/api/orders/1").get_json()
    assert order["lines"][0]["unit_price_cents"] == 1299
    assert order["total_cents"] == 1299
    second = place(client, (1, 2)).get_json()
    assert (second["lines"][0]["unit_price_cents"], second["total_cents"]) == (5000, 10000)


def test_order_may_take_exactly_the_remaining_stock(client, db_session, shop):
    assert place(client, (1, 5)).status_code == 201
    assert db_state(db_session)["stock"][1] == 0


# --- place: bad input -------------------------------------------------------------------

GOOD_LINE = {"product_id": 1, "quantity": 1}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lines": [GOOD_LINE]}, "customer_id"),
        ({"customer_id": 1}, "lines"),
        ({"customer_id": 1, "lines": [GOOD_LINE], "note": "x"}, "note"),
        ({"customer_id": "1", "lines": [GOOD_LINE]}, "customer_id"),
        ({"customer_id": True, "lines": [GOOD_LINE]}, "customer_id"),
        ({"customer_id": 1.5, "lines": [GOOD_LINE]}, "customer_id"),  # 1.0 is 1
        ({"customer_id": None, "lines": [GOOD_LINE]}, "customer_id"),
        ({"customer_id": 0, "lines": [GOOD_LINE]}, "customer_id"),
        ({"customer_id": 1, "lines": []}, "lines"),
        ({"customer_id": 1, "lines": GOOD_LINE}, "lines"),
        ({"customer_id": 1, "lines": "1x1"}, "lines"),
        ({"customer_id": 1, "lines": [[1, 1]]}, "lines.0"),
        ({"customer_id": 1, "lines": [{"quantity": 1}]}, "lines.0.product_id"),
        ({"customer_id": 1, "lines": [{"product_id": 1}]}, "lines.0.quantity"),
        ({"customer_id": 1, "lines": [GOOD_LINE, {**GOOD_LINE, "x": 1}]}, "lines.1.x"),
        ({"customer_id": 1, "lines": [{"product_id": "1", "quantity": 1}]}, "lines.0.product_id"),
        ({"customer_id": 1, "lines": [{"product_id": -1, "quantity": 1}]}, "lines.0.product_id"),
        ({"customer_id": 1, "lines": [{"product_id": 1, "quantity": 0}]}, "lines.0.quantity"),
        ({"customer_id": 1, "lines": [{"product_id": 1, "quantity": -2}]}, "lines.0.quantity"),
        ({"customer_id": 1, "lines": [{"product_id": 1, "quantity": 1001}]}, "lines.0.quantity"),
        ({"customer_id": 1, "lines": [{"product_id": 1, "quantity": "2"}]}, "lines.0.quantity"),
        ({"customer_id": 1, "lines": [{"product_id": 1, "quantity": True}]}, "lines.0.quantity"),
        ({"customer_id": 1, "lines": [{"product_id": 1, "quantity": 1.5}]}, "lines.0.quantity"),
        (
            {"customer_id": 1, "lines": [{"product_id": 1, "quantity": 1}] * 101},
            "lines",
        ),
        ({"customer_id": 2**70, "lines": [GOOD_LINE]}, "customer_id"),
    ],
)
def test_place_refuses_invalid_body(client, db_session, shop, body, field):
    before = db_state(db_session)
    response = client.post("/api/orders", json=body)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "validation_error"
    assert field in error_fields(response)
    assert db_state(db_session) == before


def test_place_refuses_a_json_array(client, db_session, shop):
    before = db_state(db_session)
    response = client.post("/api/orders", json=[GOOD_LINE])
    assert response.status_code == 422
    assert error_fields(response) == ["body"]
    assert db_state(db_session) == before


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ('{"customer_id": 1, "lines": [', "application/json"),
        ('{"customer_id": 1, "lines": [{"product_id": 1, "quantity": 1}]}', "text/plain"),
        ("customer_id=1", "application/x-www-form-urlencoded"),
    ],
)
def test_place_refuses_non_json(client, db_session, shop, data, content_type):
    before = db_state(db_session)
    response = client.post("/api/orders", data=data, content_type=content_type)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"
    assert error_fields(response) == ["body"]
    assert db_state(db_session) == before


@pytest.mark.parametrize(
    ("customer_id", "lines", "fields"),
    [
        (9, [(1, 1)], ["customer_id"]),
        (1, [(1, 1), (42, 1)], ["lines.1.product_id"]),
        (1, [(1, 1), (2, 1), (1, 2)], ["lines.2.product_id"]),  # listed twice
        (9, [(42, 1), (2, 1), (2, 1)], ["customer_id", "lines.0.product_id", "lines.2.product_id"]),
    ],
)
def test_place_refuses_unknown_ids_in_body(client, db_session, shop, customer_id, lines, fields):
    before = db_state(db_session)
    response = place(client, *lines, customer_id=customer_id)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "validation_error"
    assert error_fields(response) == fields
    assert db_state(db_session) == before


def test_insufficient_stock_is_409_and_writes_nothing(client, db_session, shop):
    before = db_state(db_session)
    # Line 0 has enough stock and is taken first; line 1 fails, so line 0 must be undone.
    response = place(client, (1, 5), (2, 4))
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "conflict"
    assert error["fields"] == [
        {"field": "lines.1.quantity", "reason": "requested 4, only 3 in stock"}
    ]
    assert "only 3 in stock" in error["message"]
    assert db_state(db_session) == before
    assert before["stock"] == {1: 5, 2: 3, 3: 0}


def test_every_short_line_is_named(client, db_session, shop):
    before = db_state(db_session)
    response = place(client, (3, 1), (1, 1), (2, 9))
    assert response.status_code == 409
    assert response.get_json()["error"]["fields"] == [
        {"field": "lines.0.quantity", "reason": "requested 1, only 0 in stock"},
        {"field": "lines.2.quantity", "reason": "requested 9, only 3 in stock"},
    ]
    assert db_state(db_session) == before


# --- get --------------------------------------------------------------------------------


def test_get_order_returns_known_order(client, db_session):
    customer = CustomerFactory()
    mug = ProductFactory(sku="SKU-MUG", name="Blue Mug", price_cents=1299)
    order = OrderFactory(
        customer=customer,
        status="shipped",
        created_at=PLACED_AT,
        paid_at=datetime(2026, 5, 7, tzinfo=UTC),
        shipped_at=datetime(2026, 5, 8, 1, 2, 3, tzinfo=UTC),
    )
    OrderLineFactory(order=order, product=mug, quantity=2, unit_price_cents=1000)
    db_session.commit()
    response = client.get(f"/api/orders/{order.id}")
    assert response.status_code == 200
    assert response.get_json() == {
        "id": 1,
        "customer_id": 1,
        "status": "shipped",
        "created_at": PLACED_ISO,
        "paid_at": "2026-05-07T00:00:00+00:00",
        "shipped_at": "2026-05-08T01:02:03+00:00",
        "cancelled_at": None,
        "lines": [
            {
                "id": 1,
                "product_id": 1,
                "sku": "SKU-MUG",
                "name": "Blue Mug",
                "quantity": 2,
                "unit_price_cents": 1000,
                "line_total_cents": 2000,
            }
        ],
        "item_count": 2,
        "total_cents": 2000,
    }


@pytest.mark.parametrize("order_id", ["2", "99999999999999999999"])
def test_get_unknown_order_is_404(client, shop, order_id):
    assert place(client, (1, 1)).status_code == 201
    response = client.get(f"/api/orders/{order_id}")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    assert error_fields(response) == ["order_id"]


# --- transitions ------------------------------------------------------------------------


def test_pay_then_ship_stamps_each_step(client, db_session, shop):
    placed = place(client, (1, 2)).get_json()
    before = datetime.now(UTC)
    paid = client.post("/api/orders/1/pay")
    assert paid.status_code == 200
    paid_body = paid.get_json()
    assert paid_body["status"] == "paid"
    paid_at = datetime.fromisoformat(paid_body["paid_at"])
    assert before <= paid_at <= datetime.now(UTC)
    assert {k: v for k, v in paid_body.items() if k not in ("status", "paid_at")} == {
        k: v for k, v in placed.items() if k not in ("status", "paid_at")
    }
    shipped = client.post("/api/orders/1/ship").get_json()
    assert shipped["status"] == "shipped"
    assert shipped["paid_at"] == paid_body["paid_at"]
    assert datetime.fromisoformat(shipped["shipped_at"]) >= paid_at
    assert shipped["cancelled_at"] is None
    assert client.get("/api/orders/1").get_json() == shipped
    assert db_state(db_session)["stock"] == {1: 3, 2: 3, 3: 0}


@pytest.mark.parametrize("pay_first", [False, True])
def test_cancel_returns_stock(client, db_session, shop, pay_first):
    place(client, (1, 2), (2, 3))
    if pay_first:
        assert client.post("/api/orders/1/pay").status_code == 200
    assert db_state(db_session)["stock"] == {1: 3, 2: 0, 3: 0}
    response = client.post("/api/orders/1/cancel")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "cancelled"
    assert body["cancelled_at"] is not None
    assert body["shipped_at"] is None
    assert (body["paid_at"] is not None) is pay_first
    assert (body["item_count"], body["total_cents"]) == (5, 3348)
    assert db_state(db_session)["stock"] == {1: 5, 2: 3, 3: 0}


@pytest.mark.parametrize(
    ("steps", "action", "current", "requested"),
    [
        ([], "ship", "placed", "shipped"),
        (["pay"], "pay", "paid", "paid"),
        (["pay", "ship"], "ship", "shipped", "shipped"),
        (["pay", "ship"], "cancel", "shipped", "cancelled"),
        (["pay", "ship"], "pay", "shipped", "paid"),
        (["cancel"], "cancel", "cancelled", "cancelled"),
        (["cancel"], "pay", "cancelled", "paid"),
        (["cancel"], "ship", "cancelled", "shipped"),
    ],
)
def test_invalid_transition_is_409_and_changes_nothing(
    client, db_session, shop, steps, action, current, requested
):
    place(client, (1, 2))
    for step in steps:
        assert client.post(f"/api/orders/1/{step}").status_code == 200
    order_before = client.get("/api/orders/1").get_json()
    state_before = db_state(db_session)
    response = client.post(f"/api/orders/1/{action}")
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "conflict"
    assert error["fields"][0]["field"] == "status"
    assert error["message"] == f"order 1 is {current} and cannot become {requested}"
    assert client.get("/api/orders/1").get_json() == order_before
    assert db_state(db_session) == state_before


@pytest.mark.parametrize("action", ["pay", "ship", "cancel"])
def test_transition_of_unknown_order_is_404(client, db_session, shop, action):
    response = client.post(f"/api/orders/7/{action}")
    assert response.status_code == 404
    assert error_fields(response) == ["order_id"]


def test_transition_needs_post(client, shop):
    place(client, (1, 1))
    response = client.get("/api/orders/1/pay")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


# --- concurrency ------------------------------------------------------------------------


def run_together(app, requests):
    """Send each (method, url, body) from its own thread, app context and session at once."""
    barrier = threading.Barrier(len(requests))
    results = [None] * len(requests)

    def worker(index, method, url, body):
        with app.app_context():
            client = app.test_client()
            barrier.wait()
            response = client.open(url, method=method, json=body)
            results[index] = (response.status_code, response.get_json())

    threads = [
        threading.Thread(target=worker, args=(i, *request)) for i, request in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_orders_for_the_last_unit_sell_it_once(app, client, db_session):
    CustomerFactory()
    CustomerFactory()
    ProductFactory(stock__quantity=1)
    db_session.commit()
    order = {"lines": [{"product_id": 1, "quantity": 1}]}
    results = run_together(
        app,
        [
            ("POST", "/api/orders", {"customer_id": 1, **order}),
            ("POST", "/api/orders", {"customer_id": 2, **order}),
        ],
    )
    assert sorted(status for status, _ in results) == [201, 409]
    refused = next(body for status, body in results if status == 409)
    assert refused["error"]["fields"] == [
        {"field": "lines.0.quantity", "reason": "requested 1, only 0 in stock"}
    ]
    state = db_state(db_session)
    assert state["stock"] == {1: 0}
    assert (len(state["orders"]), state["lines"]) == (1, 1)


def test_many_concurrent_orders_never_oversell(app, client, db_session):
    CustomerFactory()
    ProductFactory(stock__quantity=3)
    ProductFactory(stock__quantity=100)
    db_session.commit()
    # Lines in both product orders, so lock ordering matters on PostgreSQL.
    scarce = {"product_id": 1, "quantity": 1}
    plenty = {"product_id": 2, "quantity": 1}
    bodies = [
        {"customer_id": 1, "lines": [scarce, plenty] if i % 2 else [plenty, scarce]}
        for i in range(8)
    ]
    results = run_together(app, [("POST", "/api/orders", body) for body in bodies])
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] * 3 + [409] * 5
    state = db_state(db_session)
    assert state["stock"] == {1: 0, 2: 97}
    assert (len(state["orders"]), state["lines"]) == (3, 6)


def test_concurrent_cancels_return_stock_once(app, client, db_session):
    place_body = {"customer_id": 1, "lines": [{"product_id": 1, "quantity": 4}]}
    CustomerFactory()
    ProductFactory(stock__quantity=10)
    db_session.commit()
    assert client.post("/api/orders", json=place_body).status_code == 201
    results = run_together(
        app, [("POST", "/api/orders/1/cancel", None), ("POST", "/api/orders/1/cancel", None)]
    )
    assert sorted(status for status, _ in results) == [200, 409]
    refused = next(body for status, body in results if status == 409)
    assert refused["error"]["message"] == "order 1 is cancelled and cannot become cancelled"
    state = db_state(db_session)
    assert state["stock"] == {1: 10}
    assert state["orders"] == [(1, "cancelled")]

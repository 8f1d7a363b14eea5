"""Every write endpoint, served by its command: the events it records (type, aggregate,
payload filled from the rows as stored, the request's correlation id) and, when it fails,
that it wrote nothing at all: no outbox row, no change to the shop or the read models."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from cqrs_layer import signals
from cqrs_layer.core.tables import outbox
from cqrs_layer.schema import metadata as toolkit_metadata
from legacy_app.cqrs import commands as c
from legacy_app.cqrs.read_models import read_metadata
from legacy_app.models import Customer, Order, OrderLine, Product, Review, Stock

from ..api import shop_snapshot
from ..variants import COMMANDS

REQUEST_ID = "req-test-0001"


@pytest.fixture
def app_variant():
    return COMMANDS


def api(client, method, url, body=None, request_id=REQUEST_ID):
    return client.open(url, method=method, json=body, headers={"X-Request-ID": request_id})


def outbox_rows(db_session):
    rows = db_session.execute(select(outbox).order_by(outbox.c.position)).mappings().all()
    return [dict(row) for row in rows]


def events(db_session):
    """(event_type, aggregate_type, aggregate_id, payload, correlation_id) in order."""
    return [
        (
            r["event_type"],
            r["aggregate_type"],
            r["aggregate_id"],
            r["payload"],
            r["correlation_id"],
        )
        for r in outbox_rows(db_session)
    ]


def last_event(db_session):
    return events(db_session)[-1]


def stamp(value):
    """An event payload's timestamp, comparable with the aware value the ORM reads back."""
    return datetime.fromisoformat(value)


#: The toolkit's operational records, written off the request path (what the write guard
#: learned of writers, comparisons): not part of what a command writes.
OPERATIONAL = {"cqrs_writers", "cqrs_comparisons"}


def every_row(db_session):
    """The shop, the toolkit and the read-model tables: what a failed command must not touch."""
    snapshot = shop_snapshot(db_session)
    for metadata in (toolkit_metadata, read_metadata):
        for table in metadata.sorted_tables:
            if table.name in OPERATIONAL:
                continue
            snapshot[table.name] = sorted(
                (tuple(row) for row in db_session.execute(select(table))), key=repr
            )
    return snapshot


@pytest.fixture
def shop(client, db_session):
    """Through the API: categories 1 Kitchen, 2 Garden; products 1 MUG (1000c, stock 5,
    Kitchen), 2 RAKE (250c, stock 2, Garden); customer 1 ann@example.com. Outbox emptied."""
    assert api(client, "POST", "/api/categories", {"name": "Kitchen"}).status_code == 201
    assert api(client, "POST", "/api/categories", {"name": "Garden"}).status_code == 201
    for sku, price, stock, category in (("MUG", 1000, 5, 1), ("RAKE", 250, 2, 2)):
        body = {
            "sku": sku,
            "name": sku.title(),
            "price_cents": price,
            "category_id": category,
            "stock": stock,
        }
        assert api(client, "POST", "/api/products", body).status_code == 201
    body = {"email": "ann@example.com", "name": "Ann"}
    assert api(client, "POST", "/api/customers", body).status_code == 201
    assert len(outbox_rows(db_session)) == 5
    db_session.execute(outbox.delete())
    db_session.commit()


def place(client, *lines, customer_id=1):
    body = {
        "customer_id": customer_id,
        "lines": [{"product_id": p, "quantity": q} for p, q in lines],
    }
    return api(client, "POST", "/api/orders", body)


def test_every_write_endpoint_is_served_by_its_command(client, shop):
    response = api(client, "POST", "/api/categories", {"name": "Hall"})

    assert response.status_code == 201
    assert response.headers["X-CQRS-Served-By"] == "command"
    assert response.headers["X-Request-ID"] == REQUEST_ID


def test_create_category_records_category_created(client, db_session):
    response = api(client, "POST", "/api/categories", {"name": "Kitchen"})

    assert response.status_code == 201
    assert response.get_json() == {"id": 1, "name": "Kitchen", "product_count": 0}
    assert events(db_session) == [
        ("CategoryCreated", "category", "1", {"category_id": 1, "name": "Kitchen"}, REQUEST_ID)
    ]


def test_create_product_records_product_created_as_stored(client, db_session, shop):
    body = {
        "sku": "SPOON",
        "name": "Spoon",
        "price_cents": 120,
        "category_id": 1,
        "description": "steel",
        "stock": 7,
    }
    response = api(client, "POST", "/api/products", body)

    assert response.status_code == 201
    product = db_session.get(Product, 3)
    event_type, aggregate, aggregate_id, payload, correlation = last_event(db_session)
    assert (event_type, aggregate, aggregate_id, correlation) == (
        "ProductCreated",
        "product",
        "3",
        REQUEST_ID,
    )
    assert stamp(payload.pop("created_at")) == product.created_at
    assert stamp(payload.pop("updated_at")) == product.updated_at
    assert payload == {
        "product_id": 3,
        "sku": "SPOON",
        "name": "Spoon",
        "description": "steel",
        "price_cents": 120,
        "category_id": 1,
        "category_name": "Kitchen",
        "stock": 7,
    }


def test_update_product_records_the_state_after_and_the_previous_category(client, db_session, shop):
    response = api(client, "PATCH", "/api/products/1", {"category_id": 2, "price_cents": 1100})

    assert response.status_code == 200
    product = db_session.get(Product, 1)
    event_type, _, aggregate_id, payload, _ = last_event(db_session)
    assert (event_type, aggregate_id) == ("ProductUpdated", "1")
    assert stamp(payload.pop("updated_at")) == product.updated_at
    assert payload == {
        "product_id": 1,
        "sku": "MUG",
        "name": "Mug",
        "description": "",
        "price_cents": 1100,
        "category_id": 2,
        "category_name": "Garden",
        "previous_category_id": 1,
    }
    assert product.version == 2


def test_delete_product_records_product_deleted(client, db_session, shop):
    response = api(client, "DELETE", "/api/products/2")

    assert response.status_code == 204
    assert response.get_data() == b""
    assert events(db_session) == [("ProductDeleted", "product", "2", {"product_id": 2}, REQUEST_ID)]


def test_restock_records_the_stock_level_after(client, db_session, shop):
    place(client, (1, 2))
    response = api(client, "POST", "/api/products/1/restock", {"quantity": 10})

    assert response.status_code == 200
    assert response.get_json()["stock"] == 13
    event_type, _, aggregate_id, payload, _ = last_event(db_session)
    assert (event_type, aggregate_id) == ("ProductRestocked", "1")
    # Restocking leaves the product's own updated_at alone; the event says so.
    assert stamp(payload.pop("updated_at")) == db_session.get(Product, 1).updated_at
    assert payload == {"product_id": 1, "quantity": 10, "stock": 13}


def test_add_review_records_review_added(client, db_session, shop):
    response = api(client, "POST", "/api/products/2/reviews", {"rating": 4, "customer_id": 1})

    assert response.status_code == 201
    review = db_session.get(Review, 1)
    assert response.get_json() == {
        "id": 1,
        "product_id": 2,
        "customer_id": 1,
        "rating": 4,
        "body": "",
        "created_at": review.created_at.isoformat(),
    }
    event_type, aggregate, aggregate_id, payload, _ = last_event(db_session)
    assert (event_type, aggregate, aggregate_id) == ("ReviewAdded", "product", "2")
    assert stamp(payload.pop("created_at")) == review.created_at
    assert payload == {"review_id": 1, "product_id": 2, "customer_id": 1, "rating": 4}


def test_register_customer_records_the_normalized_email(client, db_session):
    response = api(client, "POST", "/api/customers", {"email": "Bo@Example.COM", "name": "Bo"})

    assert response.status_code == 201
    customer = db_session.get(Customer, 1)
    event_type, aggregate, aggregate_id, payload, correlation = last_event(db_session)
    assert (event_type, aggregate, aggregate_id, correlation) == (
        "CustomerRegistered",
        "customer",
        "1",
        REQUEST_ID,
    )
    assert stamp(payload.pop("created_at")) == customer.created_at
    assert payload == {"customer_id": 1, "email": "bo@example.com", "name": "Bo"}


def test_update_customer_records_customer_updated(client, db_session, shop):
    response = api(client, "PATCH", "/api/customers/1", {"name": "Ann B"})

    assert response.status_code == 200
    assert events(db_session) == [
        (
            "CustomerUpdated",
            "customer",
            "1",
            {"customer_id": 1, "email": "ann@example.com", "name": "Ann B"},
            REQUEST_ID,
        )
    ]


def test_delete_customer_records_customer_deleted(client, db_session, shop):
    response = api(client, "DELETE", "/api/customers/1")

    assert response.status_code == 204
    assert events(db_session) == [
        ("CustomerDeleted", "customer", "1", {"customer_id": 1}, REQUEST_ID)
    ]


def test_place_order_records_lines_with_category_and_stock_after(client, db_session, shop):
    response = place(client, (2, 2), (1, 3))

    assert response.status_code == 201
    order = db_session.get(Order, 1)
    event_type, aggregate, aggregate_id, payload, correlation = last_event(db_session)
    assert (event_type, aggregate, aggregate_id, correlation) == (
        "OrderPlaced",
        "order",
        "1",
        REQUEST_ID,
    )
    assert stamp(payload.pop("created_at")) == order.created_at
    assert payload == {
        "order_id": 1,
        "customer_id": 1,
        "lines": [
            {
                "line_id": 1,
                "product_id": 2,
                "category_id": 2,
                "quantity": 2,
                "unit_price_cents": 250,
                "stock_after": 0,
            },
            {
                "line_id": 2,
                "product_id": 1,
                "category_id": 1,
                "quantity": 3,
                "unit_price_cents": 1000,
                "stock_after": 2,
            },
        ],
    }


def test_pay_and_ship_record_the_stored_stamps(client, db_session, shop):
    place(client, (1, 1))
    assert api(client, "POST", "/api/orders/1/pay", request_id="pay-1").status_code == 200
    assert api(client, "POST", "/api/orders/1/ship", request_id="ship-1").status_code == 200

    order = db_session.get(Order, 1)
    paid, shipped = events(db_session)[1:]
    assert paid[:3] == ("OrderPaid", "order", "1") and paid[4] == "pay-1"
    assert paid[3] == {"order_id": 1, "customer_id": 1, "paid_at": paid[3]["paid_at"]}
    assert stamp(paid[3]["paid_at"]) == order.paid_at
    assert shipped[:3] == ("OrderShipped", "order", "1") and shipped[4] == "ship-1"
    assert stamp(shipped[3]["shipped_at"]) == order.shipped_at
    assert set(shipped[3]) == {"order_id", "customer_id", "shipped_at"}


def test_cancel_records_the_order_lines_and_the_stock_given_back(client, db_session, shop):
    place(client, (1, 4), (2, 1))
    response = api(client, "POST", "/api/orders/1/cancel")

    assert response.status_code == 200
    order = db_session.get(Order, 1)
    event_type, _, aggregate_id, payload, _ = last_event(db_session)
    assert (event_type, aggregate_id) == ("OrderCancelled", "1")
    assert stamp(payload.pop("created_at")) == order.created_at
    assert stamp(payload.pop("cancelled_at")) == order.cancelled_at
    assert payload == {
        "order_id": 1,
        "customer_id": 1,
        "lines": [
            {
                "line_id": 1,
                "product_id": 1,
                "category_id": 1,
                "quantity": 4,
                "unit_price_cents": 1000,
                "stock_after": 5,
            },
            {
                "line_id": 2,
                "product_id": 2,
                "category_id": 2,
                "quantity": 1,
                "unit_price_cents": 250,
                "stock_after": 2,
            },
        ],
    }


def test_a_request_without_request_id_gets_one_and_the_outbox_keeps_it(client, db_session):
    response = client.post("/api/categories", json={"name": "Hall"})

    correlation = response.headers["X-Request-ID"]
    assert len(correlation) == 32
    assert outbox_rows(db_session)[0]["correlation_id"] == correlation


def order(*lines):
    return {"customer_id": 1, "lines": [{"product_id": p, "quantity": q} for p, q in lines]}


NEW_MUG = {"sku": "MUG", "name": "x", "price_cents": 1, "category_id": 1}

#: (method, url, body, status, a field the error names); run after order 1 (MUG x1).
FAILING_REQUESTS = [
    pytest.param("POST", "/api/orders", order((1, 6)), 409, "lines.0.quantity", id="no-stock"),
    pytest.param(
        "POST", "/api/orders", order((1, 2), (2, 3)), 409, "lines.1.quantity", id="line-2-short"
    ),
    pytest.param("POST", "/api/orders", order((9, 1)), 422, "lines.0.product_id", id="unknown"),
    pytest.param("POST", "/api/orders", order(), 422, "lines", id="no-lines"),
    pytest.param("POST", "/api/orders/1/ship", None, 409, "status", id="ship-unpaid"),
    pytest.param("POST", "/api/orders/7/pay", None, 404, "order_id", id="unknown-order"),
    pytest.param("POST", "/api/products", NEW_MUG, 409, "sku", id="duplicate-sku"),
    pytest.param("PATCH", "/api/products/1", {"category_id": 9}, 422, "category_id", id="no-cat"),
    pytest.param("PATCH", "/api/products/1", {}, 422, "body", id="empty-patch"),
    pytest.param("DELETE", "/api/products/1", None, 409, "product_id", id="delete-ordered"),
    pytest.param(
        "POST", "/api/products/9/restock", {"quantity": 1}, 404, "product_id", id="restock-404"
    ),
    pytest.param("POST", "/api/products/1/reviews", {"rating": 6}, 422, "rating", id="rating-6"),
    pytest.param(
        "POST",
        "/api/products/1/reviews",
        {"rating": 3, "customer_id": 5},
        422,
        "customer_id",
        id="review-by-unknown-customer",
    ),
    pytest.param("POST", "/api/categories", {"name": "Kitchen"}, 409, "name", id="dup-category"),
    pytest.param(
        "POST",
        "/api/customers",
        {"email": "ANN@example.com", "name": "A"},
        409,
        "email",
        id="duplicate-email",
    ),
    pytest.param("DELETE", "/api/customers/1", None, 409, "customer_id", id="customer-ordered"),
]


@pytest.mark.parametrize(("method", "url", "body", "status", "field"), FAILING_REQUESTS)
def test_a_failing_command_writes_nothing(
    client, db_session, shop, method, url, body, status, field
):
    assert place(client, (1, 1)).status_code == 201  # order 1, so the read models hold rows
    before = every_row(db_session)

    response = api(client, method, url, body)

    assert response.status_code == status, response.get_json()
    assert field in [f["field"] for f in response.get_json()["error"]["fields"]]
    db_session.expire_all()
    assert every_row(db_session) == before


def test_a_failure_after_the_events_are_recorded_rolls_everything_back(
    app, client, db_session, shop
):
    """A receiver of events-recorded runs inside the transaction: its failure aborts the
    command, so the order, its stock change, its outbox row and its projections all vanish."""
    before = every_row(db_session)

    def refuse(_sender, **_extra):
        raise RuntimeError("listener failed")

    signals.events_recorded.connect(refuse, sender=app)
    try:
        response = place(client, (1, 1))
    finally:
        signals.events_recorded.disconnect(refuse, sender=app)

    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal_error"
    db_session.expire_all()
    assert every_row(db_session) == before


def test_commands_refuse_what_the_api_refuses():
    with pytest.raises(ValidationError):
        c.CreateProduct(sku="", name="x", price_cents=1, category_id=1)
    with pytest.raises(ValidationError):
        c.PlaceOrder(customer_id=1, lines=())
    with pytest.raises(ValidationError):
        c.RestockProduct(product_id=1, quantity="3")  # type: ignore[arg-type]  # strict: no coercion
    line = c.OrderLineRequest(product_id=1, quantity=2)
    assert c.PlaceOrder(customer_id=1, lines=(line,)).lines == (line,)


def test_rows_written_by_a_command_are_those_the_legacy_view_writes(client, db_session, shop):
    """The command path calls the legacy services: the same rows, not a re-implementation."""
    place(client, (1, 2))
    rows = db_session.execute(
        select(OrderLine.product_id, OrderLine.quantity, OrderLine.unit_price_cents)
    ).all()
    assert rows == [(1, 2, 1000)]
    assert db_session.scalar(select(Stock.quantity).where(Stock.product_id == 1)) == 3

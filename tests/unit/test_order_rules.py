"""Domain rules of the order and customer services, called directly with a session."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from legacy_app.errors import Conflict, NotFound, Unprocessable
from legacy_app.models import ALLOWED_TRANSITIONS, Order, OrderLine, OrderStatus, Stock
from legacy_app.services import customers as customer_service
from legacy_app.services import orders as order_service
from legacy_app.services.orders import Line

from ..factories import CustomerFactory, OrderFactory, OrderLineFactory, ProductFactory

ALL_PAIRS = [(current, target) for current in OrderStatus for target in OrderStatus]


def stock_of(db_session, product_id):
    return db_session.scalar(select(Stock.quantity).where(Stock.product_id == product_id))


def row_counts(db_session):
    return (
        db_session.scalar(select(func.count()).select_from(Order)),
        db_session.scalar(select(func.count()).select_from(OrderLine)),
    )


def test_transition_table_is_the_documented_one():
    assert {(c, t) for c, t in ALL_PAIRS if t in ALLOWED_TRANSITIONS[c]} == {
        (OrderStatus.PLACED, OrderStatus.PAID),
        (OrderStatus.PLACED, OrderStatus.CANCELLED),
        (OrderStatus.PAID, OrderStatus.SHIPPED),
        (OrderStatus.PAID, OrderStatus.CANCELLED),
    }


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS)
def test_change_status_follows_allowed_transitions(app, db_session, current, target):
    order = OrderFactory(status=current.value)
    OrderLineFactory(order=order, product=ProductFactory(stock__quantity=10), quantity=3)
    db_session.commit()
    if target in ALLOWED_TRANSITIONS[current]:
        changed = order_service.change_status(db_session, 1, target)
        db_session.commit()
        assert changed.status == target.value
        stamp = order_service.STATUS_TIMESTAMPS[target]
        assert getattr(changed, stamp) is not None
        returned = 3 if target is OrderStatus.CANCELLED else 0
        assert stock_of(db_session, 1) == 10 + returned
    else:
        with pytest.raises(Conflict) as caught:
            order_service.change_status(db_session, 1, target)
        db_session.rollback()
        assert caught.value.fields == [
            {
                "field": "status",
                "reason": f"order 1 is {current.value} and cannot become {target.value}",
            }
        ]
        assert db_session.get(Order, 1).status == current.value
        assert stock_of(db_session, 1) == 10


def test_change_status_refuses_when_status_changed_since_it_was_read(app, db_session):
    """The conditional UPDATE catches a concurrent cancel that the loaded object missed."""
    order = OrderFactory(status="placed")
    OrderLineFactory(order=order, product=ProductFactory(stock__quantity=10), quantity=3)
    db_session.commit()
    assert db_session.get(Order, 1).status == "placed"  # now cached in the identity map
    with db_session.get_bind().begin() as other:  # another request cancels and commits
        other.execute(text("UPDATE orders SET status = 'cancelled' WHERE id = 1"))
        other.execute(text("UPDATE stock SET quantity = 13 WHERE product_id = 1"))
    with pytest.raises(Conflict, match="order 1 is cancelled and cannot become cancelled"):
        order_service.cancel_order(db_session, 1)
    db_session.rollback()
    assert stock_of(db_session, 1) == 13  # returned once, by the other request only


def test_change_status_of_unknown_order_is_not_found(app, db_session):
    with pytest.raises(NotFound) as caught:
        order_service.pay_order(db_session, 1)
    assert caught.value.fields[0]["field"] == "order_id"


def test_place_order_captures_prices_and_takes_stock(app, db_session):
    CustomerFactory()
    ProductFactory(price_cents=1299, stock__quantity=5)
    ProductFactory(price_cents=250, stock__quantity=3)
    db_session.commit()
    loaded = db_session.get(Stock, 1)  # loaded before: must not stay stale
    assert loaded.quantity == 5
    order = order_service.place_order(db_session, 1, [Line(2, 3), Line(1, 2)])
    db_session.commit()
    assert order.status == "placed"
    assert [(line.product_id, line.quantity, line.unit_price_cents) for line in order.lines] == [
        (2, 3, 250),
        (1, 2, 1299),
    ]
    assert loaded.quantity == 3
    assert stock_of(db_session, 2) == 0


def test_place_order_reports_every_invalid_input_together(app, db_session):
    ProductFactory()
    db_session.commit()
    lines = [Line(1, 1), Line(8, 1), Line(1, 0), Line(2**40, 1)]
    with pytest.raises(Unprocessable) as caught:
        order_service.place_order(db_session, 5, lines)
    assert caught.value.fields == [
        {"field": "customer_id", "reason": "customer 5 does not exist"},
        {"field": "lines.1.product_id", "reason": "product 8 does not exist"},
        {"field": "lines.2.product_id", "reason": "product 1 is listed more than once"},
        {"field": "lines.2.quantity", "reason": "must be between 1 and 1000"},
        {"field": "lines.3.product_id", "reason": f"product {2**40} does not exist"},
    ]
    db_session.rollback()
    assert row_counts(db_session) == (0, 0)
    assert stock_of(db_session, 1) == 10


def test_place_order_needs_at_least_one_line(app, db_session):
    CustomerFactory()
    db_session.commit()
    with pytest.raises(Unprocessable) as caught:
        order_service.place_order(db_session, 1, [])
    assert [f["field"] for f in caught.value.fields] == ["lines"]


def test_shortage_names_lines_in_request_order_and_is_undone_by_rollback(app, db_session):
    CustomerFactory()
    ProductFactory(stock__quantity=1)  # 1
    ProductFactory(stock__quantity=9)  # 2
    ProductFactory(stock__quantity=0)  # 3
    db_session.commit()
    with pytest.raises(Conflict) as caught:
        order_service.place_order(db_session, 1, [Line(3, 2), Line(2, 9), Line(1, 2)])
    assert caught.value.fields == [
        {"field": "lines.0.quantity", "reason": "requested 2, only 0 in stock"},
        {"field": "lines.2.quantity", "reason": "requested 2, only 1 in stock"},
    ]
    db_session.rollback()
    assert [stock_of(db_session, p) for p in (1, 2, 3)] == [1, 9, 0]
    assert row_counts(db_session) == (0, 0)


def test_create_customer_normalizes_email_and_refuses_duplicates(app, db_session):
    customer = customer_service.create_customer(db_session, email=" Ann@X.io ", name="Ann")
    db_session.commit()
    assert (customer.id, customer.email) == (1, "ann@x.io")
    with pytest.raises(Conflict) as caught:
        customer_service.create_customer(db_session, email="ANN@x.io", name="Other")
    assert caught.value.fields[0]["field"] == "email"


def test_update_customer_keeps_unset_fields(app, db_session):
    CustomerFactory(email="a@x.io", name="Ann")
    db_session.commit()
    updated = customer_service.update_customer(db_session, 1, name="Annie")
    assert (updated.email, updated.name) == ("a@x.io", "Annie")
    with pytest.raises(NotFound):
        customer_service.update_customer(db_session, 2, name="X")


def test_delete_customer_refuses_when_orders_exist(app, db_session):
    OrderFactory()
    db_session.commit()
    with pytest.raises(Conflict, match="customer 1 has 1 order"):
        customer_service.delete_customer(db_session, 1)

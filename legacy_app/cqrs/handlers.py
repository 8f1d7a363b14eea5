"""Command handlers: ``handler(command, uow)`` calls the legacy service on ``uow.session``
and records what happened.

The services stay the write model: they check the rules, raise the same ``ApiError``s the
legacy views raise, and flush. A handler adds the events, filled from the rows as written
(timestamps as stored, stock levels after the change, category names), so projections
never have to read the write model. The unit of work commits, or rolls everything back
when anything raises. Each handler returns what its endpoint's ``respond`` needs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from cqrs_layer import Command, UnitOfWork

from ..fields import fits_db_int
from ..models import Category, Order, OrderLine, OrderStatus, Product, Stock
from ..services import catalog as catalog_services
from ..services import customers as customer_services
from ..services import orders as order_services
from . import commands as c
from . import events as ev

# -- catalog -------------------------------------------------------------------------------


def _category_name(session: Session, category_id: int) -> str:
    return session.scalars(select(Category.name).where(Category.id == category_id)).one()


def _stock_level(session: Session, product_id: int) -> int:
    return session.scalars(select(Stock.quantity).where(Stock.product_id == product_id)).one()


def create_product(command: c.CreateProduct, uow: UnitOfWork) -> int:
    session = uow.session
    product = catalog_services.create_product(
        session, **command.model_dump(include=_CREATE_PRODUCT_FIELDS)
    )
    uow.record(
        ev.ProductCreated(
            product_id=product.id,
            sku=product.sku,
            name=product.name,
            description=product.description,
            price_cents=product.price_cents,
            category_id=product.category_id,
            category_name=_category_name(session, product.category_id),
            stock=_stock_level(session, product.id),
            created_at=product.created_at,
            updated_at=product.updated_at,
        )
    )
    return product.id


_CREATE_PRODUCT_FIELDS = {"sku", "name", "price_cents", "category_id", "description", "stock"}
_UPDATE_PRODUCT_FIELDS = ("sku", "name", "price_cents", "category_id", "description")


def update_product(command: c.UpdateProduct, uow: UnitOfWork) -> int:
    session = uow.session
    # Loaded first (the service then finds it in the identity map) to know where it was.
    before = session.get(Product, command.product_id) if fits_db_int(command.product_id) else None
    previous_category_id = before.category_id if before is not None else 0
    changes = {name: getattr(command, name) for name in _UPDATE_PRODUCT_FIELDS}
    product = catalog_services.update_product(
        session, command.product_id, expected_versions=command.expected_versions, **changes
    )
    uow.record(
        ev.ProductUpdated(
            product_id=product.id,
            sku=product.sku,
            name=product.name,
            description=product.description,
            price_cents=product.price_cents,
            category_id=product.category_id,
            category_name=_category_name(session, product.category_id),
            previous_category_id=previous_category_id,
            updated_at=product.updated_at,
        )
    )
    return product.id


def delete_product(command: c.DeleteProduct, uow: UnitOfWork) -> None:
    catalog_services.delete_product(
        uow.session, command.product_id, expected_versions=command.expected_versions
    )
    uow.record(ev.ProductDeleted(product_id=command.product_id))


def restock_product(command: c.RestockProduct, uow: UnitOfWork) -> int:
    session = uow.session
    catalog_services.restock(
        session,
        command.product_id,
        command.quantity,
        expected_versions=command.expected_versions,
    )
    updated_at = session.scalars(
        select(Product.updated_at).where(Product.id == command.product_id)
    ).one()
    uow.record(
        ev.ProductRestocked(
            product_id=command.product_id,
            quantity=command.quantity,
            stock=_stock_level(session, command.product_id),
            updated_at=updated_at,
        )
    )
    return command.product_id


def add_review(command: c.AddReview, uow: UnitOfWork) -> int:
    review = catalog_services.add_review(
        uow.session,
        command.product_id,
        rating=command.rating,
        body=command.body,
        customer_id=command.customer_id,
    )
    uow.record(
        ev.ReviewAdded(
            review_id=review.id,
            product_id=review.product_id,
            customer_id=review.customer_id,
            rating=review.rating,
            created_at=review.created_at,
        )
    )
    return review.id


def create_category(command: c.CreateCategory, uow: UnitOfWork) -> int:
    category = catalog_services.create_category(uow.session, name=command.name)
    uow.record(ev.CategoryCreated(category_id=category.id, name=category.name))
    return category.id


# -- customers -----------------------------------------------------------------------------


def register_customer(command: c.RegisterCustomer, uow: UnitOfWork) -> int:
    customer = customer_services.create_customer(
        uow.session, email=command.email, name=command.name
    )
    uow.record(
        ev.CustomerRegistered(
            customer_id=customer.id,
            email=customer.email,
            name=customer.name,
            created_at=customer.created_at,
        )
    )
    return customer.id


def update_customer(command: c.UpdateCustomer, uow: UnitOfWork) -> int:
    customer = customer_services.update_customer(
        uow.session,
        command.customer_id,
        email=command.email,
        name=command.name,
        expected_versions=command.expected_versions,
    )
    uow.record(
        ev.CustomerUpdated(customer_id=customer.id, email=customer.email, name=customer.name)
    )
    return customer.id


def delete_customer(command: c.DeleteCustomer, uow: UnitOfWork) -> None:
    customer_services.delete_customer(
        uow.session, command.customer_id, expected_versions=command.expected_versions
    )
    uow.record(ev.CustomerDeleted(customer_id=command.customer_id))


# -- orders --------------------------------------------------------------------------------


#: Built once (a statement memoizes its cache key): it runs for every order placed or
#: cancelled, and building the construct each time costs more than running it.
_LINE_SNAPSHOTS = (
    select(
        OrderLine.id,
        OrderLine.product_id,
        Product.category_id,
        OrderLine.quantity,
        OrderLine.unit_price_cents,
        Stock.quantity,
    )
    .join(Product, Product.id == OrderLine.product_id)
    .join(Stock, Stock.product_id == OrderLine.product_id)
    .where(OrderLine.order_id == bindparam("order_id"))
    .order_by(OrderLine.id)
)


def _line_snapshots(session: Session, order_id: int) -> list[ev.OrderLineSnapshot]:
    """The order's lines with each product's category and its stock level now (after this
    transaction's change: the stock rows are ours until commit)."""
    rows = session.execute(_LINE_SNAPSHOTS, {"order_id": order_id}).all()
    return [
        ev.OrderLineSnapshot(
            line_id=line_id,
            product_id=product_id,
            category_id=category_id,
            quantity=quantity,
            unit_price_cents=unit_price_cents,
            stock_after=stock_after,
        )
        for line_id, product_id, category_id, quantity, unit_price_cents, stock_after in rows
    ]


def place_order(command: c.PlaceOrder, uow: UnitOfWork) -> int:
    session = uow.session
    order = order_services.place_order(session, command.customer_id, command.lines)
    uow.record(
        ev.OrderPlaced(
            order_id=order.id,
            customer_id=order.customer_id,
            created_at=order.created_at,
            lines=_line_snapshots(session, order.id),
        )
    )
    return order.id


def _changed_order(session: Session, order_id: int, target: OrderStatus) -> Order:
    order = order_services.change_status(session, order_id, target)
    session.refresh(order)  # the status UPDATE bypassed the ORM: read the stored stamps
    return order


def pay_order(command: c.PayOrder, uow: UnitOfWork) -> int:
    order = _changed_order(uow.session, command.order_id, OrderStatus.PAID)
    assert order.paid_at is not None
    uow.record(
        ev.OrderPaid(order_id=order.id, customer_id=order.customer_id, paid_at=order.paid_at)
    )
    return order.id


def ship_order(command: c.ShipOrder, uow: UnitOfWork) -> int:
    order = _changed_order(uow.session, command.order_id, OrderStatus.SHIPPED)
    assert order.shipped_at is not None
    uow.record(
        ev.OrderShipped(
            order_id=order.id, customer_id=order.customer_id, shipped_at=order.shipped_at
        )
    )
    return order.id


def cancel_order(command: c.CancelOrder, uow: UnitOfWork) -> int:
    session = uow.session
    order = _changed_order(session, command.order_id, OrderStatus.CANCELLED)
    assert order.cancelled_at is not None
    uow.record(
        ev.OrderCancelled(
            order_id=order.id,
            customer_id=order.customer_id,
            created_at=order.created_at,
            cancelled_at=order.cancelled_at,
            lines=_line_snapshots(session, order.id),
        )
    )
    return order.id


Handler = Callable[[Any, UnitOfWork], Any]

#: Every command and its handler, for the wiring to register.
HANDLERS: dict[type[Command], Handler] = {
    c.CreateProduct: create_product,
    c.UpdateProduct: update_product,
    c.DeleteProduct: delete_product,
    c.RestockProduct: restock_product,
    c.AddReview: add_review,
    c.CreateCategory: create_category,
    c.RegisterCustomer: register_customer,
    c.UpdateCustomer: update_customer,
    c.DeleteCustomer: delete_customer,
    c.PlaceOrder: place_order,
    c.PayOrder: pay_order,
    c.ShipOrder: ship_order,
    c.CancelOrder: cancel_order,
}

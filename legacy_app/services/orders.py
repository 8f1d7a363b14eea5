"""Order writes: placing an order and moving it through its statuses.

Plain functions over a SQLAlchemy session and already-checked arguments; they never
commit. When one raises an ``ApiError`` it may already have decremented some stock, so
the caller must roll back (the API's error handler does) — that is what makes a failed
order leave nothing behind.

Concurrency: stock is taken with one conditional UPDATE per line and a status change is
a conditional UPDATE on the status it was read in, so two requests racing for the last
unit, or cancelling the same order twice, can never oversell or return stock twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..errors import Conflict, NotFound, Unprocessable
from ..fields import MAX_DB_INT
from ..models import ALLOWED_TRANSITIONS, Customer, Order, OrderLine, OrderStatus, Product, Stock
from ..types import utcnow

MAX_LINES = 100
MAX_LINE_QUANTITY = 1000

# The timestamp column each target status stamps.
STATUS_TIMESTAMPS: dict[OrderStatus, str] = {
    OrderStatus.PAID: "paid_at",
    OrderStatus.SHIPPED: "shipped_at",
    OrderStatus.CANCELLED: "cancelled_at",
}


class LineRequest(Protocol):
    """What an order line asks for; request bodies and commands both fit."""

    @property
    def product_id(self) -> int: ...

    @property
    def quantity(self) -> int: ...


@dataclass(frozen=True)
class Line:
    product_id: int
    quantity: int


def order_or_404(session: Session, order_id: int) -> Order:
    order = session.get(Order, order_id) if 0 < order_id <= MAX_DB_INT else None
    if order is None:
        raise NotFound(f"order {order_id} does not exist", field="order_id")
    return order


def _check_lines(
    session: Session, customer_id: int, lines: Sequence[LineRequest]
) -> dict[int, Product]:
    """Every 422 the request deserves, reported together; the products by id."""
    problems: list[dict[str, str]] = []
    if not 0 < customer_id <= MAX_DB_INT or session.get(Customer, customer_id) is None:
        problems.append(
            {"field": "customer_id", "reason": f"customer {customer_id} does not exist"}
        )
    if not 1 <= len(lines) <= MAX_LINES:
        problems.append({"field": "lines", "reason": f"must have 1 to {MAX_LINES} lines"})
    wanted = {line.product_id for line in lines if 0 < line.product_id <= MAX_DB_INT}
    products = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(wanted)))}
    seen: set[int] = set()
    for index, line in enumerate(lines):
        if line.product_id not in products:
            reason = f"product {line.product_id} does not exist"
            problems.append({"field": f"lines.{index}.product_id", "reason": reason})
        elif line.product_id in seen:
            reason = f"product {line.product_id} is listed more than once"
            problems.append({"field": f"lines.{index}.product_id", "reason": reason})
        seen.add(line.product_id)
        if not 1 <= line.quantity <= MAX_LINE_QUANTITY:
            reason = f"must be between 1 and {MAX_LINE_QUANTITY}"
            problems.append({"field": f"lines.{index}.quantity", "reason": reason})
    if problems:
        summary = "; ".join(f"{p['field']}: {p['reason']}" for p in problems)
        raise Unprocessable(f"invalid input ({summary})", fields=problems)
    return products


def _take_stock(session: Session, lines: Sequence[LineRequest]) -> None:
    """Decrement stock for every line, or raise 409 naming each line that lacks it.

    Rows are updated in product id order so two orders over the same products lock them
    in the same order and cannot deadlock on PostgreSQL.
    """
    shortages: list[dict[str, str]] = []
    now = utcnow()
    for index, line in sorted(enumerate(lines), key=lambda pair: pair[1].product_id):
        taken = session.execute(
            update(Stock)
            .where(Stock.product_id == line.product_id, Stock.quantity >= line.quantity)
            .values(quantity=Stock.quantity - line.quantity, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(taken) == 1:
            continue
        available = session.scalar(
            select(Stock.quantity).where(Stock.product_id == line.product_id)
        )
        reason = f"requested {line.quantity}, only {available or 0} in stock"
        shortages.append({"field": f"lines.{index}.quantity", "reason": reason})
    _expire_loaded_stock(session)
    if shortages:
        shortages.sort(key=lambda s: int(s["field"].split(".")[1]))
        summary = "; ".join(f"{s['field']}: {s['reason']}" for s in shortages)
        raise Conflict(f"insufficient stock ({summary})", fields=shortages)


def _expire_loaded_stock(session: Session) -> None:
    # The UPDATEs bypass the identity map; Stock objects loaded earlier would be stale.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Stock):
            session.expire(obj)


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0))


def place_order(session: Session, customer_id: int, lines: Sequence[LineRequest]) -> Order:
    """A new ``placed`` order; stock is taken and unit prices captured in this transaction."""
    products = _check_lines(session, customer_id, lines)
    prices = {product_id: product.price_cents for product_id, product in products.items()}
    _take_stock(session, lines)
    order = Order(customer_id=customer_id, status=OrderStatus.PLACED.value, created_at=utcnow())
    order.lines = [
        OrderLine(
            product_id=line.product_id,
            quantity=line.quantity,
            unit_price_cents=prices[line.product_id],
        )
        for line in lines
    ]
    session.add(order)
    session.flush()
    return order


def change_status(session: Session, order_id: int, target: OrderStatus) -> Order:
    """Move an order to ``target`` if ALLOWED_TRANSITIONS permits; cancelling returns stock."""
    order = order_or_404(session, order_id)
    current = OrderStatus(order.status)
    if target not in ALLOWED_TRANSITIONS[current]:
        raise _invalid_transition(order_id, current, target)
    now = utcnow()
    # Conditional on the status we just read: of two racing requests only one matches.
    moved = session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == current.value)
        .values({"status": target.value, STATUS_TIMESTAMPS[target]: now})
        .execution_options(synchronize_session=False)
    )
    if _rowcount(moved) != 1:
        session.expire(order)
        raise _invalid_transition(order_id, OrderStatus(order.status), target)
    if target is OrderStatus.CANCELLED:
        _return_stock(session, order_id, now)
    session.expire(order)
    return order


def _return_stock(session: Session, order_id: int, now: datetime) -> None:
    lines = session.execute(
        select(OrderLine.product_id, OrderLine.quantity)
        .where(OrderLine.order_id == order_id)
        .order_by(OrderLine.product_id)
    ).all()
    for product_id, quantity in lines:
        session.execute(
            update(Stock)
            .where(Stock.product_id == product_id)
            .values(quantity=Stock.quantity + quantity, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    _expire_loaded_stock(session)


def _invalid_transition(order_id: int, current: OrderStatus, target: OrderStatus) -> Conflict:
    return Conflict(
        f"order {order_id} is {current.value} and cannot become {target.value}", field="status"
    )


def pay_order(session: Session, order_id: int) -> Order:
    return change_status(session, order_id, OrderStatus.PAID)


def ship_order(session: Session, order_id: int) -> Order:
    return change_status(session, order_id, OrderStatus.SHIPPED)


def cancel_order(session: Session, order_id: int) -> Order:
    return change_status(session, order_id, OrderStatus.CANCELLED)

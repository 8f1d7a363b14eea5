"""The customer read side: the customer list, one customer, order history, summary.

History and summary are aggregates computed from the normalized tables on each request —
one GROUP BY query per page, never one query per order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, cast, distinct, func, select, type_coerce
from sqlalchemy.orm import Session

from ..models import Category, Customer, Order, OrderLine, OrderStatus, Product
from ..types import UTCDateTime
from .text_search import contains_text


def customer_json(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "email": customer.email,
        "name": customer.name,
        "created_at": customer.created_at.isoformat(),
    }


def list_customers(
    session: Session, q: str | None, page: int, per_page: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of customers by id, optionally filtered by a name/email substring."""
    conditions = []
    if q:
        conditions.append(contains_text(q, Customer.name, Customer.email))
    page_stmt = (
        select(Customer)
        .where(*conditions)
        .order_by(Customer.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    count_stmt = select(func.count()).select_from(Customer).where(*conditions)
    items = [customer_json(c) for c in session.scalars(page_stmt)]
    return items, int(session.execute(count_stmt).scalar_one())


def get_customer(session: Session, customer_id: int) -> dict[str, Any] | None:
    customer = session.get(Customer, customer_id)
    return customer_json(customer) if customer is not None else None


def _money(quantity: Any, unit_price_cents: Any) -> Any:
    # BIGINT product: quantity * price may pass PostgreSQL's 32-bit INTEGER range.
    return cast(quantity, BigInteger) * unit_price_cents


def order_history(
    session: Session, customer_id: int, page: int, per_page: int
) -> tuple[list[dict[str, Any]], int]:
    """A customer's orders newest first, each with its totals; cancelled ones included."""
    page_stmt = (
        select(
            Order.id,
            Order.status,
            Order.created_at,
            func.count(OrderLine.id).label("line_count"),
            func.coalesce(func.sum(OrderLine.quantity), 0).label("item_count"),
            func.coalesce(
                func.sum(_money(OrderLine.quantity, OrderLine.unit_price_cents)), 0
            ).label("total_cents"),
        )
        .select_from(Order)
        .outerjoin(OrderLine, OrderLine.order_id == Order.id)
        .where(Order.customer_id == customer_id)
        .group_by(Order.id, Order.status, Order.created_at)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    count_stmt = select(func.count()).select_from(Order).where(Order.customer_id == customer_id)
    items = [
        {
            "id": row.id,
            "status": row.status,
            "created_at": row.created_at.isoformat(),
            "line_count": int(row.line_count),
            "item_count": int(row.item_count),
            # PostgreSQL sums BIGINT as NUMERIC, which arrives as Decimal.
            "total_cents": int(row.total_cents),
        }
        for row in session.execute(page_stmt)
    ]
    return items, int(session.execute(count_stmt).scalar_one())


def _not_cancelled(customer_id: int) -> list[Any]:
    return [Order.customer_id == customer_id, Order.status != OrderStatus.CANCELLED.value]


def customer_summary(session: Session, customer_id: int) -> dict[str, Any]:
    """Lifetime figures over the customer's non-cancelled orders."""
    totals = session.execute(
        select(
            func.count(distinct(Order.id)).label("order_count"),
            func.coalesce(
                func.sum(_money(OrderLine.quantity, OrderLine.unit_price_cents)), 0
            ).label("lifetime_value"),
            # Typed explicitly so SQLite's text and PostgreSQL's naive values both come
            # back as aware UTC datetimes.
            type_coerce(func.min(Order.created_at), UTCDateTime).label("first_order_at"),
            type_coerce(func.max(Order.created_at), UTCDateTime).label("last_order_at"),
        )
        .select_from(Order)
        .outerjoin(OrderLine, OrderLine.order_id == Order.id)
        .where(*_not_cancelled(customer_id))
    ).one()
    order_count = int(totals.order_count)
    lifetime_value = int(totals.lifetime_value)
    return {
        "customer_id": customer_id,
        "order_count": order_count,
        "lifetime_value_cents": lifetime_value,
        "average_order_value_cents": lifetime_value // order_count if order_count else 0,
        "first_order_at": _iso(totals.first_order_at),
        "last_order_at": _iso(totals.last_order_at),
        "favourite_category": _favourite_category(session, customer_id),
    }


def _favourite_category(session: Session, customer_id: int) -> dict[str, Any] | None:
    """The category with the most units bought; ties go to the lowest category id."""
    units = func.sum(OrderLine.quantity)
    row = session.execute(
        select(Category.id, Category.name, units.label("units"))
        .select_from(OrderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .join(Product, Product.id == OrderLine.product_id)
        .join(Category, Category.id == Product.category_id)
        .where(*_not_cancelled(customer_id))
        .group_by(Category.id, Category.name)
        .order_by(units.desc(), Category.id.asc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return {"id": row.id, "name": row.name, "units": int(row.units)}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None

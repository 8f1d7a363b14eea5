"""The order read side: one order with its lines, as order JSON."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Order, OrderLine, Product


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def line_json(line: OrderLine, sku: str, name: str) -> dict[str, Any]:
    return {
        "id": line.id,
        "product_id": line.product_id,
        "sku": sku,
        "name": name,
        "quantity": line.quantity,
        "unit_price_cents": line.unit_price_cents,
        "line_total_cents": line.quantity * line.unit_price_cents,
    }


def order_json(order: Order, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": order.id,
        "customer_id": order.customer_id,
        "status": order.status,
        "created_at": order.created_at.isoformat(),
        "paid_at": _iso(order.paid_at),
        "shipped_at": _iso(order.shipped_at),
        "cancelled_at": _iso(order.cancelled_at),
        "lines": lines,
        "item_count": sum(line["quantity"] for line in lines),
        "total_cents": sum(line["line_total_cents"] for line in lines),
    }


def get_order(session: Session, order_id: int) -> dict[str, Any] | None:
    """Order JSON, or None: two queries, the order and its lines joined to their products."""
    order = session.scalars(
        select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    ).first()
    if order is None:
        return None
    rows = session.execute(
        select(OrderLine, Product.sku, Product.name)
        .join(Product, Product.id == OrderLine.product_id)
        .where(OrderLine.order_id == order_id)
        .order_by(OrderLine.id)
    ).all()
    return order_json(order, [line_json(line, sku, name) for line, sku, name in rows])

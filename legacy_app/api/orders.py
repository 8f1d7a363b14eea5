"""Orders: placing one, reading one, and moving it through its statuses."""

from __future__ import annotations

from typing import Annotated, Any

from flask import Blueprint
from pydantic import Field

from ..errors import NotFound
from ..extensions import db
from ..fields import MAX_DB_INT
from ..fields import DbId as Id
from ..models import OrderStatus
from ..queries import orders as queries
from ..services import orders as services
from ..validation import StrictBody, parse_body

bp = Blueprint("orders", __name__, url_prefix="/api")


class OrderLineBody(StrictBody):
    product_id: Id
    quantity: Annotated[int, Field(ge=1, le=services.MAX_LINE_QUANTITY)]


class PlaceOrderBody(StrictBody):
    customer_id: Id
    lines: Annotated[list[OrderLineBody], Field(min_length=1, max_length=services.MAX_LINES)]


def _order_json_or_404(order_id: int) -> dict[str, Any]:
    found = queries.get_order(db.session(), order_id) if order_id <= MAX_DB_INT else None
    if found is None:
        raise NotFound(f"order {order_id} does not exist", field="order_id")
    return found


@bp.post("/orders")
def place_order() -> tuple[dict[str, Any], int]:
    body = parse_body(PlaceOrderBody)
    order = services.place_order(db.session(), body.customer_id, body.lines)
    db.session.commit()
    return _order_json_or_404(order.id), 201


@bp.get("/orders/<int:order_id>")
def get_order(order_id: int) -> dict[str, Any]:
    return _order_json_or_404(order_id)


def _transition(order_id: int, target: OrderStatus) -> dict[str, Any]:
    services.change_status(db.session(), order_id, target)
    db.session.commit()
    return _order_json_or_404(order_id)


@bp.post("/orders/<int:order_id>/pay")
def pay_order(order_id: int) -> dict[str, Any]:
    return _transition(order_id, OrderStatus.PAID)


@bp.post("/orders/<int:order_id>/ship")
def ship_order(order_id: int) -> dict[str, Any]:
    return _transition(order_id, OrderStatus.SHIPPED)


@bp.post("/orders/<int:order_id>/cancel")
def cancel_order(order_id: int) -> dict[str, Any]:
    return _transition(order_id, OrderStatus.CANCELLED)

"""The shop's domain events: what happened, with everything the projections need.

Events are "fat": they carry the values the read models need (prices, categories, the
stock level after the change, timestamps exactly as stored) so projections never have to
read the write model, which matters once the read models live in another database.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from cqrs_layer import Event


class _ProductEvent(Event):
    aggregate_type = "product"
    aggregate_id_field = "product_id"


class _OrderEvent(Event):
    aggregate_type = "order"
    aggregate_id_field = "order_id"


class _CustomerEvent(Event):
    aggregate_type = "customer"
    aggregate_id_field = "customer_id"


class CategoryCreated(Event):
    aggregate_type = "category"
    aggregate_id_field = "category_id"

    category_id: int
    name: str


class ProductCreated(_ProductEvent):
    product_id: int
    sku: str
    name: str
    description: str
    price_cents: int
    category_id: int
    category_name: str
    stock: int
    created_at: datetime
    updated_at: datetime


class ProductUpdated(_ProductEvent):
    """The product's full editable state after the change, plus what it was before."""

    product_id: int
    sku: str
    name: str
    description: str
    price_cents: int
    category_id: int
    category_name: str
    previous_category_id: int
    updated_at: datetime


class ProductDeleted(_ProductEvent):
    product_id: int


class ProductRestocked(_ProductEvent):
    product_id: int
    quantity: int
    stock: int  # the level after the restock
    updated_at: datetime  # the product's updated_at after the change (unchanged by restock)


class ReviewAdded(_ProductEvent):
    review_id: int
    product_id: int
    customer_id: int | None
    rating: int
    created_at: datetime


class CustomerRegistered(_CustomerEvent):
    customer_id: int
    email: str
    name: str
    created_at: datetime


class CustomerUpdated(_CustomerEvent):
    customer_id: int
    email: str
    name: str


class CustomerDeleted(_CustomerEvent):
    customer_id: int


class OrderLineSnapshot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    line_id: int
    product_id: int
    category_id: int
    quantity: int
    unit_price_cents: int
    stock_after: int  # the product's stock level once this order's change is applied


class OrderPlaced(_OrderEvent):
    order_id: int
    customer_id: int
    created_at: datetime
    lines: list[OrderLineSnapshot]


class OrderPaid(_OrderEvent):
    order_id: int
    customer_id: int
    paid_at: datetime


class OrderShipped(_OrderEvent):
    order_id: int
    customer_id: int
    shipped_at: datetime


class OrderCancelled(_OrderEvent):
    """Carries the order's lines so projections can take back what it had counted."""

    order_id: int
    customer_id: int
    created_at: datetime
    cancelled_at: datetime
    lines: list[OrderLineSnapshot]

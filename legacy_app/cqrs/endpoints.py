"""The command path of every write endpoint: request -> command, result -> response.

``build(request, view_args)`` parses the body with the SAME body model the legacy view uses
(so a bad request gets the identical error, raised before anything runs) and the If-Match
header the same way, and returns the command; ``respond(result, view_args)`` answers
exactly what the legacy view answers: same status, same JSON from the same legacy
serializers (with the same ETag), 204 for deletes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Request, Response
from flask.typing import ResponseReturnValue

from cqrs_layer import Command

from ..api.customers import CustomerCreate, CustomerUpdate, customer_answer
from ..api.orders import PlaceOrderBody
from ..api.products import (
    CategoryBody,
    CreateProductBody,
    RestockBody,
    ReviewBody,
    UpdateProductBody,
    product_answer,
)
from ..errors import NotFound
from ..etags import expected_versions
from ..extensions import db
from ..fields import MAX_DB_INT
from ..models import Review
from ..queries import catalog as catalog_queries
from ..queries import orders as order_queries
from ..validation import parse_body
from . import commands as c

Json = dict[str, Any]
ViewArgs = dict[str, Any]


# -- the legacy answers --------------------------------------------------------------------


def _order_json(order_id: int) -> Json:
    found = order_queries.get_order(db.session(), order_id) if order_id <= MAX_DB_INT else None
    if found is None:
        raise NotFound(f"order {order_id} does not exist", field="order_id")
    return found


# -- catalog -------------------------------------------------------------------------------


def build_create_product(_request: Request, _view_args: ViewArgs) -> c.CreateProduct:
    return c.CreateProduct(**parse_body(CreateProductBody).model_dump())


def respond_create_product(product_id: int, _view_args: ViewArgs) -> ResponseReturnValue:
    return product_answer(product_id, 201)


def build_update_product(request: Request, view_args: ViewArgs) -> c.UpdateProduct:
    body = parse_body(UpdateProductBody)
    return c.UpdateProduct(
        product_id=view_args["product_id"],
        expected_versions=expected_versions(request),
        **body.model_dump(exclude_unset=True),
    )


def respond_product(product_id: int, _view_args: ViewArgs) -> ResponseReturnValue:
    return product_answer(product_id)


def build_delete_product(request: Request, view_args: ViewArgs) -> c.DeleteProduct:
    return c.DeleteProduct(
        product_id=view_args["product_id"], expected_versions=expected_versions(request)
    )


def respond_deleted_product(_result: None, _view_args: ViewArgs) -> ResponseReturnValue:
    return Response(status=204)


def build_restock_product(request: Request, view_args: ViewArgs) -> c.RestockProduct:
    body = parse_body(RestockBody)
    return c.RestockProduct(
        product_id=view_args["product_id"],
        quantity=body.quantity,
        expected_versions=expected_versions(request),
    )


def build_add_review(_request: Request, view_args: ViewArgs) -> c.AddReview:
    body = parse_body(ReviewBody)
    return c.AddReview(product_id=view_args["product_id"], **body.model_dump())


def respond_add_review(review_id: int, _view_args: ViewArgs) -> ResponseReturnValue:
    review = db.session.get(Review, review_id)
    assert review is not None  # just written by the command
    return catalog_queries.review_json(review), 201


def build_create_category(_request: Request, _view_args: ViewArgs) -> c.CreateCategory:
    return c.CreateCategory(name=parse_body(CategoryBody).name)


def respond_create_category(category_id: int, _view_args: ViewArgs) -> ResponseReturnValue:
    return catalog_queries.get_category(db.session(), category_id) or {}, 201


# -- customers -----------------------------------------------------------------------------


def build_register_customer(_request: Request, _view_args: ViewArgs) -> c.RegisterCustomer:
    body = parse_body(CustomerCreate)
    return c.RegisterCustomer(email=body.email, name=body.name)


def respond_register_customer(customer_id: int, _view_args: ViewArgs) -> ResponseReturnValue:
    return customer_answer(customer_id, 201)


def build_update_customer(request: Request, view_args: ViewArgs) -> c.UpdateCustomer:
    body = parse_body(CustomerUpdate)
    return c.UpdateCustomer(
        customer_id=view_args["customer_id"],
        email=body.email,
        name=body.name,
        expected_versions=expected_versions(request),
    )


def respond_customer(customer_id: int, _view_args: ViewArgs) -> ResponseReturnValue:
    return customer_answer(customer_id)


def build_delete_customer(request: Request, view_args: ViewArgs) -> c.DeleteCustomer:
    return c.DeleteCustomer(
        customer_id=view_args["customer_id"], expected_versions=expected_versions(request)
    )


def respond_deleted_customer(_result: None, _view_args: ViewArgs) -> ResponseReturnValue:
    return "", 204


# -- orders --------------------------------------------------------------------------------


def build_place_order(_request: Request, _view_args: ViewArgs) -> c.PlaceOrder:
    body = parse_body(PlaceOrderBody)
    lines = tuple(
        c.OrderLineRequest(product_id=line.product_id, quantity=line.quantity)
        for line in body.lines
    )
    return c.PlaceOrder(customer_id=body.customer_id, lines=lines)


def respond_place_order(order_id: int, _view_args: ViewArgs) -> ResponseReturnValue:
    return _order_json(order_id), 201


def build_pay_order(_request: Request, view_args: ViewArgs) -> c.PayOrder:
    return c.PayOrder(order_id=view_args["order_id"])


def build_ship_order(_request: Request, view_args: ViewArgs) -> c.ShipOrder:
    return c.ShipOrder(order_id=view_args["order_id"])


def build_cancel_order(_request: Request, view_args: ViewArgs) -> c.CancelOrder:
    return c.CancelOrder(order_id=view_args["order_id"])


def respond_order(order_id: int, _view_args: ViewArgs) -> ResponseReturnValue:
    return _order_json(order_id)


# -- the table the wiring reads ------------------------------------------------------------


@dataclass(frozen=True)
class WriteEndpoint:
    """A legacy write endpoint (Flask endpoint name) and its command path."""

    endpoint: str
    build: Callable[[Request, ViewArgs], Command]
    respond: Callable[[Any, ViewArgs], ResponseReturnValue]
    #: The legacy tables it writes: the promotion gate keeps a read endpoint off ``live``
    #: while an endpoint writing its read models' sources still bypasses the commands.
    writes: tuple[str, ...]


WRITE_ENDPOINTS: tuple[WriteEndpoint, ...] = (
    WriteEndpoint(
        "products.create_product",
        build_create_product,
        respond_create_product,
        ("products", "stock"),
    ),
    WriteEndpoint("products.update_product", build_update_product, respond_product, ("products",)),
    WriteEndpoint(
        "products.delete_product",
        build_delete_product,
        respond_deleted_product,
        ("products", "stock", "reviews"),
    ),
    WriteEndpoint("products.restock_product", build_restock_product, respond_product, ("stock",)),
    WriteEndpoint("products.add_review", build_add_review, respond_add_review, ("reviews",)),
    WriteEndpoint(
        "products.create_category",
        build_create_category,
        respond_create_category,
        ("categories",),
    ),
    WriteEndpoint(
        "customers.create_customer",
        build_register_customer,
        respond_register_customer,
        ("customers",),
    ),
    WriteEndpoint(
        "customers.update_customer", build_update_customer, respond_customer, ("customers",)
    ),
    WriteEndpoint(
        "customers.delete_customer",
        build_delete_customer,
        respond_deleted_customer,
        ("customers", "reviews"),
    ),
    WriteEndpoint(
        "orders.place_order",
        build_place_order,
        respond_place_order,
        ("orders", "order_lines", "stock"),
    ),
    WriteEndpoint("orders.pay_order", build_pay_order, respond_order, ("orders",)),
    WriteEndpoint("orders.ship_order", build_ship_order, respond_order, ("orders",)),
    WriteEndpoint("orders.cancel_order", build_cancel_order, respond_order, ("orders", "stock")),
)

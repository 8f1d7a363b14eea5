"""Customers: CRUD, order history and the lifetime summary."""

from __future__ import annotations

from typing import Annotated, Any

from flask import Blueprint, Response, request
from pydantic import AfterValidator, Field, field_validator, model_validator

from ..errors import NotFound
from ..etags import expected_versions, tagged_with_version, versioned_answer
from ..extensions import db
from ..fields import MAX_DB_INT, Storable
from ..models import Customer
from ..queries import customers as queries
from ..services import customers as services
from ..validation import StrictBody, page_envelope, pagination, parse_body, query_str

bp = Blueprint("customers", __name__, url_prefix="/api")


MAX_EMAIL_LENGTH = 254


def _has_at_sign(value: str) -> str:
    if "@" not in value:
        raise ValueError("must be an email address containing '@'")
    lowered = value.lower()
    # Lower-casing can lengthen text ("\u0130" becomes two code points), and the column
    # holds 254: checked again here, or PostgreSQL would refuse the INSERT (a 500).
    if len(lowered) > MAX_EMAIL_LENGTH:
        raise ValueError(f"must be at most {MAX_EMAIL_LENGTH} characters once lower-cased")
    return lowered


Email = Annotated[
    str,
    Field(min_length=3, max_length=MAX_EMAIL_LENGTH),
    Storable,
    AfterValidator(_has_at_sign),
]
Name = Annotated[str, Field(min_length=1, max_length=200), Storable]


class CustomerCreate(StrictBody):
    email: Email
    name: Name


class CustomerUpdate(StrictBody):
    email: Email | None = None
    name: Name | None = None

    @field_validator("email", "name", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Absent means "unchanged"; an explicit null would mean "erase", which no field allows.
        if value is None:
            raise ValueError("must not be null")
        return value

    @model_validator(mode="after")
    def _some_field_given(self) -> CustomerUpdate:
        if not self.model_fields_set:
            raise ValueError("at least one of email, name must be given")
        return self


def _customer_json_or_404(customer_id: int) -> dict[str, Any]:
    found = queries.get_customer(db.session(), customer_id) if customer_id <= MAX_DB_INT else None
    if found is None:
        raise NotFound(f"customer {customer_id} does not exist", field="customer_id")
    return found


def customer_answer(customer_id: int, status: int = 200) -> Response:
    """The customer's JSON with its ETag: what every endpoint answering a customer sends."""
    return versioned_answer(
        Customer, customer_id, lambda: _customer_json_or_404(customer_id), status
    )


@bp.get("/customers")
def list_customers() -> dict[str, Any]:
    q = query_str("q")
    page, per_page = pagination()
    items, total = queries.list_customers(db.session(), q, page, per_page)
    return page_envelope(items, total, page, per_page)


@bp.post("/customers")
def create_customer() -> Response:
    body = parse_body(CustomerCreate)
    customer = services.create_customer(db.session(), email=body.email, name=body.name)
    customer_id = customer.id
    db.session.commit()
    return customer_answer(customer_id, 201)


@bp.get("/customers/<int:customer_id>")
@tagged_with_version(Customer, "customer_id")
def get_customer(customer_id: int) -> dict[str, Any]:
    return _customer_json_or_404(customer_id)


@bp.patch("/customers/<int:customer_id>")
def update_customer(customer_id: int) -> Response:
    body = parse_body(CustomerUpdate)
    services.update_customer(
        db.session(),
        customer_id,
        email=body.email,
        name=body.name,
        expected_versions=expected_versions(request),
    )
    db.session.commit()
    return customer_answer(customer_id)


@bp.delete("/customers/<int:customer_id>")
def delete_customer(customer_id: int) -> tuple[str, int]:
    services.delete_customer(
        db.session(), customer_id, expected_versions=expected_versions(request)
    )
    db.session.commit()
    return "", 204


@bp.get("/customers/<int:customer_id>/orders")
def customer_orders(customer_id: int) -> dict[str, Any]:
    _customer_json_or_404(customer_id)
    page, per_page = pagination()
    items, total = queries.order_history(db.session(), customer_id, page, per_page)
    return page_envelope(items, total, page, per_page)


@bp.get("/customers/<int:customer_id>/summary")
def customer_summary(customer_id: int) -> dict[str, Any]:
    _customer_json_or_404(customer_id)
    return queries.customer_summary(db.session(), customer_id)

"""Customers: CRUD, order history and the lifetime summary."""

from __future__ import annotations

from typing import Annotated, Any

from flask import Blueprint
from pydantic import AfterValidator, Field, field_validator, model_validator

from ..errors import NotFound
from ..extensions import db
from ..fields import MAX_DB_INT, Storable
from ..queries import customers as queries
from ..services import customers as services
from ..validation import StrictBody, page_envelope, pagination, parse_body, query_str

bp = Blueprint("customers", __name__, url_prefix="/api")


def _has_at_sign(value: str) -> str:
    if "@" not in value:
        raise ValueError("must be an email address containing '@'")
    return value.lower()


Email = Annotated[str, Field(min_length=3, max_length=254), Storable, AfterValidator(_has_at_sign)]
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


@bp.get("/customers")
def list_customers() -> dict[str, Any]:
    q = query_str("q")
    page, per_page = pagination()
    items, total = queries.list_customers(db.session(), q, page, per_page)
    return page_envelope(items, total, page, per_page)


@bp.post("/customers")
def create_customer() -> tuple[dict[str, Any], int]:
    body = parse_body(CustomerCreate)
    customer = services.create_customer(db.session(), email=body.email, name=body.name)
    db.session.commit()
    return _customer_json_or_404(customer.id), 201


@bp.get("/customers/<int:customer_id>")
def get_customer(customer_id: int) -> dict[str, Any]:
    return _customer_json_or_404(customer_id)


@bp.patch("/customers/<int:customer_id>")
def update_customer(customer_id: int) -> dict[str, Any]:
    body = parse_body(CustomerUpdate)
    services.update_customer(db.session(), customer_id, email=body.email, name=body.name)
    db.session.commit()
    return _customer_json_or_404(customer_id)


@bp.delete("/customers/<int:customer_id>")
def delete_customer(customer_id: int) -> tuple[str, int]:
    services.delete_customer(db.session(), customer_id)
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

"""Products, stock, reviews and categories: parse input, call the service, commit, answer."""

from __future__ import annotations

from typing import Annotated, Any

from flask import Blueprint, Response, request
from pydantic import Field, field_validator
from sqlalchemy.orm import Session

from ..errors import NotFound, Unprocessable
from ..etags import expected_versions, tagged_with_version, versioned_answer
from ..extensions import db
from ..fields import MAX_DB_INT, Cents, Storable
from ..fields import DbId as Id
from ..models import Product
from ..queries import catalog as queries
from ..services import catalog as services
from ..validation import (
    StrictBody,
    page_envelope,
    pagination,
    parse_body,
    query_bool,
    query_choice,
    query_int,
    query_str,
)

bp = Blueprint("products", __name__, url_prefix="/api")

Json = dict[str, Any]


Sku = Annotated[str, Field(min_length=1, max_length=40), Storable]
Name = Annotated[str, Field(min_length=1, max_length=200), Storable]
Description = Annotated[str, Field(max_length=5000), Storable]
CategoryName = Annotated[str, Field(min_length=1, max_length=80), Storable]


class CreateProductBody(StrictBody):
    sku: Sku
    name: Name
    price_cents: Cents
    category_id: Id
    description: Description = ""
    stock: Annotated[int, Field(ge=0, le=MAX_DB_INT)] = 0


class UpdateProductBody(StrictBody):
    sku: Sku | None = None
    name: Name | None = None
    price_cents: Cents | None = None
    category_id: Id | None = None
    description: Description | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Omitted means unchanged; an explicit null would mean "clear", which no field allows.
        if value is None:
            raise ValueError("must not be null")
        return value


class RestockBody(StrictBody):
    quantity: Annotated[int, Field(ge=1, le=1_000_000)]


class ReviewBody(StrictBody):
    rating: Annotated[int, Field(ge=1, le=5)]
    body: Description = ""
    customer_id: Id | None = None


class CategoryBody(StrictBody):
    name: CategoryName


def _session() -> Session:
    return db.session()


def _product_json(product_id: int) -> Json:
    product = queries.get_product(_session(), product_id)
    if product is None:
        raise NotFound(f"product {product_id} does not exist", field="product_id")
    return product


def product_answer(product_id: int, status: int = 200) -> Response:
    """The product's JSON with its ETag: what every endpoint answering a product sends."""
    return versioned_answer(Product, product_id, lambda: _product_json(product_id), status)


@bp.get("/products")
def list_products() -> Json:
    # 0 is never a valid id, so it stands for "no category filter" when the param is absent.
    category_id = query_int("category", 0, minimum=1, maximum=MAX_DB_INT)
    filters = queries.CatalogFilters(
        category_id=category_id or None,
        q=query_str("q"),
        in_stock=query_bool("in_stock"),
    )
    if filters.q is not None and "\x00" in filters.q:
        raise Unprocessable("must not contain NUL characters", field="q")
    sort = query_choice("sort", queries.DEFAULT_SORT, queries.SORTS)
    page, per_page = pagination()
    items, total = queries.list_products(_session(), filters, sort, page, per_page)
    return page_envelope(items, total, page, per_page)


@bp.post("/products")
def create_product() -> Response:
    body = parse_body(CreateProductBody)
    product = services.create_product(_session(), **body.model_dump())
    product_id = product.id
    _session().commit()
    return product_answer(product_id, 201)


@bp.get("/products/<int:product_id>")
@tagged_with_version(Product, "product_id")
def get_product(product_id: int) -> Json:
    return _product_json(product_id)


@bp.patch("/products/<int:product_id>")
def update_product(product_id: int) -> Response:
    body = parse_body(UpdateProductBody)
    services.update_product(
        _session(),
        product_id,
        expected_versions=expected_versions(request),
        **body.model_dump(exclude_unset=True),
    )
    _session().commit()
    return product_answer(product_id)


@bp.delete("/products/<int:product_id>")
def delete_product(product_id: int) -> Response:
    services.delete_product(_session(), product_id, expected_versions=expected_versions(request))
    _session().commit()
    return Response(status=204)


@bp.post("/products/<int:product_id>/restock")
def restock_product(product_id: int) -> Response:
    body = parse_body(RestockBody)
    services.restock(
        _session(), product_id, body.quantity, expected_versions=expected_versions(request)
    )
    _session().commit()
    return product_answer(product_id)


@bp.get("/products/<int:product_id>/reviews")
def list_reviews(product_id: int) -> Json:
    page, per_page = pagination()
    _product_json(product_id)  # 404 for an unknown product, not an empty list
    items, total = queries.list_reviews(_session(), product_id, page, per_page)
    return page_envelope(items, total, page, per_page)


@bp.post("/products/<int:product_id>/reviews")
def add_review(product_id: int) -> tuple[Json, int]:
    body = parse_body(ReviewBody)
    review = services.add_review(_session(), product_id, **body.model_dump())
    _session().commit()
    return queries.review_json(review), 201


@bp.get("/categories")
def list_categories() -> Json:
    items = queries.list_categories(_session())
    return {"items": items, "total": len(items)}


@bp.post("/categories")
def create_category() -> tuple[Json, int]:
    body = parse_body(CategoryBody)
    category = services.create_category(_session(), name=body.name)
    category_id = category.id
    _session().commit()
    return queries.get_category(_session(), category_id) or {}, 201

"""The catalog read side: product list and detail, reviews, categories.

Every answer is computed from the normalized tables on each request: review stats and
units sold are aggregate subqueries LEFT JOINed to the products, so a page of the catalog
is one SQL statement (plus one COUNT for ``total``), never one query per product.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    String,
    case,
    cast,
    func,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from ..fields import MAX_DB_INT
from ..models import Category, Order, OrderLine, OrderStatus, Product, Review, Stock
from .text_search import contains_text

SORTS = ("name", "-name", "price", "-price", "rating", "popularity")
DEFAULT_SORT = "name"


class codepoint_order(FunctionElement[str]):
    """A string column ordered by code point on every backend.

    SQLite compares text bytewise; PostgreSQL uses the database's locale collation, which
    may ignore case and punctuation. Code-point order is the one both can agree on, and
    legacy and read-model answers must be comparable exactly.
    """

    inherit_cache = True
    type = String()


@compiles(codepoint_order)
def _codepoint_order_default(element: codepoint_order, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(codepoint_order, "postgresql")
def _codepoint_order_pg(element: codepoint_order, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


@dataclass(frozen=True)
class CatalogFilters:
    category_id: int | None = None
    q: str | None = None
    in_stock: bool | None = None


def _review_stats() -> Any:
    return (
        select(
            Review.product_id.label("product_id"),
            func.sum(Review.rating).label("rating_sum"),
            func.count(Review.id).label("rating_count"),
        )
        .group_by(Review.product_id)
        .subquery("review_stats")
    )


def _units_sold() -> Any:
    return (
        select(
            OrderLine.product_id.label("product_id"),
            func.sum(OrderLine.quantity).label("units_sold"),
        )
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.status != OrderStatus.CANCELLED.value)
        .group_by(OrderLine.product_id)
        .subquery("units_sold")
    )


class _ProductRows:
    """The product SELECT with its aggregate subqueries, shared by list and detail."""

    def __init__(self) -> None:
        self.reviews = _review_stats()
        self.sold = _units_sold()
        self.stock = func.coalesce(Stock.quantity, 0)
        self.units_sold = func.coalesce(self.sold.c.units_sold, 0)

    def select(self) -> Select[*tuple[Any, ...]]:
        return (
            select(
                Product.id,
                Product.sku,
                Product.name,
                Product.description,
                Product.price_cents,
                Product.category_id,
                Category.name.label("category"),
                self.stock.label("stock"),
                self.reviews.c.rating_sum,
                self.reviews.c.rating_count,
                self.units_sold.label("units_sold"),
                # Mapped columns, so UTCDateTime turns SQLite text into aware datetimes.
                Product.created_at,
                Product.updated_at,
            )
            .select_from(Product)
            .join(Category, Category.id == Product.category_id)
            .outerjoin(Stock, Stock.product_id == Product.id)
            .outerjoin(self.reviews, self.reviews.c.product_id == Product.id)
            .outerjoin(self.sold, self.sold.c.product_id == Product.id)
        )

    def order_by(self, sort: str) -> list[ColumnElement[Any]]:
        keys: list[ColumnElement[Any]]
        if sort == "name":
            keys = [codepoint_order(Product.name).asc()]
        elif sort == "-name":
            keys = [codepoint_order(Product.name).desc()]
        elif sort == "price":
            keys = [Product.price_cents.asc()]
        elif sort == "-price":
            keys = [Product.price_cents.desc()]
        elif sort == "rating":
            count = self.reviews.c.rating_count
            # Unrated last on both backends (SQLite has no NULLS LAST before 3.30); the
            # average as a double so equal ratios sort as equal everywhere.
            average = cast(self.reviews.c.rating_sum, Float) / count
            keys = [case((count.is_(None), 1), else_=0).asc(), average.desc()]
        elif sort == "popularity":
            keys = [self.units_sold.desc()]
        else:
            raise ValueError(f"unknown sort {sort!r}")
        return [*keys, Product.id.asc()]


def _filter_conditions(filters: CatalogFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.category_id is not None:
        conditions.append(Product.category_id == filters.category_id)
    if filters.q:
        conditions.append(contains_text(filters.q, Product.name, Product.sku))
    if filters.in_stock is True:
        conditions.append(func.coalesce(Stock.quantity, 0) > 0)
    elif filters.in_stock is False:
        conditions.append(func.coalesce(Stock.quantity, 0) == 0)
    return conditions


def average_rating(rating_sum: int | None, rating_count: int | None) -> float | None:
    if not rating_count:
        return None
    return round(int(rating_sum or 0) / rating_count, 2)


def product_json(row: Any) -> dict[str, Any]:
    """Product JSON from a row of the product SELECT (see ``_ProductRows``)."""
    return {
        "id": row.id,
        "sku": row.sku,
        "name": row.name,
        "description": row.description,
        "price_cents": row.price_cents,
        "category_id": row.category_id,
        "category": row.category,
        "stock": int(row.stock),
        "avg_rating": average_rating(row.rating_sum, row.rating_count),
        "review_count": int(row.rating_count or 0),
        "units_sold": int(row.units_sold),
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def list_products(
    session: Session, filters: CatalogFilters, sort: str, page: int, per_page: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of the catalog and the number of products matching the filters."""
    rows = _ProductRows()
    conditions = _filter_conditions(filters)
    page_stmt = (
        rows.select()
        .where(*conditions)
        .order_by(*rows.order_by(sort))
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    count_stmt = (
        select(func.count())
        .select_from(Product)
        .outerjoin(Stock, Stock.product_id == Product.id)
        .where(*conditions)
    )
    items = [product_json(row) for row in session.execute(page_stmt)]
    total = session.execute(count_stmt).scalar_one()
    return items, int(total)


def get_product(session: Session, product_id: int) -> dict[str, Any] | None:
    if not 0 < product_id <= MAX_DB_INT:  # cannot exist, and SQLite cannot bind it
        return None
    row = session.execute(_ProductRows().select().where(Product.id == product_id)).first()
    return product_json(row) if row is not None else None


def review_json(review: Review) -> dict[str, Any]:
    return {
        "id": review.id,
        "product_id": review.product_id,
        "customer_id": review.customer_id,
        "rating": review.rating,
        "body": review.body,
        "created_at": review.created_at.isoformat(),
    }


def list_reviews(
    session: Session, product_id: int, page: int, per_page: int
) -> tuple[list[dict[str, Any]], int]:
    """A product's reviews, newest first."""
    page_stmt = (
        select(Review)
        .where(Review.product_id == product_id)
        .order_by(Review.created_at.desc(), Review.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    count_stmt = select(func.count()).select_from(Review).where(Review.product_id == product_id)
    items = [review_json(review) for review in session.scalars(page_stmt)]
    return items, int(session.execute(count_stmt).scalar_one())


def _categories_select() -> Select[*tuple[Any, ...]]:
    counts = (
        select(Product.category_id, func.count(Product.id).label("product_count"))
        .group_by(Product.category_id)
        .subquery("product_counts")
    )
    return select(
        Category.id,
        Category.name,
        func.coalesce(counts.c.product_count, 0).label("product_count"),
    ).outerjoin(counts, counts.c.category_id == Category.id)


def category_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "product_count": int(row.product_count)}


def list_categories(session: Session) -> list[dict[str, Any]]:
    """Every category with its number of products, by name."""
    stmt = _categories_select().order_by(codepoint_order(Category.name).asc(), Category.id.asc())
    return [category_json(row) for row in session.execute(stmt)]


def get_category(session: Session, category_id: int) -> dict[str, Any] | None:
    row = session.execute(_categories_select().where(Category.id == category_id)).first()
    return category_json(row) if row is not None else None

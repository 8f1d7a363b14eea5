"""Catalog writes: products, stock, reviews, categories.

Plain functions over a SQLAlchemy session and already-checked arguments. They flush so ids
exist and constraint failures surface here, but never commit: the caller (a view today, a
command handler later) owns the transaction and rolls it back when one of the
``ApiError``s below is raised.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import Conflict, NotFound, Unprocessable
from ..fields import MAX_DB_INT
from ..models import Category, Customer, OrderLine, Product, Review, Stock
from ..types import utcnow
from .preconditions import ExpectedVersions, require_version

# PostgreSQL INTEGER; larger values would fail in the database instead of in validation.

M = TypeVar("M")


def _flush_or_conflict(session: Session, message: str, field: str) -> None:
    """Flush, reporting a unique/foreign-key race lost to a concurrent writer as a 409.

    The pre-checks catch the ordinary case; this only matters when two requests race.
    """
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(message, field=field) from None


def _get(session: Session, model: type[M], ident: int) -> M | None:
    # Ids beyond the column's range cannot exist, and SQLite cannot even bind them.
    return session.get(model, ident) if 0 < ident <= MAX_DB_INT else None


def _product_or_404(session: Session, product_id: int) -> Product:
    product = _get(session, Product, product_id)
    if product is None:
        raise NotFound(f"product {product_id} does not exist", field="product_id")
    return product


def _require_category(session: Session, category_id: int) -> None:
    if _get(session, Category, category_id) is None:
        raise Unprocessable(f"category {category_id} does not exist", field="category_id")


def _require_unique_sku(session: Session, sku: str, *, other_than: int | None = None) -> None:
    stmt = select(Product.id).where(Product.sku == sku)
    if other_than is not None:
        stmt = stmt.where(Product.id != other_than)
    if session.scalar(stmt) is not None:
        raise Conflict(f"sku {sku!r} already exists", field="sku")


def create_product(
    session: Session,
    *,
    sku: str,
    name: str,
    price_cents: int,
    category_id: int,
    description: str = "",
    stock: int = 0,
) -> Product:
    """A new product with its stock row."""
    _require_category(session, category_id)
    _require_unique_sku(session, sku)
    now = utcnow()
    product = Product(
        sku=sku,
        name=name,
        description=description,
        price_cents=price_cents,
        category_id=category_id,
        created_at=now,
        updated_at=now,
    )
    product.stock = Stock(quantity=stock, updated_at=now)
    session.add(product)
    _flush_or_conflict(session, f"sku {sku!r} already exists", "sku")
    return product


def update_product(
    session: Session,
    product_id: int,
    *,
    sku: str | None = None,
    name: str | None = None,
    price_cents: int | None = None,
    category_id: int | None = None,
    description: str | None = None,
    expected_versions: ExpectedVersions = None,
) -> Product:
    """Change the given fields (None means unchanged; none of them is nullable)."""
    product = _product_or_404(session, product_id)
    require_version(f"product {product_id}", product.version, expected_versions)
    if all(v is None for v in (sku, name, price_cents, category_id, description)):
        raise Unprocessable("at least one field must be given", field="body")
    if category_id is not None:
        _require_category(session, category_id)
        product.category_id = category_id
    if sku is not None:
        _require_unique_sku(session, sku, other_than=product.id)
        product.sku = sku
    if name is not None:
        product.name = name
    if price_cents is not None:
        product.price_cents = price_cents
    if description is not None:
        product.description = description
    # Every accepted PATCH is an update, even when the values happen to be the same.
    product.updated_at = utcnow()
    _flush_or_conflict(session, f"sku {sku!r} already exists", "sku")
    return product


def delete_product(
    session: Session, product_id: int, *, expected_versions: ExpectedVersions = None
) -> None:
    """Delete a product with its stock and reviews; refused once any order line names it."""
    product = _product_or_404(session, product_id)
    require_version(f"product {product_id}", product.version, expected_versions)
    message = f"product {product_id} appears in orders and cannot be deleted"
    if session.scalar(select(exists().where(OrderLine.product_id == product_id))):
        raise Conflict(message, field="product_id")
    session.delete(product)
    _flush_or_conflict(session, message, "product_id")


def restock(
    session: Session,
    product_id: int,
    quantity: int,
    *,
    expected_versions: ExpectedVersions = None,
) -> None:
    """Add ``quantity`` units to the product's stock.

    One conditional UPDATE, so concurrent restocks and orders never lose an increment.
    ``expected_versions`` makes it conditional on the product's own fields being as the
    client saw them; stock is not versioned (it only ever adds up), so the version stays.
    """
    product = _product_or_404(session, product_id)
    require_version(f"product {product_id}", product.version, expected_versions)
    now = utcnow()
    new_quantity = session.scalar(
        update(Stock)
        .where(Stock.product_id == product_id, Stock.quantity <= MAX_DB_INT - quantity)
        .values(quantity=Stock.quantity + quantity, updated_at=now)
        .returning(Stock.quantity)
    )
    if new_quantity is not None:
        return
    stock = session.get(Stock, product_id)
    if stock is not None:
        raise Conflict(f"stock cannot exceed {MAX_DB_INT}", field="quantity")
    # Rows created outside the API may lack their stock row; restocking creates it.
    session.add(Stock(product_id=product_id, quantity=quantity, updated_at=now))
    session.flush()


def add_review(
    session: Session,
    product_id: int,
    *,
    rating: int,
    body: str = "",
    customer_id: int | None = None,
) -> Review:
    _product_or_404(session, product_id)
    if customer_id is not None and _get(session, Customer, customer_id) is None:
        raise Unprocessable(f"customer {customer_id} does not exist", field="customer_id")
    review = Review(
        product_id=product_id,
        customer_id=customer_id,
        rating=rating,
        body=body,
        created_at=utcnow(),
    )
    session.add(review)
    _flush_or_conflict(session, f"customer {customer_id} does not exist", "customer_id")
    return review


def create_category(session: Session, *, name: str) -> Category:
    message = f"category {name!r} already exists"
    if session.scalar(select(Category.id).where(Category.name == name)) is not None:
        raise Conflict(message, field="name")
    category = Category(name=name)
    session.add(category)
    _flush_or_conflict(session, message, "name")
    return category

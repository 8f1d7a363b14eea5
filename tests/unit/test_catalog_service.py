"""The catalog services and queries, called directly as command handlers will call them.

No request context exists here, which also proves the services never touch flask.request.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event, func, select

from legacy_app.errors import Conflict, NotFound, Unprocessable
from legacy_app.extensions import db
from legacy_app.models import Category, Product, Review, Stock
from legacy_app.queries import catalog as queries
from legacy_app.queries.text_search import escape_like
from legacy_app.services import catalog as services

from ..factories import (
    CategoryFactory,
    CustomerFactory,
    OrderLineFactory,
    ProductFactory,
    ReviewFactory,
)


def count(session, model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def kitchen(db_session):
    category = CategoryFactory(name="Kitchen")
    db_session.commit()
    return category


def new_product(session, **overrides):
    values = {"sku": "S-1", "name": "Mug", "price_cents": 100, "category_id": 1, **overrides}
    return services.create_product(session, **values)


def test_create_product_flushes_without_committing(db_session, kitchen):
    product = new_product(db_session, stock=4)
    assert product.id == 1
    assert db_session.get(Stock, 1).quantity == 4
    assert product.created_at == product.updated_at
    db_session.rollback()
    assert count(db_session, Product) == 0
    assert count(db_session, Stock) == 0


def test_create_product_defaults(db_session, kitchen):
    product = new_product(db_session)
    db_session.commit()
    assert (product.description, product.stock.quantity) == ("", 0)


def test_create_product_refuses_unknown_category(db_session, kitchen):
    with pytest.raises(Unprocessable) as caught:
        new_product(db_session, category_id=2)
    assert caught.value.fields[0]["field"] == "category_id"


def test_create_product_refuses_duplicate_sku(db_session, kitchen):
    new_product(db_session)
    with pytest.raises(Conflict) as caught:
        new_product(db_session, name="Other")
    assert caught.value.fields[0]["field"] == "sku"


def test_update_product_changes_only_given_fields(db_session, kitchen):
    CategoryFactory(name="Garden")
    product = new_product(db_session)
    db_session.commit()
    created = product.updated_at
    services.update_product(db_session, 1, price_cents=250, category_id=2)
    db_session.commit()
    product = db_session.get(Product, 1)
    assert (product.sku, product.name, product.price_cents, product.category_id) == (
        "S-1",
        "Mug",
        250,
        2,
    )
    assert product.updated_at > created


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({}, Unprocessable, "body"),
        ({"category_id": 9}, Unprocessable, "category_id"),
        ({"sku": "S-2"}, Conflict, "sku"),
    ],
)
def test_update_product_refusals(db_session, kitchen, kwargs, error, field):
    new_product(db_session)
    new_product(db_session, sku="S-2")
    with pytest.raises(error) as caught:
        services.update_product(db_session, 1, **kwargs)
    assert caught.value.fields[0]["field"] == field


@pytest.mark.parametrize("product_id", [0, -1, 7, 2**31, 10**20])
def test_unknown_product_ids_are_not_found(db_session, kitchen, product_id):
    for call in (
        lambda: services.update_product(db_session, product_id, name="x"),
        lambda: services.delete_product(db_session, product_id),
        lambda: services.restock(db_session, product_id, 1),
        lambda: services.add_review(db_session, product_id, rating=5),
    ):
        with pytest.raises(NotFound) as caught:
            call()
        assert caught.value.fields[0]["field"] == "product_id"
    assert queries.get_product(db_session, product_id) is None


def test_restock_updates_loaded_stock(db_session):
    product = ProductFactory(stock__quantity=3)
    db_session.commit()
    assert product.stock.quantity == 3
    services.restock(db_session, product.id, 4)
    assert product.stock.quantity == 7
    db_session.rollback()
    assert db_session.get(Stock, product.id).quantity == 3


def test_restock_creates_a_missing_stock_row(db_session):
    product = ProductFactory(stock=None)
    db_session.commit()
    services.restock(db_session, product.id, 5)
    db_session.commit()
    assert db_session.get(Stock, product.id).quantity == 5


def test_restock_refuses_to_overflow_the_column(db_session):
    product = ProductFactory(stock__quantity=services.MAX_DB_INT)
    db_session.commit()
    with pytest.raises(Conflict) as caught:
        services.restock(db_session, product.id, 1)
    assert caught.value.fields[0]["field"] == "quantity"


def test_delete_product_cascades_to_stock_and_reviews(db_session):
    product = ProductFactory()
    ReviewFactory.create_batch(2, product=product)
    db_session.commit()
    services.delete_product(db_session, product.id)
    db_session.commit()
    assert (count(db_session, Product), count(db_session, Stock), count(db_session, Review)) == (
        0,
        0,
        0,
    )
    assert count(db_session, Category) == 1


def test_delete_product_refuses_when_ordered(db_session):
    line = OrderLineFactory()
    db_session.commit()
    with pytest.raises(Conflict) as caught:
        services.delete_product(db_session, line.product_id)
    assert caught.value.fields[0]["field"] == "product_id"


def test_add_review(db_session):
    product = ProductFactory()
    customer = CustomerFactory()
    db_session.commit()
    review = services.add_review(db_session, product.id, rating=4, customer_id=customer.id)
    assert (review.id, review.body, review.customer_id) == (1, "", customer.id)
    with pytest.raises(Unprocessable) as caught:
        services.add_review(db_session, product.id, rating=4, customer_id=customer.id + 1)
    assert caught.value.fields[0]["field"] == "customer_id"


def test_create_category(db_session):
    category = services.create_category(db_session, name="Toys")
    assert category.id == 1
    with pytest.raises(Conflict) as caught:
        services.create_category(db_session, name="Toys")
    assert caught.value.fields[0]["field"] == "name"


# --- queries ---------------------------------------------------------------------------


@contextmanager
def counted_statements():
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


@pytest.mark.parametrize("products", [1, 30])
def test_catalog_page_is_two_statements_whatever_its_size(db_session, products):
    category = CategoryFactory()
    for product in ProductFactory.create_batch(products, category=category):
        ReviewFactory(product=product)
        OrderLineFactory(product=product)
    db_session.commit()
    filters = queries.CatalogFilters(q="sku", in_stock=True, category_id=category.id)
    for sort in queries.SORTS:
        with counted_statements() as statements:
            items, total = queries.list_products(db_session, filters, sort, 1, 100)
        assert (len(items), total) == (products, products)
        assert len(statements) == 2, statements


def test_escape_like():
    assert escape_like(r"50%_a\b") == r"50\%\_a\\b"


@pytest.mark.parametrize(
    ("rating_sum", "rating_count", "expected"),
    [(None, None, None), (0, 0, None), (13, 3, 4.33), (9, 2, 4.5), (5, 1, 5.0)],
)
def test_average_rating(rating_sum, rating_count, expected):
    assert queries.average_rating(rating_sum, rating_count) == expected

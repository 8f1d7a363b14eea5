"""GET/POST /api/categories."""

from __future__ import annotations

import pytest

from ..factories import CategoryFactory, ProductFactory
from . import assert_error, shop_snapshot


def test_no_categories(client):
    response = client.get("/api/categories")
    assert response.status_code == 200
    assert response.get_json() == {"items": [], "total": 0}


def test_categories_by_name_with_product_counts(client, db_session):
    kitchen = CategoryFactory(name="Kitchen")
    garden = CategoryFactory(name="Garden")
    CategoryFactory(name="garden tools")
    CategoryFactory(name="Books")
    ProductFactory.create_batch(2, category=kitchen)
    ProductFactory(category=garden)
    db_session.commit()
    response = client.get("/api/categories")
    assert response.status_code == 200
    # Code-point order: "Books" < "Garden" < "Kitchen" < "garden tools".
    assert response.get_json() == {
        "items": [
            {"id": 4, "name": "Books", "product_count": 0},
            {"id": 2, "name": "Garden", "product_count": 1},
            {"id": 1, "name": "Kitchen", "product_count": 2},
            {"id": 3, "name": "garden tools", "product_count": 0},
        ],
        "total": 4,
    }


def test_create_category(client, db_session):
    response = client.post("/api/categories", json={"name": "  Toys  "})
    assert response.status_code == 201
    assert response.get_json() == {"id": 1, "name": "Toys", "product_count": 0}
    assert client.get("/api/categories").get_json() == {
        "items": [{"id": 1, "name": "Toys", "product_count": 0}],
        "total": 1,
    }


def test_created_category_takes_products(client):
    client.post("/api/categories", json={"name": "Toys"})
    product = {"sku": "T-1", "name": "Kite", "price_cents": 100, "category_id": 1}
    assert client.post("/api/products", json=product).status_code == 201
    assert client.get("/api/categories").get_json()["items"][0]["product_count"] == 1


def test_category_name_at_the_length_limit(client):
    response = client.post("/api/categories", json={"name": "C" * 80})
    assert response.status_code == 201
    assert response.get_json()["name"] == "C" * 80


@pytest.mark.parametrize("name", ["Kitchen", " Kitchen "])
def test_duplicate_category_is_409(client, db_session, name):
    CategoryFactory(name="Kitchen")
    db_session.commit()
    before = shop_snapshot(db_session)
    assert_error(client.post("/api/categories", json={"name": name}), 409, "conflict", "name")
    assert shop_snapshot(db_session) == before


def test_category_names_are_case_sensitive(client, db_session):
    CategoryFactory(name="Kitchen")
    db_session.commit()
    assert client.post("/api/categories", json={"name": "kitchen"}).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "C" * 81}, "name"),
        ({"name": 5}, "name"),
        ({"name": True}, "name"),
        ({"name": None}, "name"),
        ({"name": ["Toys"]}, "name"),
        ({"name": "To\x00ys"}, "name"),
        ({"name": "Toys", "id": 3}, "id"),
        ({"name": "Toys", "product_count": 0}, "product_count"),
        ("Toys", "body"),
    ],
)
def test_create_category_rejects_bad_input(client, db_session, body, field):
    CategoryFactory(name="Kitchen")
    db_session.commit()
    before = shop_snapshot(db_session)
    assert_error(client.post("/api/categories", json=body), 422, "validation_error", field)
    assert shop_snapshot(db_session) == before


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": "name=Toys"},
        {"data": "name=Toys", "content_type": "text/plain"},
        {"data": '{"name": "Toys"', "content_type": "application/json"},
    ],
)
def test_create_category_rejects_non_json(client, db_session, kwargs):
    before = shop_snapshot(db_session)
    assert_error(client.post("/api/categories", **kwargs), 400, "bad_request", "body")
    assert shop_snapshot(db_session) == before


def test_wrong_method_on_categories_is_405(client):
    assert_error(client.delete("/api/categories"), 405, "method_not_allowed")

"""GET/POST /api/products, GET/PATCH/DELETE /api/products/<id>, POST .../restock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from legacy_app.models import Product, Review, Stock

from ..factories import (
    CategoryFactory,
    OrderFactory,
    OrderLineFactory,
    ProductFactory,
    ReviewFactory,
)
from . import assert_error, shop_snapshot

CREATED = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
UPDATED = datetime(2026, 1, 3, tzinfo=UTC)
MAX_INT = 2_147_483_647


def make_product(product_id_hint: int, **kwargs):
    """A product with fixed timestamps (``product_id_hint`` only documents the expected id)."""
    kwargs.setdefault("created_at", CREATED)
    kwargs.setdefault("updated_at", UPDATED)
    return ProductFactory(**kwargs)


@pytest.fixture
def catalog(db_session):
    """Five products with known stock, ratings and sales.

    | id | name         | sku       | price | category   | stock | ratings     | sold |
    | 1  | Blue Mug     | SKU-00001 | 1299  | Kitchen(1) | 14    | 5,4,4       | 27   |
    | 2  | Teapot       | SKU-00002 | 2500  | Kitchen(1) | 0     | 4,5         | 3    |
    | 3  | Garden Hose  | HOSE_50%  | 1299  | Garden(2)  | 3     | -           | 0    |
    | 4  | apple peeler | SKU-00004 | 500   | Kitchen(1) | 0     | 5,4,4,4,5,4 | 27   |
    | 5  | Blue Mug     | SKU-00005 | 2500  | Garden(2)  | 7     | 1           | 0    |
    """
    kitchen = CategoryFactory(name="Kitchen")
    garden = CategoryFactory(name="Garden")
    p1 = make_product(
        1,
        sku="SKU-00001",
        name="Blue Mug",
        description="Dishwasher safe",
        price_cents=1299,
        category=kitchen,
        stock__quantity=14,
    )
    p2 = make_product(
        2, sku="SKU-00002", name="Teapot", price_cents=2500, category=kitchen, stock__quantity=0
    )
    p3 = make_product(
        3, sku="HOSE_50%", name="Garden Hose", price_cents=1299, category=garden, stock__quantity=3
    )
    p4 = make_product(
        4,
        sku="SKU-00004",
        name="apple peeler",
        price_cents=500,
        category=kitchen,
        stock__quantity=0,
    )
    p5 = make_product(
        5, sku="SKU-00005", name="Blue Mug", price_cents=2500, category=garden, stock__quantity=7
    )
    for product, ratings in ((p1, [5, 4, 4]), (p2, [4, 5]), (p4, [5, 4, 4, 4, 5, 4]), (p5, [1])):
        for rating in ratings:
            ReviewFactory(product=product, rating=rating)
    placed = OrderFactory(status="placed")
    OrderLineFactory(order=placed, product=p1, quantity=2)
    OrderLineFactory(order=placed, product=p2, quantity=3)
    OrderLineFactory(order=OrderFactory(status="paid"), product=p1, quantity=5)
    OrderLineFactory(order=OrderFactory(status="shipped"), product=p1, quantity=20)
    cancelled = OrderFactory(status="cancelled")
    OrderLineFactory(order=cancelled, product=p1, quantity=100)
    OrderLineFactory(order=cancelled, product=p5, quantity=9)
    OrderLineFactory(order=OrderFactory(status="placed"), product=p4, quantity=27)
    db_session.commit()
    return [p1, p2, p3, p4, p5]


def ids(response) -> list[int]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["id"] for item in response.get_json()["items"]]


BLUE_MUG = {
    "id": 1,
    "sku": "SKU-00001",
    "name": "Blue Mug",
    "description": "Dishwasher safe",
    "price_cents": 1299,
    "category_id": 1,
    "category": "Kitchen",
    "stock": 14,
    "avg_rating": 4.33,
    "review_count": 3,
    "units_sold": 27,
    "created_at": "2026-01-02T03:04:05.123456+00:00",
    "updated_at": "2026-01-03T00:00:00+00:00",
}


# --- GET /api/products/<id> ----------------------------------------------------------------


def test_get_product_returns_the_contract_json(client, catalog):
    response = client.get("/api/products/1")
    assert response.status_code == 200
    assert response.get_json() == BLUE_MUG
    assert list(response.get_json()) == list(BLUE_MUG)  # field order too


def test_get_product_without_reviews_or_sales(client, catalog):
    body = client.get("/api/products/3").get_json()
    assert body["avg_rating"] is None
    assert body["review_count"] == 0
    assert body["units_sold"] == 0
    assert body["stock"] == 3
    assert body["category"] == "Garden"


def test_units_sold_excludes_cancelled_orders(client, catalog):
    assert client.get("/api/products/5").get_json()["units_sold"] == 0
    assert client.get("/api/products/2").get_json()["units_sold"] == 3


def test_avg_rating_is_rounded_to_two_decimals(client, catalog):
    assert client.get("/api/products/2").get_json()["avg_rating"] == 4.5
    assert client.get("/api/products/4").get_json()["avg_rating"] == 4.33
    assert client.get("/api/products/5").get_json()["avg_rating"] == 1.0


@pytest.mark.parametrize("product_id", [99, MAX_INT, MAX_INT + 1, 10**20])
def test_get_unknown_product_is_404(client, catalog, product_id):
    assert_error(client.get(f"/api/products/{product_id}"), 404, "not_found", "product_id")


def test_non_integer_product_id_is_404(client, catalog):
    assert_error(client.get("/api/products/abc"), 404, "not_found")


def test_wrong_method_is_405(client, catalog):
    assert_error(client.put("/api/products/1", json={}), 405, "method_not_allowed")


# --- GET /api/products: envelope, pagination -----------------------------------------------


def test_empty_catalog(client):
    response = client.get("/api/products")
    assert response.status_code == 200
    assert response.get_json() == {"items": [], "total": 0, "page": 1, "per_page": 20}


def test_list_items_are_the_product_json(client, catalog):
    body = client.get("/api/products").get_json()
    assert body["total"] == 5
    assert body["page"] == 1
    assert body["per_page"] == 20
    assert body["items"][0] == BLUE_MUG
    for item in body["items"]:
        assert item == client.get(f"/api/products/{item['id']}").get_json()


@pytest.mark.parametrize(
    ("page", "expected"), [(1, [1, 5]), (2, [3, 2]), (3, [4]), (4, []), (1000, [])]
)
def test_pagination(client, catalog, page, expected):
    response = client.get(f"/api/products?per_page=2&page={page}")
    assert ids(response) == expected
    body = response.get_json()
    assert (body["total"], body["page"], body["per_page"]) == (5, page, 2)


def test_pagination_with_a_filter_counts_the_filtered_rows(client, catalog):
    response = client.get("/api/products?q=sku-&per_page=2&page=2")
    assert ids(response) == [2, 4]
    assert response.get_json()["total"] == 4


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("page=1.5", "page"),
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("per_page=x", "per_page"),
        ("sort=stock", "sort"),
        ("sort=NAME", "sort"),
        ("in_stock=maybe", "in_stock"),
        ("in_stock=1", "in_stock"),
        ("in_stock=0", "in_stock"),
        ("page=", "page"),
        ("page=1e3", "page"),
        ("category=abc", "category"),
        ("category=0", "category"),
        ("category=-2", "category"),
        (f"category={10**20}", "category"),
        ("q=" + "x" * 201, "q"),
        ("q=a%00b", "q"),
    ],
)
def test_bad_query_parameters_are_422(client, catalog, query, field):
    assert_error(client.get(f"/api/products?{query}"), 422, "validation_error", field)


def test_per_page_100_is_allowed(client, catalog):
    assert client.get("/api/products?per_page=100").get_json()["per_page"] == 100


# --- GET /api/products: sorts ------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        # Code-point order: upper case before lower case; equal names by id.
        ("name", [1, 5, 3, 2, 4]),
        ("-name", [4, 2, 3, 1, 5]),
        ("price", [4, 1, 3, 2, 5]),
        ("-price", [2, 5, 1, 3, 4]),
        # 4.5, then 13/3 == 26/6 by id, then 1.0, then the unrated product last.
        ("rating", [2, 1, 4, 5, 3]),
        # 27 (ids 1, 4), 3, then the two products that sold nothing (cancelled excluded).
        ("popularity", [1, 4, 2, 3, 5]),
    ],
)
def test_sorts_break_ties_by_id(client, catalog, sort, expected):
    assert ids(client.get(f"/api/products?sort={sort}")) == expected


def test_default_sort_is_name(client, catalog):
    assert ids(client.get("/api/products")) == [1, 5, 3, 2, 4]
    # An empty value is not absent: refused like any sort that is not listed.
    assert_error(client.get("/api/products?sort="), 422, "validation_error", "sort")


def test_rating_sort_uses_the_unrounded_average(client, db_session):
    category = CategoryFactory(name="Kitchen")
    # 186 / 43 = 4.3256 and 13 / 3 = 4.3333 both show as 4.33; the higher one comes first.
    lower = make_product(1, sku="A", name="A", category=category)
    higher = make_product(2, sku="B", name="B", category=category)
    ReviewFactory.create_batch(14, product=lower, rating=5)
    ReviewFactory.create_batch(29, product=lower, rating=4)
    for rating in (5, 4, 4):
        ReviewFactory(product=higher, rating=rating)
    db_session.commit()
    body = client.get("/api/products?sort=rating").get_json()
    assert [(i["id"], i["avg_rating"], i["review_count"]) for i in body["items"]] == [
        (2, 4.33, 3),
        (1, 4.33, 43),
    ]


def test_unrated_products_sort_after_rated_ones_and_by_id(client, db_session):
    category = CategoryFactory(name="Kitchen")
    products = [make_product(n, sku=f"S{n}", name=f"P{n}", category=category) for n in range(1, 5)]
    ReviewFactory(product=products[2], rating=1)
    db_session.commit()
    assert ids(client.get("/api/products?sort=rating")) == [3, 1, 2, 4]


# --- GET /api/products: filters ----------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("category=1", [1, 2, 4]),
        ("category=2", [5, 3]),
        ("category=999", []),
        ("q=mug", [1, 5]),
        ("q=BLUE%20MUG", [1, 5]),
        ("q=%20%20mug%20%20", [1, 5]),
        ("q=sku-0000", [1, 5, 2, 4]),
        ("q=hose_", [3]),
        # % and _ are literal characters, not wildcards.
        ("q=%25", [3]),
        ("q=_", [3]),
        ("q=50%25", [3]),
        ("q=o%25e", []),
        ("q=nothing", []),
        ("q=%5C", []),
        ("q=", [1, 5, 3, 2, 4]),
        ("in_stock=true", [1, 5, 3]),
        ("in_stock=false", [2, 4]),
        ("category=1&in_stock=true", [1]),
        ("category=1&in_stock=false&sort=-price", [2, 4]),
        ("category=2&q=blue&sort=popularity", [5]),
    ],
)
def test_filters(client, catalog, query, expected):
    response = client.get(f"/api/products?{query}")
    assert ids(response) == expected
    assert response.get_json()["total"] == len(expected)


# --- POST /api/products --------------------------------------------------------------------


@pytest.fixture
def kitchen(db_session):
    category = CategoryFactory(name="Kitchen")
    db_session.commit()
    return category


NEW = {"sku": "NEW-1", "name": "Green Mug", "price_cents": 999, "category_id": 1}


def test_create_product(client, db_session, kitchen):
    before = datetime.now(UTC)
    response = client.post(
        "/api/products",
        json={"sku": "  NEW-1 ", "name": " Green Mug ", "price_cents": 999, "category_id": 1},
    )
    after = datetime.now(UTC)
    assert response.status_code == 201
    body = response.get_json()
    created_at = datetime.fromisoformat(body.pop("created_at"))
    updated_at = datetime.fromisoformat(body.pop("updated_at"))
    assert body == {
        "id": 1,
        "sku": "NEW-1",
        "name": "Green Mug",
        "description": "",
        "price_cents": 999,
        "category_id": 1,
        "category": "Kitchen",
        "stock": 0,
        "avg_rating": None,
        "review_count": 0,
        "units_sold": 0,
    }
    assert created_at.utcoffset().total_seconds() == 0
    assert before <= created_at == updated_at <= after
    assert db_session.execute(select(Stock.quantity).where(Stock.product_id == 1)).scalar() == 0
    assert client.get("/api/products/1").get_json() == response.get_json()


def test_create_product_with_stock_and_description(client, db_session, kitchen):
    body = {**NEW, "stock": 25, "description": " Holds 350 ml. ", "price_cents": 0}
    response = client.post("/api/products", json=body)
    assert response.status_code == 201
    created = response.get_json()
    assert (created["stock"], created["description"], created["price_cents"]) == (
        25,
        "Holds 350 ml.",
        0,
    )
    assert db_session.execute(select(Stock.quantity).where(Stock.product_id == 1)).scalar() == 25


def test_create_product_at_the_length_limits(client, kitchen):
    body = {**NEW, "sku": "S" * 40, "name": "N" * 200, "description": "D" * 5000}
    response = client.post("/api/products", json=body)
    assert response.status_code == 201
    assert response.get_json()["sku"] == "S" * 40


def test_created_products_appear_in_the_catalog(client, kitchen):
    client.post("/api/products", json={**NEW, "sku": "B", "name": "Bowl"})
    client.post("/api/products", json={**NEW, "sku": "A", "name": "Apron", "stock": 2})
    body = client.get("/api/products").get_json()
    assert [(i["id"], i["name"], i["stock"]) for i in body["items"]] == [
        (2, "Apron", 2),
        (1, "Bowl", 0),
    ]


BAD_CREATE_BODIES = [
    ({k: v for k, v in NEW.items() if k != "sku"}, "sku"),
    ({k: v for k, v in NEW.items() if k != "name"}, "name"),
    ({k: v for k, v in NEW.items() if k != "price_cents"}, "price_cents"),
    ({k: v for k, v in NEW.items() if k != "category_id"}, "category_id"),
    ({**NEW, "colour": "red"}, "colour"),
    ({**NEW, "id": 7}, "id"),
    ({**NEW, "sku": ""}, "sku"),
    ({**NEW, "sku": "   "}, "sku"),
    ({**NEW, "sku": "S" * 41}, "sku"),
    ({**NEW, "sku": 123}, "sku"),
    ({**NEW, "sku": None}, "sku"),
    ({**NEW, "sku": "A\x00B"}, "sku"),
    ({**NEW, "name": ""}, "name"),
    ({**NEW, "name": "N" * 201}, "name"),
    ({**NEW, "name": ["Mug"]}, "name"),
    ({**NEW, "name": "bad \ud800 text"}, "name"),
    ({**NEW, "description": "D" * 5001}, "description"),
    ({**NEW, "description": 5}, "description"),
    ({**NEW, "description": None}, "description"),
    ({**NEW, "price_cents": "5"}, "price_cents"),
    ({**NEW, "price_cents": True}, "price_cents"),
    ({**NEW, "price_cents": 9.99}, "price_cents"),
    ({**NEW, "price_cents": 5.5}, "price_cents"),  # 5.0 is 5: JSON has one number type
    ({**NEW, "price_cents": -1}, "price_cents"),
    ({**NEW, "price_cents": MAX_INT + 1}, "price_cents"),
    ({**NEW, "price_cents": None}, "price_cents"),
    ({**NEW, "stock": "5"}, "stock"),
    ({**NEW, "stock": True}, "stock"),
    ({**NEW, "stock": 1.5}, "stock"),
    ({**NEW, "stock": -1}, "stock"),
    ({**NEW, "stock": 10**20}, "stock"),
    ({**NEW, "category_id": "1"}, "category_id"),
    ({**NEW, "category_id": True}, "category_id"),
    ({**NEW, "category_id": 0}, "category_id"),
    ({**NEW, "category_id": 999}, "category_id"),
    ({**NEW, "category_id": 10**20}, "category_id"),
]


@pytest.mark.parametrize(("body", "field"), BAD_CREATE_BODIES)
def test_create_product_rejects_bad_input(client, db_session, kitchen, body, field):
    before = shop_snapshot(db_session)
    assert_error(client.post("/api/products", json=body), 422, "validation_error", field)
    assert shop_snapshot(db_session) == before


def test_create_product_with_an_unknown_category_names_it(client, kitchen):
    error = assert_error(
        client.post("/api/products", json={**NEW, "category_id": 2}),
        422,
        "validation_error",
        "category_id",
    )
    assert error["fields"] == [{"field": "category_id", "reason": error["message"]}]


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"data": "sku=NEW-1", "content_type": "application/x-www-form-urlencoded"}, 400, None),
        ({"data": '{"sku": "NEW-1"', "content_type": "application/json"}, 400, None),
        ({"data": "", "content_type": "application/json"}, 400, None),
        ({"data": "{}"}, 400, None),
        ({"json": ["sku", "NEW-1"]}, 422, None),
        ({"json": "NEW-1"}, 422, None),
    ],
)
def test_create_product_rejects_non_object_bodies(
    client, db_session, kitchen, kwargs, status, code
):
    before = shop_snapshot(db_session)
    response = client.post("/api/products", **kwargs)
    assert_error(response, status, "bad_request" if status == 400 else "validation_error", "body")
    assert shop_snapshot(db_session) == before


@pytest.mark.parametrize("sku", ["SKU-1", "  SKU-1  "])
def test_create_product_with_a_duplicate_sku_is_409(client, db_session, kitchen, sku):
    ProductFactory(sku="SKU-1", category=kitchen)
    db_session.commit()
    before = shop_snapshot(db_session)
    assert_error(client.post("/api/products", json={**NEW, "sku": sku}), 409, "conflict", "sku")
    assert shop_snapshot(db_session) == before


# --- PATCH /api/products/<id> --------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"name": " Red Mug "}, {"name": "Red Mug"}),
        ({"price_cents": 0}, {"price_cents": 0}),
        ({"description": ""}, {"description": ""}),
        ({"sku": "MUG-RED"}, {"sku": "MUG-RED"}),
        ({"sku": "SKU-00001"}, {}),  # its own sku is not a duplicate
        ({"category_id": 2}, {"category_id": 2, "category": "Garden"}),
        (
            {"name": "Red Mug", "price_cents": 1500, "description": "New", "sku": "R"},
            {"name": "Red Mug", "price_cents": 1500, "description": "New", "sku": "R"},
        ),
    ],
)
def test_patch_product(client, catalog, change, expected):
    before = datetime.now(UTC)
    response = client.patch("/api/products/1", json=change)
    assert response.status_code == 200
    body = response.get_json()
    assert before <= datetime.fromisoformat(body.pop("updated_at")) <= datetime.now(UTC)
    unchanged = {k: v for k, v in BLUE_MUG.items() if k != "updated_at"}
    assert body == {**unchanged, **expected}
    assert client.get("/api/products/1").get_json() == response.get_json()


def test_patch_moves_the_product_between_categories(client, catalog):
    client.patch("/api/products/1", json={"category_id": 2})
    assert ids(client.get("/api/products?category=2")) == [1, 5, 3]
    categories = client.get("/api/categories").get_json()["items"]
    assert [(c["id"], c["product_count"]) for c in categories] == [(2, 3), (1, 2)]


BAD_PATCH_BODIES = [
    ({}, 422, "body"),
    ({"stock": 5}, 422, "stock"),
    ({"name": "x", "stock": 5}, 422, "stock"),
    ({"avg_rating": 5}, 422, "avg_rating"),
    ({"name": None}, 422, "name"),
    ({"sku": None}, 422, "sku"),
    ({"price_cents": None}, 422, "price_cents"),
    ({"category_id": None}, 422, "category_id"),
    ({"description": None}, 422, "description"),
    ({"name": ""}, 422, "name"),
    ({"name": "   "}, 422, "name"),
    ({"sku": "S" * 41}, 422, "sku"),
    ({"price_cents": "5"}, 422, "price_cents"),
    ({"price_cents": True}, 422, "price_cents"),
    ({"price_cents": -1}, 422, "price_cents"),
    ({"category_id": "2"}, 422, "category_id"),
    ({"category_id": 999}, 422, "category_id"),
    ({"name": "Fine", "category_id": 999}, 422, "category_id"),
    ({"description": "D" * 5001}, 422, "description"),
    ({"sku": "SKU-00002"}, 409, "sku"),
    ({"name": "Fine", "sku": " SKU-00002 "}, 409, "sku"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_PATCH_BODIES)
def test_patch_product_rejects_bad_input(client, db_session, catalog, body, status, field):
    before = shop_snapshot(db_session)
    code = "conflict" if status == 409 else "validation_error"
    assert_error(client.patch("/api/products/1", json=body), status, code, field)
    assert shop_snapshot(db_session) == before


def test_patch_rejects_non_json(client, db_session, catalog):
    before = shop_snapshot(db_session)
    response = client.patch("/api/products/1", data="name=x", content_type="text/plain")
    assert_error(response, 400, "bad_request", "body")
    assert_error(
        client.patch("/api/products/1", data="{", content_type="application/json"),
        400,
        "bad_request",
        "body",
    )
    assert shop_snapshot(db_session) == before


def test_patch_unknown_product_is_404(client, db_session, catalog):
    before = shop_snapshot(db_session)
    assert_error(
        client.patch("/api/products/99", json={"name": "x"}), 404, "not_found", "product_id"
    )
    assert shop_snapshot(db_session) == before


# --- DELETE /api/products/<id> -------------------------------------------------------------


def test_delete_product_removes_it_with_its_stock_and_reviews(client, db_session, catalog):
    response = client.delete("/api/products/3")
    assert response.status_code == 204
    assert response.get_data() == b""
    assert_error(client.get("/api/products/3"), 404, "not_found", "product_id")
    assert db_session.get(Stock, 3) is None
    assert ids(client.get("/api/products")) == [1, 5, 2, 4]


def test_delete_product_deletes_its_reviews(client, db_session):
    product = ProductFactory(category=CategoryFactory(name="Kitchen"))
    ReviewFactory.create_batch(2, product=product)
    db_session.commit()
    assert client.delete("/api/products/1").status_code == 204
    assert db_session.execute(select(func.count()).select_from(Review)).scalar() == 0
    assert db_session.execute(select(func.count()).select_from(Stock)).scalar() == 0
    categories = client.get("/api/categories").get_json()
    assert categories == {"items": [{"id": 1, "name": "Kitchen", "product_count": 0}], "total": 1}


@pytest.mark.parametrize("product_id", [1, 5])  # 5 appears only in a cancelled order
def test_delete_product_with_order_lines_is_409(client, db_session, catalog, product_id):
    before = shop_snapshot(db_session)
    response = client.delete(f"/api/products/{product_id}")
    assert_error(response, 409, "conflict", "product_id")
    assert shop_snapshot(db_session) == before


def test_delete_unknown_product_is_404(client, db_session, catalog):
    before = shop_snapshot(db_session)
    assert_error(client.delete("/api/products/99"), 404, "not_found", "product_id")
    assert shop_snapshot(db_session) == before


def test_delete_twice_is_404_the_second_time(client, catalog):
    assert client.delete("/api/products/3").status_code == 204
    assert_error(client.delete("/api/products/3"), 404, "not_found", "product_id")


# --- POST /api/products/<id>/restock -------------------------------------------------------


def test_restock_adds_to_stock(client, db_session, catalog):
    response = client.post("/api/products/1/restock", json={"quantity": 6})
    assert response.status_code == 200
    # Stock is not a product field: the product's updated_at stays as it was.
    assert response.get_json() == {**BLUE_MUG, "stock": 20}
    assert db_session.execute(select(Stock.quantity).where(Stock.product_id == 1)).scalar() == 20
    assert client.get("/api/products/1").get_json()["stock"] == 20


def test_restock_the_maximum_puts_a_product_back_in_stock(client, catalog):
    response = client.post("/api/products/2/restock", json={"quantity": 1_000_000})
    assert response.get_json()["stock"] == 1_000_000
    assert ids(client.get("/api/products?in_stock=false")) == [4]


def test_restocks_accumulate(client, catalog):
    client.post("/api/products/3/restock", json={"quantity": 1})
    client.post("/api/products/3/restock", json={"quantity": 2})
    assert client.get("/api/products/3").get_json()["stock"] == 6


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "quantity"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": -5}, "quantity"),
        ({"quantity": 1_000_001}, "quantity"),
        ({"quantity": "5"}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": 1.5}, "quantity"),
        ({"quantity": None}, "quantity"),
        ({"quantity": 5, "note": "x"}, "note"),
        ([5], "body"),
    ],
)
def test_restock_rejects_bad_input(client, db_session, catalog, body, field):
    before = shop_snapshot(db_session)
    response = client.post("/api/products/1/restock", json=body)
    assert_error(response, 422, "validation_error", field)
    assert shop_snapshot(db_session) == before


def test_restock_rejects_non_json(client, db_session, catalog):
    before = shop_snapshot(db_session)
    response = client.post("/api/products/1/restock", data="quantity=5")
    assert_error(response, 400, "bad_request", "body")
    assert shop_snapshot(db_session) == before


def test_restock_unknown_product_is_404(client, db_session, catalog):
    before = shop_snapshot(db_session)
    response = client.post("/api/products/99/restock", json={"quantity": 5})
    assert_error(response, 404, "not_found", "product_id")
    assert shop_snapshot(db_session) == before


def test_restock_beyond_the_storable_maximum_is_409(client, db_session):
    ProductFactory(category=CategoryFactory(), stock__quantity=MAX_INT - 5)
    db_session.commit()
    before = shop_snapshot(db_session)
    response = client.post("/api/products/1/restock", json={"quantity": 6})
    assert_error(response, 409, "conflict", "quantity")
    assert shop_snapshot(db_session) == before
    response = client.post("/api/products/1/restock", json={"quantity": 5})
    assert response.get_json()["stock"] == MAX_INT


def test_product_model_is_untouched_by_failed_create(client, db_session, kitchen):
    client.post("/api/products", json=NEW)
    client.post("/api/products", json={**NEW, "name": "Other"})
    assert db_session.execute(select(func.count()).select_from(Product)).scalar() == 1

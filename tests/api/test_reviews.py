"""GET/POST /api/products/<id>/reviews."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ..factories import CategoryFactory, CustomerFactory, ProductFactory, ReviewFactory
from . import assert_error, shop_snapshot

T1 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)
T2 = datetime(2026, 3, 2, 9, 0, 0, 250000, tzinfo=UTC)


@pytest.fixture
def reviewed(db_session):
    """Product 1 with reviews 1 (T1), 2 (T2), 3 (T2); product 2 with review 4; customer 1."""
    category = CategoryFactory(name="Kitchen")
    mug = ProductFactory(sku="MUG", name="Mug", category=category)
    pot = ProductFactory(sku="POT", name="Pot", category=category)
    customer = CustomerFactory(email="ann@example.com", name="Ann")
    ReviewFactory(product=mug, rating=2, body="Chipped", created_at=T1, customer_id=customer.id)
    ReviewFactory(product=mug, rating=5, body="Lovely", created_at=T2)
    ReviewFactory(product=mug, rating=4, body="", created_at=T2)
    ReviewFactory(product=pot, rating=3, created_at=T1)
    db_session.commit()


REVIEW_1 = {
    "id": 1,
    "product_id": 1,
    "customer_id": 1,
    "rating": 2,
    "body": "Chipped",
    "created_at": "2026-03-01T09:00:00+00:00",
}
REVIEW_2 = {
    "id": 2,
    "product_id": 1,
    "customer_id": None,
    "rating": 5,
    "body": "Lovely",
    "created_at": "2026-03-02T09:00:00.250000+00:00",
}
REVIEW_3 = {**REVIEW_2, "id": 3, "rating": 4, "body": ""}


def test_reviews_newest_first_ties_by_id_descending(client, reviewed):
    response = client.get("/api/products/1/reviews")
    assert response.status_code == 200
    assert response.get_json() == {
        "items": [REVIEW_3, REVIEW_2, REVIEW_1],
        "total": 3,
        "page": 1,
        "per_page": 20,
    }
    assert list(response.get_json()["items"][0]) == list(REVIEW_3)


@pytest.mark.parametrize(
    ("page", "expected"), [(1, [REVIEW_3, REVIEW_2]), (2, [REVIEW_1]), (3, []), (50, [])]
)
def test_reviews_pagination(client, reviewed, page, expected):
    response = client.get(f"/api/products/1/reviews?page={page}&per_page=2")
    assert response.get_json() == {"items": expected, "total": 3, "page": page, "per_page": 2}


def test_reviews_of_another_product_are_not_listed(client, reviewed):
    body = client.get("/api/products/2/reviews").get_json()
    assert [(r["id"], r["product_id"]) for r in body["items"]] == [(4, 2)]
    assert body["total"] == 1


def test_product_without_reviews_has_an_empty_list(client, db_session):
    ProductFactory(category=CategoryFactory())
    db_session.commit()
    response = client.get("/api/products/1/reviews")
    assert response.get_json() == {"items": [], "total": 0, "page": 1, "per_page": 20}


def test_reviews_of_unknown_product_is_404(client, reviewed):
    assert_error(client.get("/api/products/9/reviews"), 404, "not_found", "product_id")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=x", "page"),
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
    ],
)
def test_reviews_bad_pagination_is_422(client, reviewed, query, field):
    assert_error(client.get(f"/api/products/1/reviews?{query}"), 422, "validation_error", field)


# --- POST -----------------------------------------------------------------------------------


def test_add_review(client, db_session, reviewed):
    before = datetime.now(UTC)
    response = client.post(
        "/api/products/2/reviews", json={"rating": 5, "body": "  Great pot  ", "customer_id": 1}
    )
    assert response.status_code == 201
    body = response.get_json()
    created_at = datetime.fromisoformat(body.pop("created_at"))
    assert body == {"id": 5, "product_id": 2, "customer_id": 1, "rating": 5, "body": "Great pot"}
    assert created_at.utcoffset().total_seconds() == 0
    assert before <= created_at <= datetime.now(UTC)
    listed = client.get("/api/products/2/reviews").get_json()["items"]
    assert listed[0] == response.get_json()
    assert [r["id"] for r in listed] == [5, 4]


def test_add_anonymous_review_with_defaults(client, reviewed):
    response = client.post("/api/products/1/reviews", json={"rating": 1})
    assert response.status_code == 201
    body = response.get_json()
    assert (body["id"], body["customer_id"], body["rating"], body["body"]) == (5, None, 1, "")


def test_add_review_with_null_customer_is_anonymous(client, reviewed):
    response = client.post("/api/products/1/reviews", json={"rating": 3, "customer_id": None})
    assert response.status_code == 201
    assert response.get_json()["customer_id"] is None


def test_new_review_updates_the_product_rating(client, reviewed):
    assert client.get("/api/products/2").get_json()["avg_rating"] == 3.0
    client.post("/api/products/2/reviews", json={"rating": 4})
    client.post("/api/products/2/reviews", json={"rating": 4})
    product = client.get("/api/products/2").get_json()
    assert (product["avg_rating"], product["review_count"]) == (3.67, 3)


def test_review_body_at_the_length_limit(client, reviewed):
    response = client.post("/api/products/1/reviews", json={"rating": 5, "body": "b" * 5000})
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "rating"),
        ({"body": "no rating"}, "rating"),
        ({"rating": 0}, "rating"),
        ({"rating": 6}, "rating"),
        ({"rating": -1}, "rating"),
        ({"rating": "5"}, "rating"),
        ({"rating": True}, "rating"),
        ({"rating": 4.5}, "rating"),
        ({"rating": 4.5}, "rating"),  # 4.0 is 4
        ({"rating": None}, "rating"),
        ({"rating": 5, "body": "b" * 5001}, "body"),
        ({"rating": 5, "body": 5}, "body"),
        ({"rating": 5, "body": None}, "body"),
        ({"rating": 5, "body": "nul\x00"}, "body"),
        ({"rating": 5, "customer_id": "1"}, "customer_id"),
        ({"rating": 5, "customer_id": True}, "customer_id"),
        ({"rating": 5, "customer_id": 0}, "customer_id"),
        ({"rating": 5, "customer_id": 99}, "customer_id"),
        ({"rating": 5, "customer_id": 10**20}, "customer_id"),
        ({"rating": 5, "product_id": 2}, "product_id"),
        ({"rating": 5, "title": "x"}, "title"),
        (["rating", 5], "body"),
    ],
)
def test_add_review_rejects_bad_input(client, db_session, reviewed, body, field):
    before = shop_snapshot(db_session)
    response = client.post("/api/products/1/reviews", json=body)
    assert_error(response, 422, "validation_error", field)
    assert shop_snapshot(db_session) == before


def test_add_review_rejects_non_json(client, db_session, reviewed):
    before = shop_snapshot(db_session)
    assert_error(
        client.post("/api/products/1/reviews", data="rating=5"), 400, "bad_request", "body"
    )
    assert_error(
        client.post("/api/products/1/reviews", data="{rating", content_type="application/json"),
        400,
        "bad_request",
        "body",
    )
    assert shop_snapshot(db_session) == before


def test_add_review_to_unknown_product_is_404(client, db_session, reviewed):
    before = shop_snapshot(db_session)
    response = client.post("/api/products/9/reviews", json={"rating": 5})
    assert_error(response, 404, "not_found", "product_id")
    assert shop_snapshot(db_session) == before

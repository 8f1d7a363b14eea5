"""Behaviour of the customer CRUD endpoints: exact JSON, pagination, filters, every bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from legacy_app.models import Customer, Review

from ..factories import CustomerFactory, OrderFactory, ReviewFactory

JOINED = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
JOINED_ISO = "2026-03-04T05:06:07.890123+00:00"


def customer_rows(db_session):
    """Every customer as (id, email, name), read fresh from the database."""
    db_session.expire_all()
    rows = db_session.execute(
        select(Customer.id, Customer.email, Customer.name).order_by(Customer.id)
    )
    return [tuple(row) for row in rows]


def error_fields(response):
    return [f["field"] for f in response.get_json()["error"]["fields"]]


@pytest.fixture
def three_customers(db_session):
    CustomerFactory(email="ann@example.com", name="Ann Lee", created_at=JOINED)
    CustomerFactory(email="bob@shop.test", name="Bob 100%", created_at=JOINED)
    CustomerFactory(email="cy@example.com", name="Cyd ANNEX", created_at=JOINED)
    db_session.commit()


# --- list -------------------------------------------------------------------------------


def test_list_is_empty_envelope_without_customers(client):
    response = client.get("/api/customers")
    assert response.status_code == 200
    assert response.get_json() == {"items": [], "total": 0, "page": 1, "per_page": 20}


def test_list_returns_customers_by_id(client, three_customers):
    response = client.get("/api/customers")
    assert response.status_code == 200
    assert response.get_json() == {
        "items": [
            {"id": 1, "email": "ann@example.com", "name": "Ann Lee", "created_at": JOINED_ISO},
            {"id": 2, "email": "bob@shop.test", "name": "Bob 100%", "created_at": JOINED_ISO},
            {"id": 3, "email": "cy@example.com", "name": "Cyd ANNEX", "created_at": JOINED_ISO},
        ],
        "total": 3,
        "page": 1,
        "per_page": 20,
    }


def test_list_paginates_and_echoes_page(client, db_session):
    CustomerFactory.create_batch(5)
    db_session.commit()
    body = client.get("/api/customers?page=2&per_page=2").get_json()
    assert [c["id"] for c in body["items"]] == [3, 4]
    assert (body["total"], body["page"], body["per_page"]) == (5, 2, 2)
    last = client.get("/api/customers?page=3&per_page=2").get_json()
    assert [c["id"] for c in last["items"]] == [5]
    beyond = client.get("/api/customers?page=4&per_page=2").get_json()
    assert (beyond["items"], beyond["total"]) == ([], 5)


@pytest.mark.parametrize(
    ("q", "ids"),
    [
        ("ann", [1, 3]),  # name, case-insensitive, anywhere in the string
        ("EXAMPLE.COM", [1, 3]),  # email, case-insensitive
        ("shop.test", [2]),
        ("100%", [2]),  # % is a literal, not a wildcard
        ("_", []),  # so is _
        ("zzz", []),
        ("  bob  ", [2]),  # stripped
    ],
)
def test_list_filters_by_name_or_email(client, three_customers, q, ids):
    body = client.get("/api/customers", query_string={"q": q}).get_json()
    assert [c["id"] for c in body["items"]] == ids
    assert body["total"] == len(ids)


def test_list_filter_total_counts_all_pages(client, three_customers):
    body = client.get("/api/customers?q=ann&per_page=1&page=2").get_json()
    assert [c["id"] for c in body["items"]] == [3]
    assert body["total"] == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page=1.5", "page"),
        ("per_page=0", "per_page"),
        ("per_page=101", "per_page"),
        ("per_page=-1", "per_page"),
    ],
)
def test_list_refuses_bad_pagination(client, query, field):
    response = client.get(f"/api/customers?{query}")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "validation_error"
    assert error_fields(response) == [field]


# --- create -----------------------------------------------------------------------------


def test_create_returns_201_with_normalized_customer(client, db_session):
    before = datetime.now(UTC)
    response = client.post(
        "/api/customers", json={"email": "  Dana.K@Example.COM ", "name": "  Dana K  "}
    )
    assert response.status_code == 201
    body = response.get_json()
    created_at = datetime.fromisoformat(body.pop("created_at"))
    assert body == {"id": 1, "email": "dana.k@example.com", "name": "Dana K"}
    assert before <= created_at <= datetime.now(UTC)
    assert created_at.utcoffset().total_seconds() == 0
    assert customer_rows(db_session) == [(1, "dana.k@example.com", "Dana K")]
    assert client.get("/api/customers/1").get_json()["created_at"] == created_at.isoformat()


def test_create_accepts_boundary_lengths(client, db_session):
    email = "a@" + "b" * 252
    response = client.post("/api/customers", json={"email": email, "name": "n" * 200})
    assert response.status_code == 201
    assert customer_rows(db_session) == [(1, email, "n" * 200)]
    short = client.post("/api/customers", json={"email": "a@b", "name": "N"})
    assert short.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Ann"}, "email"),
        ({"email": "ann@example.com"}, "name"),
        ({"email": "ann@example.com", "name": "Ann", "admin": True}, "admin"),
        ({"email": "ann.example.com", "name": "Ann"}, "email"),
        ({"email": "a@", "name": "Ann"}, "email"),
        ({"email": "   a@  ", "name": "Ann"}, "email"),
        ({"email": "a@" + "b" * 253, "name": "Ann"}, "email"),
        ({"email": "ann@example.com", "name": ""}, "name"),
        ({"email": "ann@example.com", "name": "   "}, "name"),
        ({"email": "ann@example.com", "name": "n" * 201}, "name"),
        ({"email": 5, "name": "Ann"}, "email"),
        ({"email": True, "name": "Ann"}, "email"),
        ({"email": None, "name": "Ann"}, "email"),
        ({"email": ["ann@example.com"], "name": "Ann"}, "email"),
        ({"email": "ann@example.com", "name": 7}, "name"),
        ({"email": "ann@example.com", "name": {"first": "Ann"}}, "name"),
    ],
)
def test_create_refuses_invalid_body(client, db_session, body, field):
    response = client.post("/api/customers", json=body)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in error_fields(response)
    assert customer_rows(db_session) == []


def test_create_refuses_a_json_array(client, db_session):
    response = client.post("/api/customers", json=[{"email": "a@b.c", "name": "A"}])
    assert response.status_code == 422
    assert error_fields(response) == ["body"]
    assert customer_rows(db_session) == []


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ('{"email": "a@b.c", "name": ', "application/json"),
        ("", "application/json"),
        ('{"email": "a@b.c", "name": "A"}', "text/plain"),
        ("email=a@b.c&name=A", "application/x-www-form-urlencoded"),
    ],
)
def test_create_refuses_non_json(client, db_session, data, content_type):
    response = client.post("/api/customers", data=data, content_type=content_type)
    assert response.status_code == 400
    assert response.is_json
    assert response.get_json()["error"]["code"] == "bad_request"
    assert error_fields(response) == ["body"]
    assert customer_rows(db_session) == []


def test_create_refuses_duplicate_email_ignoring_case(client, db_session):
    CustomerFactory(email="ann@example.com", name="Ann")
    db_session.commit()
    response = client.post("/api/customers", json={"email": "ANN@example.com", "name": "Other"})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict"
    assert error_fields(response) == ["email"]
    assert customer_rows(db_session) == [(1, "ann@example.com", "Ann")]


# --- get --------------------------------------------------------------------------------


def test_get_returns_customer_json(client, three_customers):
    response = client.get("/api/customers/2")
    assert response.status_code == 200
    assert response.get_json() == {
        "id": 2,
        "email": "bob@shop.test",
        "name": "Bob 100%",
        "created_at": JOINED_ISO,
    }


@pytest.mark.parametrize("customer_id", ["4", "999", "99999999999999999999"])
def test_get_unknown_customer_is_404(client, three_customers, customer_id):
    response = client.get(f"/api/customers/{customer_id}")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    assert error_fields(response) == ["customer_id"]


def test_non_integer_id_is_unknown_route(client, three_customers):
    response = client.get("/api/customers/abc")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_wrong_method_is_405(client, three_customers):
    response = client.put("/api/customers/1", json={"name": "X"})
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


# --- update -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"name": " Annie "}, (1, "ann@example.com", "Annie")),
        ({"email": "Annie@New.Example"}, (1, "annie@new.example", "Ann Lee")),
        ({"email": "x@y.z", "name": "Xy"}, (1, "x@y.z", "Xy")),
        ({"email": "ANN@example.com"}, (1, "ann@example.com", "Ann Lee")),  # own email
    ],
)
def test_update_changes_given_fields(client, db_session, three_customers, body, expected):
    response = client.patch("/api/customers/1", json=body)
    assert response.status_code == 200
    assert response.get_json() == {
        "id": 1,
        "email": expected[1],
        "name": expected[2],
        "created_at": JOINED_ISO,
    }
    assert customer_rows(db_session)[0] == expected
    assert client.get("/api/customers/1").get_json() == response.get_json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"name": None}, "name"),
        ({"email": None}, "email"),
        ({"name": ""}, "name"),
        ({"name": 3}, "name"),
        ({"email": "nope"}, "email"),
        ({"email": False}, "email"),
        ({"nickname": "A"}, "nickname"),
        ({"name": "A", "id": 9}, "id"),
    ],
)
def test_update_refuses_invalid_body(client, db_session, three_customers, body, field):
    before = customer_rows(db_session)
    response = client.patch("/api/customers/1", json=body)
    assert response.status_code == 422
    assert field in error_fields(response)
    assert customer_rows(db_session) == before


def test_update_refuses_non_json(client, db_session, three_customers):
    before = customer_rows(db_session)
    response = client.patch("/api/customers/1", data="name=X", content_type="text/plain")
    assert response.status_code == 400
    assert error_fields(response) == ["body"]
    assert customer_rows(db_session) == before


def test_update_refuses_another_customers_email(client, db_session, three_customers):
    before = customer_rows(db_session)
    response = client.patch("/api/customers/1", json={"name": "Changed", "email": "BOB@shop.test"})
    assert response.status_code == 409
    assert error_fields(response) == ["email"]
    assert customer_rows(db_session) == before


def test_update_unknown_customer_is_404(client, db_session, three_customers):
    before = customer_rows(db_session)
    response = client.patch("/api/customers/9", json={"name": "X"})
    assert response.status_code == 404
    assert error_fields(response) == ["customer_id"]
    assert customer_rows(db_session) == before


# --- delete -----------------------------------------------------------------------------


def test_delete_removes_customer(client, db_session, three_customers):
    response = client.delete("/api/customers/2")
    assert response.status_code == 204
    assert response.data == b""
    assert [row[0] for row in customer_rows(db_session)] == [1, 3]
    assert client.get("/api/customers/2").status_code == 404
    assert client.delete("/api/customers/2").status_code == 404


def test_delete_keeps_reviews_without_their_author(client, db_session, three_customers):
    ReviewFactory(customer_id=2, rating=5)
    db_session.commit()
    assert client.delete("/api/customers/2").status_code == 204
    db_session.expire_all()
    reviews = db_session.execute(select(Review.id, Review.customer_id, Review.rating)).all()
    assert [tuple(r) for r in reviews] == [(1, None, 5)]


def test_delete_refuses_customer_with_orders(client, db_session, three_customers):
    OrderFactory(customer=db_session.get(Customer, 3), status="cancelled")
    db_session.commit()
    before = customer_rows(db_session)
    response = client.delete("/api/customers/3")
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict"
    assert error_fields(response) == ["customer_id"]
    assert customer_rows(db_session) == before
    assert db_session.scalar(select(func.count()).select_from(Customer)) == 3


def test_delete_unknown_customer_is_404(client, db_session, three_customers):
    response = client.delete("/api/customers/4")
    assert response.status_code == 404
    assert error_fields(response) == ["customer_id"]
    assert len(customer_rows(db_session)) == 3

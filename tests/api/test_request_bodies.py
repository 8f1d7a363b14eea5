"""Hostile or odd request bodies get a clear JSON error and change nothing.

- JSON nested too deeply for the parser is a 400 naming ``body``, never a 500;
- a body over the size limit (``MAX_CONTENT_LENGTH``, 1 MiB by default) is a 413
  ``payload_too_large`` naming ``body``, on every endpoint, whether it reads a body or not;
- a whole number written with a zero fraction (``5.0``) is that integer: JSON has one number
  type, and JSON Schema (so /openapi.json) counts 5.0 as an integer.
"""

from __future__ import annotations

import pytest

from ..factories import CategoryFactory, CustomerFactory, OrderFactory, ProductFactory
from . import assert_error, shop_snapshot

ONE_MIB = 1024 * 1024

#: Every endpoint that reads a JSON body, with a path that exists in the ``shop`` fixture.
JSON_WRITE_ENDPOINTS = [
    ("post", "/api/products"),
    ("patch", "/api/products/1"),
    ("post", "/api/products/1/restock"),
    ("post", "/api/products/1/reviews"),
    ("post", "/api/categories"),
    ("post", "/api/customers"),
    ("patch", "/api/customers/1"),
    ("post", "/api/orders"),
]


@pytest.fixture
def shop(db_session):
    """Category 1; product 1 (stock 10); customer 1 with placed order 1."""
    kitchen = CategoryFactory(name="Kitchen")
    ProductFactory(sku="MUG", name="Mug", category=kitchen)
    OrderFactory(customer=CustomerFactory(email="ann@example.com"))
    db_session.commit()


def send(client, method, url, data, content_type="application/json"):
    return getattr(client, method)(url, data=data, content_type=content_type)


def nested_arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- nesting ------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "url"), JSON_WRITE_ENDPOINTS)
def test_json_nested_too_deeply_is_400_naming_body(client, db_session, shop, method, url):
    before = shop_snapshot(db_session)

    response = send(client, method, url, nested_arrays(1000))

    error = assert_error(response, 400, "bad_request", "body")
    assert "nested too deeply" in error["message"]
    assert shop_snapshot(db_session) == before


def test_deep_nesting_inside_an_object_is_400_too(client, db_session, shop):
    before = shop_snapshot(db_session)
    body = '{"customer_id": 1, "lines": ' + nested_arrays(1000) + "}"

    assert_error(send(client, "post", "/api/orders", body), 400, "bad_request", "body")
    assert shop_snapshot(db_session) == before


def test_moderate_nesting_is_still_the_ordinary_validation_error(client, db_session, shop):
    before = shop_snapshot(db_session)

    response = send(client, "post", "/api/orders", nested_arrays(500))

    assert_error(response, 422, "validation_error", "body")
    assert shop_snapshot(db_session) == before


# --- size ---------------------------------------------------------------------------------


def category_body(total_bytes: int) -> str:
    """A POST /api/categories body of exactly ``total_bytes`` bytes."""
    frame = '{"name": ""}'
    return '{"name": "' + "x" * (total_bytes - len(frame)) + '"}'


def test_the_default_limit_is_one_mebibyte(app):
    assert app.config["MAX_CONTENT_LENGTH"] == ONE_MIB


@pytest.mark.parametrize(("method", "url"), JSON_WRITE_ENDPOINTS)
def test_a_body_over_the_limit_is_413_naming_body(client, db_session, shop, method, url):
    before = shop_snapshot(db_session)

    response = send(client, method, url, category_body(ONE_MIB + 1))

    error = assert_error(response, 413, "payload_too_large", "body")
    assert str(ONE_MIB) in error["message"]
    assert shop_snapshot(db_session) == before


def test_a_body_at_the_limit_is_read_and_validated(client, db_session, shop):
    before = shop_snapshot(db_session)

    response = send(client, "post", "/api/categories", category_body(ONE_MIB))

    # Read in full: refused for what it says (a name over 80 characters), not for its size.
    assert_error(response, 422, "validation_error", "name")
    assert shop_snapshot(db_session) == before


def test_endpoints_that_ignore_bodies_refuse_oversized_ones_too(client, db_session, shop):
    before = shop_snapshot(db_session)

    response = send(client, "post", "/api/orders/1/pay", "x" * (ONE_MIB + 1), "text/plain")

    assert_error(response, 413, "payload_too_large", "body")
    assert shop_snapshot(db_session) == before


def test_the_limit_follows_the_config(app, client, db_session, shop):
    app.config["MAX_CONTENT_LENGTH"] = 64
    before = shop_snapshot(db_session)

    assert_error(
        send(client, "post", "/api/categories", category_body(65)), 413, "payload_too_large"
    )
    assert shop_snapshot(db_session) == before
    # At the limit the body is read, and a 52-character name is a fine category.
    assert send(client, "post", "/api/categories", category_body(64)).status_code == 201


# --- integers written with a zero fraction --------------------------------------------------


def test_a_whole_number_with_a_zero_fraction_is_that_integer(client, db_session, shop):
    response = client.post(
        "/api/products/1/restock", data='{"quantity": 5.0}', content_type="application/json"
    )

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["stock"] == 15


def test_zero_fractions_count_in_nested_bodies_too(client, shop):
    body = '{"customer_id": 1.0, "lines": [{"product_id": 1.0, "quantity": 2.00}]}'

    response = client.post("/api/orders", data=body, content_type="application/json")

    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["lines"][0]["quantity"] == 2


@pytest.mark.parametrize(
    "quantity",
    ["5.5", '"5"', "true", "1e400", "NaN", "Infinity"],
)
def test_other_non_integers_are_still_refused(client, db_session, shop, quantity):
    before = shop_snapshot(db_session)

    response = client.post(
        "/api/products/1/restock",
        data='{"quantity": ' + quantity + "}",
        content_type="application/json",
    )

    assert response.status_code in (400, 422), response.get_data(as_text=True)
    assert response.get_json()["error"]["fields"][0]["field"] in ("quantity", "body")
    assert shop_snapshot(db_session) == before


def test_a_huge_whole_number_is_out_of_range_not_a_crash(client, db_session, shop):
    before = shop_snapshot(db_session)

    response = client.post(
        "/api/products/1/restock", data='{"quantity": 1e300}', content_type="application/json"
    )

    assert_error(response, 422, "validation_error", "quantity")
    assert shop_snapshot(db_session) == before


# --- text that changes length when normalized ---------------------------------------------


def test_an_email_too_long_once_lower_cased_is_422(client, db_session, shop):
    # "İ" (U+0130) lower-cases to two code points: 252 + 2 characters become 506.
    email = "\u0130" * 252 + "@x"
    before = shop_snapshot(db_session)

    response = client.post("/api/customers", json={"email": email, "name": "Ivy"})

    error = assert_error(response, 422, "validation_error", "email")
    assert "254" in error["message"]
    assert shop_snapshot(db_session) == before

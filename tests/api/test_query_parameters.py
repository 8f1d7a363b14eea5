"""Query parameters take exactly what /openapi.json says, nothing looser.

- an empty value (``?days=``) is refused like any other value that is not of the type,
  except for free-text ``q``, where the empty string is a string (no filter);
- booleans are ``true`` or ``false``, spelled so;
- an integer may be written with a zero fraction (``page=2.0``), as JSON Schema counts
  2.0 as an integer; any other fraction, exponent or non-ASCII digit is refused.
"""

from __future__ import annotations

import pytest

from ..factories import CategoryFactory, CustomerFactory, ProductFactory
from . import assert_error


@pytest.fixture
def shop(db_session):
    """Product 1 (in stock) and product 2 (none) in category 1; customer 1."""
    kitchen = CategoryFactory(name="Kitchen")
    ProductFactory(sku="A", name="A", category=kitchen, stock__quantity=3)
    ProductFactory(sku="B", name="B", category=kitchen, stock__quantity=0)
    CustomerFactory()
    db_session.commit()


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/products?page=", "page"),
        ("/api/products?per_page=", "per_page"),
        ("/api/products?category=", "category"),
        ("/api/products?in_stock=", "in_stock"),
        ("/api/products?sort=", "sort"),
        ("/api/customers?page=", "page"),
        ("/api/products/1/reviews?per_page=", "per_page"),
        ("/api/customers/1/orders?page=", "page"),
        ("/api/reports/top-products?days=", "days"),
        ("/api/reports/top-products?limit=", "limit"),
        ("/api/reports/daily-sales?days=", "days"),
        ("/api/reports/low-stock?threshold=", "threshold"),
    ],
)
def test_an_empty_value_is_refused_naming_the_parameter(client, shop, url, field):
    error = assert_error(client.get(url), 422, "validation_error", field)
    assert "''" in error["message"]


def test_an_empty_q_is_no_filter(client, shop):
    response = client.get("/api/products?q=")

    assert response.status_code == 200
    assert response.get_json()["total"] == 2


@pytest.mark.parametrize("value", ["1", "0", "yes", "no", "TRUE", "False", "on", " true"])
def test_in_stock_is_true_or_false_only(client, shop, value):
    error = assert_error(
        client.get("/api/products", query_string={"in_stock": value}),
        422,
        "validation_error",
        "in_stock",
    )
    assert "true or false" in error["message"]


@pytest.mark.parametrize(("value", "expected"), [("true", [1]), ("false", [2])])
def test_in_stock_filters(client, shop, value, expected):
    response = client.get(f"/api/products?in_stock={value}")

    assert [item["id"] for item in response.get_json()["items"]] == expected


@pytest.mark.parametrize(
    ("url", "key", "expected"),
    [
        ("/api/products?page=2.0", "page", 2),
        ("/api/products?per_page=5.000", "per_page", 5),
        ("/api/reports/top-products?days=7.0", "days", 7),
        ("/api/reports/top-products?limit=3.0", "limit", 3),
    ],
)
def test_an_integer_with_a_zero_fraction_is_that_integer(client, shop, url, key, expected):
    response = client.get(url)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()[key] == expected


def test_a_category_with_a_zero_fraction_filters_by_that_category(client, shop):
    response = client.get("/api/products?category=1.0")

    assert response.get_json()["total"] == 2


@pytest.mark.parametrize(
    "value", ["1.5", "1e1", "+1", " 1", "1_0", "\u0661", "0x1", "1.", ".0", "--1", "Infinity"]
)
def test_other_spellings_of_numbers_are_refused(client, shop, value):
    assert_error(
        client.get("/api/products", query_string={"page": value}), 422, "validation_error", "page"
    )

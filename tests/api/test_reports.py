"""Behaviour of the report endpoints on known data: windows, exclusions, ties, limits, errors."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from legacy_app.models import OrderStatus

from ..factories import (
    CategoryFactory,
    CustomerFactory,
    OrderFactory,
    OrderLineFactory,
    ProductFactory,
)

ONE_MICROSECOND = timedelta(microseconds=1)


@pytest.fixture(autouse=True)
def not_at_midnight():
    """Keep the test's "today" and the server's "today" the same UTC day."""
    now = datetime.now(UTC)
    next_midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    left = (next_midnight - now).total_seconds()
    if left < 5:
        time.sleep(left + 0.1)


def midnight(days_ago: int) -> datetime:
    """00:00 UTC of the day ``days_ago`` days before today."""
    today = datetime.now(UTC).date()
    return datetime.combine(today - timedelta(days=days_ago), datetime.min.time(), UTC)


def day(days_ago: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days_ago)).isoformat()


def place(customer, at, status, *lines):
    order = OrderFactory(customer=customer, created_at=at, status=status)
    for product, quantity in lines:
        OrderLineFactory(order=order, product=product, quantity=quantity)
    return order


@pytest.fixture
def sales(db_session):
    """Orders around a 7-day window (which starts at midnight(6)).

    p1 and p3 tie on units inside the window; p1's price changes after its orders, so
    revenue must come from the captured unit prices.
    """
    customer = CustomerFactory()
    p1 = ProductFactory(sku="SKU-P1", name="Mug", price_cents=1000)
    p2 = ProductFactory(sku="SKU-P2", name="Spoon", price_cents=250)
    p3 = ProductFactory(sku="SKU-P3", name="Plate", price_cents=500)
    p4 = ProductFactory(sku="SKU-P4", name="Kettle", price_cents=9999)
    ProductFactory(sku="SKU-P5", name="Never sold", price_cents=100)
    paid, shipped = OrderStatus.PAID.value, OrderStatus.SHIPPED.value
    placed, cancelled = OrderStatus.PLACED.value, OrderStatus.CANCELLED.value
    # First instant of the window: inside.
    place(customer, midnight(6), paid, (p1, 2), (p2, 4))
    # Last instant before the window: outside for days=7, inside for days=30.
    place(customer, midnight(6) - ONE_MICROSECOND, shipped, (p1, 50))
    place(customer, midnight(3) + timedelta(hours=9), shipped, (p2, 1), (p4, 1))
    # Last instant of its day: still that day.
    place(customer, midnight(2) - ONE_MICROSECOND, placed, (p3, 1))
    # Cancelled orders never count, even as the only order of a day.
    place(customer, midnight(2) + timedelta(hours=12), cancelled, (p4, 100))
    place(customer, midnight(0), placed, (p3, 2), (p1, 1))
    db_session.flush()
    p1.price_cents = 1
    db_session.commit()
    return {"p1": p1.id, "p2": p2.id, "p3": p3.id, "p4": p4.id}


def top(product_id, sku, name, units, revenue):
    return {
        "product_id": product_id,
        "sku": sku,
        "name": name,
        "units_sold": units,
        "revenue_cents": revenue,
    }


def test_top_products_in_window_ordered_by_units_then_id(client, sales):
    response = client.get("/api/reports/top-products?days=7")
    assert response.status_code == 200
    assert response.get_json() == {
        "items": [
            top(sales["p2"], "SKU-P2", "Spoon", 5, 1250),
            # p1 and p3 tie on 3 units: lower product id first.
            top(sales["p1"], "SKU-P1", "Mug", 3, 3000),
            top(sales["p3"], "SKU-P3", "Plate", 3, 1500),
            top(sales["p4"], "SKU-P4", "Kettle", 1, 9999),
        ],
        "total": 4,
        "days": 7,
        "limit": 10,
    }


def test_top_products_defaults_to_30_days_and_includes_older_orders(client, sales):
    body = client.get("/api/reports/top-products").get_json()
    assert body["days"] == 30
    assert body["limit"] == 10
    assert body["items"] == [
        top(sales["p1"], "SKU-P1", "Mug", 53, 53000),
        top(sales["p2"], "SKU-P2", "Spoon", 5, 1250),
        top(sales["p3"], "SKU-P3", "Plate", 3, 1500),
        top(sales["p4"], "SKU-P4", "Kettle", 1, 9999),
    ]
    assert body["total"] == 4


def test_top_products_limit_cuts_the_list_and_total_counts_returned_items(client, sales):
    body = client.get("/api/reports/top-products?days=7&limit=2").get_json()
    assert body == {
        "items": [
            top(sales["p2"], "SKU-P2", "Spoon", 5, 1250),
            top(sales["p1"], "SKU-P1", "Mug", 3, 3000),
        ],
        "total": 2,
        "days": 7,
        "limit": 2,
    }


def test_top_products_one_day_is_today_only(client, sales):
    body = client.get("/api/reports/top-products?days=1").get_json()
    assert body["items"] == [
        top(sales["p3"], "SKU-P3", "Plate", 2, 1000),
        top(sales["p1"], "SKU-P1", "Mug", 1, 1000),
    ]


def sales_day(days_ago, order_count, units, revenue):
    return {
        "date": day(days_ago),
        "order_count": order_count,
        "units": units,
        "revenue_cents": revenue,
    }


def test_daily_sales_one_item_per_day_with_orders_date_ascending(client, sales):
    response = client.get("/api/reports/daily-sales?days=7")
    assert response.status_code == 200
    assert response.get_json() == {
        "items": [
            sales_day(6, 1, 6, 3000),
            # 09:00 and 23:59:59.999999 fall on the same day; the cancelled day is absent.
            sales_day(3, 2, 3, 10749),
            sales_day(0, 1, 3, 2000),
        ],
        "total": 3,
        "days": 7,
    }


def test_daily_sales_defaults_to_30_days(client, sales):
    body = client.get("/api/reports/daily-sales").get_json()
    assert body["days"] == 30
    assert body["items"] == [
        sales_day(7, 1, 50, 50000),
        sales_day(6, 1, 6, 3000),
        sales_day(3, 2, 3, 10749),
        sales_day(0, 1, 3, 2000),
    ]
    assert body["total"] == 4


def test_daily_sales_one_day(client, sales):
    body = client.get("/api/reports/daily-sales?days=1").get_json()
    assert body == {"items": [sales_day(0, 1, 3, 2000)], "total": 1, "days": 1}


def test_reports_are_empty_without_orders(client, db_session):
    ProductFactory(stock__quantity=50)
    db_session.commit()
    assert client.get("/api/reports/top-products").get_json() == {
        "items": [],
        "total": 0,
        "days": 30,
        "limit": 10,
    }
    assert client.get("/api/reports/daily-sales").get_json() == {
        "items": [],
        "total": 0,
        "days": 30,
    }
    assert client.get("/api/reports/low-stock").get_json() == {
        "items": [],
        "total": 0,
        "page": 1,
        "per_page": 20,
    }


def test_only_cancelled_orders_give_empty_sales_reports(client, db_session):
    place(CustomerFactory(), midnight(0), OrderStatus.CANCELLED.value, (ProductFactory(), 3))
    db_session.commit()
    assert client.get("/api/reports/top-products").get_json()["items"] == []
    assert client.get("/api/reports/daily-sales").get_json()["items"] == []


@pytest.fixture
def stock_levels(db_session):
    kitchen = CategoryFactory(name="Kitchen")
    garden = CategoryFactory(name="Garden")
    ids = {}
    for sku, category, quantity in [
        ("SKU-A", kitchen, 10),
        ("SKU-B", garden, 0),
        ("SKU-C", kitchen, 11),
        ("SKU-D", kitchen, 0),
        ("SKU-E", garden, 3),
    ]:
        product = ProductFactory(
            sku=sku, name=f"Item {sku[-1]}", category=category, stock__quantity=quantity
        )
        ids[sku] = product.id
    db_session.commit()
    return ids


def low(ids, sku, category, stock):
    return {
        "product_id": ids[sku],
        "sku": sku,
        "name": f"Item {sku[-1]}",
        "category": category,
        "stock": stock,
    }


def test_low_stock_default_threshold_is_inclusive_and_ordered_by_stock_then_id(
    client, stock_levels
):
    response = client.get("/api/reports/low-stock")
    assert response.status_code == 200
    assert response.get_json() == {
        "items": [
            low(stock_levels, "SKU-B", "Garden", 0),
            low(stock_levels, "SKU-D", "Kitchen", 0),
            low(stock_levels, "SKU-E", "Garden", 3),
            low(stock_levels, "SKU-A", "Kitchen", 10),
        ],
        "total": 4,
        "page": 1,
        "per_page": 20,
    }


def test_low_stock_threshold_zero_lists_sold_out_products(client, stock_levels):
    body = client.get("/api/reports/low-stock?threshold=0").get_json()
    assert body["items"] == [
        low(stock_levels, "SKU-B", "Garden", 0),
        low(stock_levels, "SKU-D", "Kitchen", 0),
    ]
    assert body["total"] == 2


def test_low_stock_largest_threshold_lists_everything(client, stock_levels):
    body = client.get("/api/reports/low-stock?threshold=1000000").get_json()
    assert [item["sku"] for item in body["items"]] == ["SKU-B", "SKU-D", "SKU-E", "SKU-A", "SKU-C"]
    assert body["total"] == 5


def test_low_stock_pages(client, stock_levels):
    body = client.get("/api/reports/low-stock?per_page=3&page=2").get_json()
    assert body == {
        "items": [low(stock_levels, "SKU-A", "Kitchen", 10)],
        "total": 4,
        "page": 2,
        "per_page": 3,
    }
    beyond = client.get("/api/reports/low-stock?per_page=3&page=3").get_json()
    assert beyond == {"items": [], "total": 4, "page": 3, "per_page": 3}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("top-products?days=abc", "days"),
        ("top-products?days=1.5", "days"),
        ("top-products?days=0", "days"),
        ("top-products?days=-1", "days"),
        ("top-products?days=3651", "days"),
        ("top-products?limit=ten", "limit"),
        ("top-products?limit=0", "limit"),
        ("top-products?limit=101", "limit"),
        ("top-products?days=7&limit=2.5", "limit"),  # 2.0 is 2
        ("daily-sales?days=x", "days"),
        ("daily-sales?days=0", "days"),
        ("daily-sales?days=3651", "days"),
        ("low-stock?threshold=few", "threshold"),
        ("low-stock?threshold=-1", "threshold"),
        ("low-stock?threshold=1000001", "threshold"),
        ("low-stock?page=0", "page"),
        ("low-stock?page=first", "page"),
        ("low-stock?per_page=0", "per_page"),
        ("low-stock?per_page=101", "per_page"),
    ],
)
def test_bad_query_parameters_are_422_naming_the_parameter(client, query, field):
    response = client.get(f"/api/reports/{query}")
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert [f["field"] for f in error["fields"]] == [field]


@pytest.mark.parametrize(
    ("query", "echo"),
    [
        ("top-products?days=3650&limit=100", {"days": 3650, "limit": 100}),
        ("top-products?days=1&limit=1", {"days": 1, "limit": 1}),
        ("daily-sales?days=3650", {"days": 3650}),
        ("low-stock?threshold=0&page=1&per_page=100", {"page": 1, "per_page": 100}),
    ],
)
def test_boundary_values_are_accepted(client, query, echo):
    response = client.get(f"/api/reports/{query}")
    assert response.status_code == 200
    body = response.get_json()
    assert {key: body[key] for key in echo} == echo

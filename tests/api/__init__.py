"""The API behaviour suite: pins docs/api.md, rerun unchanged against every app variant."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from legacy_app.models import Category, Customer, Order, OrderLine, Product, Review, Stock

SHOP_TABLES = [m.__table__ for m in (Category, Product, Stock, Customer, Order, OrderLine, Review)]


def shop_snapshot(session: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the shop's tables, read with Core so no cached ORM state can hide a change."""
    return {
        table.name: [
            tuple(row)
            for row in session.execute(select(table).order_by(*table.primary_key.columns))
        ]
        for table in SHOP_TABLES
    }


def assert_error(response: Any, status: int, code: str, field: str | None = None) -> dict:
    """The response is the JSON error of docs/api.md, naming ``field`` when given."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert error["status"] == status
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    if field is not None:
        assert field in [f["field"] for f in error["fields"]], error
    return error

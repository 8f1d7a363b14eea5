"""Reports: best sellers, sales per day and products running low on stock."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from ..extensions import db
from ..queries import reports as queries
from ..validation import page_envelope, pagination, query_int

bp = Blueprint("reports", __name__, url_prefix="/api")

MAX_DAYS = 3650
MAX_LIMIT = 100
MAX_THRESHOLD = 1_000_000


def _days() -> int:
    return query_int("days", 30, minimum=1, maximum=MAX_DAYS)


@bp.get("/reports/top-products")
def top_products() -> dict[str, Any]:
    days = _days()
    limit = query_int("limit", 10, minimum=1, maximum=MAX_LIMIT)
    items = queries.top_products(db.session(), days=days, limit=limit)
    return {"items": items, "total": len(items), "days": days, "limit": limit}


@bp.get("/reports/daily-sales")
def daily_sales() -> dict[str, Any]:
    days = _days()
    items = queries.daily_sales(db.session(), days=days)
    return {"items": items, "total": len(items), "days": days}


@bp.get("/reports/low-stock")
def low_stock() -> dict[str, Any]:
    threshold = query_int("threshold", 10, minimum=0, maximum=MAX_THRESHOLD)
    page, per_page = pagination()
    items, total = queries.low_stock(
        db.session(), threshold=threshold, page=page, per_page=per_page
    )
    return page_envelope(items, total, page, per_page)

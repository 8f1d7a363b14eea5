"""Endpoints about the service itself: health and the API description."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..errors import ApiError
from ..extensions import db
from ..health import schema_problem
from ..openapi import openapi_document

bp = Blueprint("meta", __name__)

#: What ``GET /`` points a newcomer (or a browser) to: pages that answer a plain GET.
START_HERE = {
    "openapi": "/openapi.json",
    "health": "/healthz",
    "products": "/api/products",
    "customers": "/api/customers",
    "top_products": "/api/reports/top-products",
    "daily_sales": "/api/reports/daily-sales",
    "low_stock": "/api/reports/low-stock",
}


@bp.get("/")
def index() -> dict[str, Any]:
    return {"name": "Demo shop API", "links": START_HERE}


@bp.get("/healthz")
def healthz() -> dict[str, str]:
    # A process that answers but cannot reach its database, or finds it unmigrated, is not
    # healthy: say so with a 503 so a load balancer stops sending it traffic.
    try:
        db.session.execute(text("SELECT 1"))
        problem = schema_problem(current_app, db.session.connection())
    except SQLAlchemyError:
        raise ApiError("database unreachable", status=503, code="service_unavailable") from None
    if problem:
        message = f"schema not migrated: {problem} (run alembic upgrade head)"
        raise ApiError(message, status=503, code="service_unavailable")
    return {"status": "ok"}


@bp.get("/openapi.json")
def openapi() -> dict[str, Any]:
    return openapi_document()

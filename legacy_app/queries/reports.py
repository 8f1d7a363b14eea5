"""The reports read side: best sellers, sales per day, products running low.

Each report is one set-based statement over the normalized tables, computed on every
request: the order window is a range on ``orders.created_at`` (indexed), lines are joined
by ``order_lines.order_id`` and aggregated with GROUP BY. This is the slow path that the
read models later replace, so it must stay an honest, competent baseline.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypedDict

from sqlalchemy import Date, and_, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from ..models import Category, Order, OrderLine, OrderStatus, Product, Stock
from ..types import utcnow


class TopProduct(TypedDict):
    product_id: int
    sku: str
    name: str
    units_sold: int
    revenue_cents: int


class DailySales(TypedDict):
    date: str
    order_count: int
    units: int
    revenue_cents: int


class LowStockProduct(TypedDict):
    product_id: int
    sku: str
    name: str
    category: str
    stock: int


class utc_date(FunctionElement[date]):  # lower case: reads like a SQL function
    """The calendar date of a naive-UTC timestamp column, on every backend.

    Timestamps are stored naive UTC (see ``UTCDateTime``), so the stored value's date
    *is* the UTC date; no time-zone conversion may happen in the database.
    """

    inherit_cache = True
    type = Date()


@compiles(utc_date)
def _utc_date_default(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite stores DATETIME as ISO text; date() returns its "YYYY-MM-DD" prefix.
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_date, "postgresql")
def _utc_date_pg(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    # A plain ``timestamp`` (without time zone) casts to its own date, session zone ignored.
    return f"CAST({compiler.process(element.clauses, **kw)} AS DATE)"


def window_start(days: int, now: datetime | None = None) -> datetime:
    """00:00:00 UTC of ``today - (days - 1)``: the first instant of a ``days`` window."""
    today = (now or utcnow()).astimezone(UTC).date()
    return datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=UTC)


def _counted_order(start: datetime) -> Any:
    """Orders that count towards sales: inside the window and not cancelled."""
    return and_(Order.created_at >= start, Order.status != OrderStatus.CANCELLED.value)


def top_products(
    session: Session, *, days: int, limit: int, now: datetime | None = None
) -> list[TopProduct]:
    units = func.sum(OrderLine.quantity)
    revenue = func.sum(OrderLine.quantity * OrderLine.unit_price_cents)
    stmt = (
        select(Product.id, Product.sku, Product.name, units, revenue)
        .select_from(Order)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .join(Product, Product.id == OrderLine.product_id)
        .where(_counted_order(window_start(days, now)))
        .group_by(Product.id, Product.sku, Product.name)
        .order_by(units.desc(), Product.id.asc())
        .limit(limit)
    )
    return [
        TopProduct(
            product_id=row[0],
            sku=row[1],
            name=row[2],
            units_sold=int(row[3]),
            revenue_cents=int(row[4]),
        )
        for row in session.execute(stmt)
    ]


def daily_sales(session: Session, *, days: int, now: datetime | None = None) -> list[DailySales]:
    day = utc_date(Order.created_at)
    # LEFT JOIN so an order without lines still counts as an order (with 0 units).
    stmt = (
        select(
            day,
            func.count(func.distinct(Order.id)),
            func.coalesce(func.sum(OrderLine.quantity), 0),
            func.coalesce(func.sum(OrderLine.quantity * OrderLine.unit_price_cents), 0),
        )
        .select_from(Order)
        .outerjoin(OrderLine, OrderLine.order_id == Order.id)
        .where(_counted_order(window_start(days, now)))
        .group_by(day)
        .order_by(day.asc())
    )
    return [
        DailySales(
            # SQLite hands back "YYYY-MM-DD" text, PostgreSQL a date; str() gives both as ISO.
            date=str(row[0]),
            order_count=int(row[1]),
            units=int(row[2]),
            revenue_cents=int(row[3]),
        )
        for row in session.execute(stmt)
    ]


def low_stock(
    session: Session, *, threshold: int, page: int, per_page: int
) -> tuple[list[LowStockProduct], int]:
    """One page of products with stock <= threshold, and how many there are in all."""
    condition = Stock.quantity <= threshold
    total = session.scalar(select(func.count()).select_from(Stock).where(condition)) or 0
    stmt = (
        select(Product.id, Product.sku, Product.name, Category.name, Stock.quantity)
        .select_from(Stock)
        .join(Product, Product.id == Stock.product_id)
        .join(Category, Category.id == Product.category_id)
        .where(condition)
        .order_by(Stock.quantity.asc(), Product.id.asc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    items = [
        LowStockProduct(product_id=row[0], sku=row[1], name=row[2], category=row[3], stock=row[4])
        for row in session.execute(stmt)
    ]
    return items, total

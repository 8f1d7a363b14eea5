"""Queries served from the read models, answering exactly what the legacy endpoints answer.

Each endpoint has a Query class, a ``build_*(**view_args)`` function that turns the current
request (query string through :mod:`legacy_app.validation`, path parameters as keyword
arguments, like the view function gets them) into that query, raising the same errors in
the same order as the legacy view, and a handler ``(query, connection) -> dict`` that
reads ONLY read-model tables with plain SQLAlchemy Core.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Date,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    func,
    or_,
    select,
)

from cqrs_layer import Query

from ..errors import ApiError, NotFound, Unprocessable
from ..etags import tagged_with_version
from ..models import Product
from ..services.catalog import MAX_DB_INT
from ..validation import (
    page_envelope,
    pagination,
    query_bool,
    query_choice,
    query_int,
    query_str,
)
from .read_models import (
    catalog_view,
    customer_category_units_view,
    customer_orders_view,
    customer_summary_view,
    daily_sales_view,
    product_daily_sales_view,
    product_sales_view,
)

Json = dict[str, Any]

SORTS = ("name", "-name", "price", "-price", "rating", "popularity")
DEFAULT_SORT = "name"
LIKE_ESCAPE = "\\"
MAX_DAYS = 3650
MAX_LIMIT = 100
MAX_THRESHOLD = 1_000_000
#: How many all-time best sellers the top-products report considers first.
INITIAL_CANDIDATES = 128


def _iso(value: datetime | None) -> str | None:
    """Stored naive UTC -> the legacy JSON's aware ISO string ("...+00:00")."""
    return None if value is None else value.replace(tzinfo=UTC).isoformat()


def _window_start(days: int, today: date | None) -> date:
    """The first UTC day of a ``days`` window ending today (docs/api.md)."""
    return (today or datetime.now(UTC).date()) - timedelta(days=days - 1)


# -- catalog -------------------------------------------------------------------------------

_cat = catalog_view.c


class ListProducts(Query):
    category_id: int | None = None
    q: str | None = None
    in_stock: bool | None = None
    sort: str = DEFAULT_SORT
    page: int = 1
    per_page: int = 20


class GetProduct(Query):
    product_id: int


class LowStock(Query):
    threshold: int = 10
    page: int = 1
    per_page: int = 20


def build_list_products(**_view_args: Any) -> ListProducts:
    # Same helpers, same order as the legacy view, so the first bad parameter wins alike.
    category_id = query_int("category", 0, minimum=1, maximum=MAX_DB_INT)
    q = query_str("q")
    in_stock = query_bool("in_stock")
    if q is not None and "\x00" in q:
        raise Unprocessable("must not contain NUL characters", field="q")
    sort = query_choice("sort", DEFAULT_SORT, SORTS)
    page, per_page = pagination()
    return ListProducts(
        category_id=category_id or None,
        q=q,
        in_stock=in_stock,
        sort=sort,
        page=page,
        per_page=per_page,
    )


def build_get_product(*, product_id: int, **_view_args: Any) -> GetProduct:
    return GetProduct(product_id=product_id)


def build_low_stock(**_view_args: Any) -> LowStock:
    threshold = query_int("threshold", 10, minimum=0, maximum=MAX_THRESHOLD)
    page, per_page = pagination()
    return LowStock(threshold=threshold, page=page, per_page=per_page)


def _escape_like(text: str) -> str:
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


@functools.cache
def _catalog_statements(
    by_category: bool, by_text: bool, in_stock: bool | None, sort: str
) -> tuple[Select[Any], Select[Any]]:
    """The page and count statements for one shape of catalog query, built once per shape
    (at most 72) with bound parameters ``category_id``, ``pattern``, ``limit``, ``offset``:
    building one per request cost as much as running it."""
    conditions: list[ColumnElement[bool]] = []
    if by_category:
        conditions.append(_cat.category_id == bindparam("category_id", type_=Integer()))
    if by_text:
        pattern = bindparam("pattern", type_=String())
        conditions.append(
            or_(
                _cat.name.ilike(pattern, escape=LIKE_ESCAPE),
                _cat.sku.ilike(pattern, escape=LIKE_ESCAPE),
            )
        )
    if in_stock is not None:
        stock = func.coalesce(_cat.stock, 0)
        conditions.append(stock > 0 if in_stock else stock == 0)
    page = (
        select(*_PRODUCT_COLUMNS)
        .where(*conditions)
        .order_by(*_catalog_order(sort))
        .limit(bindparam("limit", type_=Integer()))
        .offset(bindparam("offset", type_=Integer()))
    )
    total = select(func.count()).select_from(catalog_view).where(*conditions)
    return page, total


def _catalog_order(sort: str) -> list[Any]:
    keys = {
        "name": [_cat.name.asc()],
        "-name": [_cat.name.desc()],
        "price": [_cat.price_cents.asc()],
        "-price": [_cat.price_cents.desc()],
        # sum/count as a double, as the legacy sort computes it; unrated rows hold a key
        # below every rating, so they come last.
        "rating": [_cat.rating_sort_key.desc()],
        "popularity": [_cat.units_sold.desc()],
    }[sort]
    return [*keys, _cat.product_id.asc()]


#: The catalog columns a product's JSON is made of, in the order _product_json unpacks
#: them (a plain tuple unpack: reading Row attributes by name cost more than the query).
_PRODUCT_COLUMNS = (
    _cat.product_id,
    _cat.sku,
    _cat.name,
    _cat.description,
    _cat.price_cents,
    _cat.category_id,
    _cat.category_name,
    _cat.stock,
    _cat.rating_sum,
    _cat.rating_count,
    _cat.units_sold,
    _cat.created_at,
    _cat.updated_at,
)


def _product_json(row: Any) -> Json:
    (
        product_id,
        sku,
        name,
        description,
        price_cents,
        category_id,
        category_name,
        stock,
        rating_sum,
        rating_count,
        units_sold,
        created_at,
        updated_at,
    ) = row
    return {
        "id": product_id,
        "sku": sku,
        "name": name,
        "description": description,
        "price_cents": price_cents,
        "category_id": category_id,
        "category": category_name,
        "stock": stock or 0,
        "avg_rating": round(rating_sum / rating_count, 2) if rating_count else None,
        "review_count": rating_count,
        "units_sold": units_sold,
        "created_at": _iso(created_at),
        "updated_at": _iso(updated_at),
    }


def list_products(query: ListProducts, connection: Connection) -> Json:
    page, total = _catalog_statements(
        query.category_id is not None, bool(query.q), query.in_stock, query.sort
    )
    params = {
        "category_id": query.category_id,
        "pattern": f"%{_escape_like(query.q)}%" if query.q else None,
        "limit": query.per_page,
        "offset": (query.page - 1) * query.per_page,
    }
    rows = connection.execute(page, params).all()  # one fetchall, not a fetch per row
    items = [_product_json(row) for row in rows]
    count = connection.execute(total, params).scalar_one()
    return page_envelope(items, int(count), query.page, query.per_page)


def get_product(query: GetProduct, connection: Connection) -> Json:
    row = None
    if query.product_id <= MAX_DB_INT:
        row = connection.execute(
            select(*_PRODUCT_COLUMNS).where(_cat.product_id == query.product_id)
        ).first()
    if row is None:
        raise NotFound(f"product {query.product_id} does not exist", field="product_id")
    return _product_json(row)


def low_stock(query: LowStock, connection: Connection) -> Json:
    # A NULL stock (no stock row) is never <= threshold: such products are left out, as
    # the legacy report's inner join on stock leaves them out.
    condition = _cat.stock <= query.threshold
    rows = connection.execute(
        select(_cat.product_id, _cat.sku, _cat.name, _cat.category_name, _cat.stock)
        .where(condition)
        .order_by(_cat.stock.asc(), _cat.product_id.asc())
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
    ).all()
    items = [
        {
            "product_id": row.product_id,
            "sku": row.sku,
            "name": row.name,
            "category": row.category_name,
            "stock": row.stock,
        }
        for row in rows
    ]
    total = connection.execute(select(func.count()).select_from(catalog_view).where(condition))
    return page_envelope(items, int(total.scalar_one()), query.page, query.per_page)


# -- customers -----------------------------------------------------------------------------

_orders = customer_orders_view.c
_summary = customer_summary_view.c
_ccu = customer_category_units_view.c


class CustomerOrders(Query):
    customer_id: int
    page: int = 1
    per_page: int = 20
    #: The legacy view answers 404 for an unknown customer BEFORE it reads the paging
    #: parameters, and only the handler can tell whether the customer exists; so a bad
    #: page is kept here (the error body) and raised by the handler after that check.
    pagination_error: dict[str, Any] | None = None


class CustomerSummary(Query):
    customer_id: int


def build_customer_orders(*, customer_id: int, **_view_args: Any) -> CustomerOrders:
    try:
        page, per_page = pagination()
    except ApiError as error:
        return CustomerOrders(customer_id=customer_id, pagination_error=error.to_dict()["error"])
    return CustomerOrders(customer_id=customer_id, page=page, per_page=per_page)


def build_customer_summary(*, customer_id: int, **_view_args: Any) -> CustomerSummary:
    return CustomerSummary(customer_id=customer_id)


def _summary_row_or_404(connection: Connection, customer_id: int) -> Any:
    row = None
    if customer_id <= MAX_DB_INT:
        row = connection.execute(
            select(customer_summary_view).where(_summary.customer_id == customer_id)
        ).first()
    if row is None:
        raise NotFound(f"customer {customer_id} does not exist", field="customer_id")
    return row


def customer_orders(query: CustomerOrders, connection: Connection) -> Json:
    _summary_row_or_404(connection, query.customer_id)
    if query.pagination_error is not None:
        error = query.pagination_error
        raise ApiError(
            error["message"],
            fields=error.get("fields"),
            status=error["status"],
            code=error["code"],
        )
    mine = _orders.customer_id == query.customer_id
    rows = connection.execute(
        select(customer_orders_view)
        .where(mine)
        .order_by(_orders.created_at.desc(), _orders.order_id.desc())
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
    ).all()
    items = [
        {
            "id": row.order_id,
            "status": row.status,
            "created_at": _iso(row.created_at),
            "line_count": int(row.line_count),
            "item_count": int(row.item_count),
            "total_cents": int(row.total_cents),
        }
        for row in rows
    ]
    total = connection.execute(select(func.count()).select_from(customer_orders_view).where(mine))
    return page_envelope(items, int(total.scalar_one()), query.page, query.per_page)


def customer_summary(query: CustomerSummary, connection: Connection) -> Json:
    row = _summary_row_or_404(connection, query.customer_id)
    favourite = connection.execute(
        select(_ccu.category_id, _ccu.category_name, _ccu.units)
        .where(_ccu.customer_id == query.customer_id)
        .order_by(_ccu.units.desc(), _ccu.category_id.asc())
        .limit(1)
    ).first()
    order_count = int(row.order_count)
    lifetime_value = int(row.lifetime_value_cents)
    return {
        "customer_id": query.customer_id,
        "order_count": order_count,
        "lifetime_value_cents": lifetime_value,
        "average_order_value_cents": lifetime_value // order_count if order_count else 0,
        "first_order_at": _iso(row.first_order_at),
        "last_order_at": _iso(row.last_order_at),
        "favourite_category": None
        if favourite is None
        else {
            "id": favourite.category_id,
            "name": favourite.category_name,
            "units": int(favourite.units),
        },
    }


# -- reports -------------------------------------------------------------------------------

_ps = product_sales_view.c
_pds = product_daily_sales_view.c
_daily = daily_sales_view.c


class TopProducts(Query):
    days: int = 30
    limit: int = 10
    #: The window ends on this UTC day; None means today (tests pin it).
    today: date | None = None


class DailySales(Query):
    days: int = 30
    today: date | None = None


def build_top_products(**_view_args: Any) -> TopProducts:
    days = query_int("days", 30, minimum=1, maximum=MAX_DAYS)
    limit = query_int("limit", 10, minimum=1, maximum=MAX_LIMIT)
    return TopProducts(days=days, limit=limit)


def build_daily_sales(**_view_args: Any) -> DailySales:
    return DailySales(days=query_int("days", 30, minimum=1, maximum=MAX_DAYS))


def _build_top_products_statements() -> tuple[Any, Any]:
    """The two statements of the top-products report, built once (bound parameters:
    ``start``, ``candidates``, ``limit``): building and cache-keying a statement this size
    on every request would cost more than running it."""
    start = bindparam("start", type_=Date())
    candidates = bindparam("candidates", type_=Integer())
    by_all_time_sales = [_ps.units_sold.desc(), _ps.product_id.asc()]

    # The K all-time best sellers, limited before anything else is computed: as a FROM
    # subquery with its own LIMIT, no planner can push the window filter below it and
    # compute window sales for every product (PostgreSQL did, on stale statistics).
    leaders = (
        select(_ps.product_id, _ps.sku, _ps.name, _ps.units_sold, _ps.revenue_cents)
        .order_by(*by_all_time_sales)
        .limit(candidates)
        .subquery("leaders")
    )

    # Each leader's running totals on its last day with sales before the window: one
    # index seek for that day, one primary-key join for its row (correlated subqueries
    # per column were evaluated once per use, three times per product on PostgreSQL).
    last_day_before = (
        select(func.max(_pds.day))
        .where(_pds.product_id == leaders.c.product_id, _pds.day < start)
        .scalar_subquery()
    )
    before = product_daily_sales_view.alias("before_window")
    on_last_day = and_(before.c.product_id == leaders.c.product_id, before.c.day == last_day_before)
    window = (
        select(
            leaders.c.product_id,
            leaders.c.sku,
            leaders.c.name,
            (leaders.c.units_sold - func.coalesce(before.c.cumulative_units, 0)).label("units"),
            (leaders.c.revenue_cents - func.coalesce(before.c.cumulative_revenue_cents, 0)).label(
                "revenue"
            ),
        )
        .select_from(leaders.outerjoin(before, on_last_day))
        .subquery("window_sales")
    )
    best = (
        select(window)
        .where(window.c.units > 0)
        .order_by(window.c.units.desc(), window.c.product_id.asc())
        .limit(bindparam("limit", type_=Integer()))
    )
    first_left_out = select(_ps.units_sold).order_by(*by_all_time_sales).offset(candidates).limit(1)
    return best, first_left_out


_BEST_AMONG_LEADERS, _FIRST_LEFT_OUT = _build_top_products_statements()


def top_products(query: TopProducts, connection: Connection) -> Json:
    """Best sellers of the window, reading as few products as the answer allows.

    A product's sales in any window are at most its all-time sales, and its window
    sales are its all-time sales minus the running total of its last day with sales
    before the window (one primary-key seek). So the window's best are computed among
    the K all-time best sellers only, and that answer is final when the first product
    left out sold, all-time, less than the ``limit``-th best of the window: neither it
    nor any product after it can enter the top or tie. Otherwise K grows fourfold and
    the statement runs again. Sales are skewed, so the first K usually decides it (30
    days of the seeded shop: ~100 of 1,500 products are needed).
    """
    params: dict[str, Any] = {
        "start": _window_start(query.days, query.today),
        "candidates": max(INITIAL_CANDIDATES, 4 * query.limit),
        "limit": query.limit,
    }
    while True:
        best = connection.execute(_BEST_AMONG_LEADERS, params).all()
        first_left_out = connection.execute(_FIRST_LEFT_OUT, params).scalar()
        if (
            first_left_out is None
            or first_left_out <= 0
            or (len(best) == query.limit and first_left_out < best[-1].units)
        ):
            break
        params["candidates"] *= 4
    items = [
        {
            "product_id": row.product_id,
            "sku": row.sku,
            "name": row.name,
            "units_sold": int(row.units),
            "revenue_cents": int(row.revenue),
        }
        for row in best
    ]
    return {"items": items, "total": len(items), "days": query.days, "limit": query.limit}


#: Built once: building and cache-keying the statement per request cost more than running
#: it for a 30-day window.
_DAILY_SALES_SINCE = (
    select(_daily.day, _daily.order_count, _daily.units, _daily.revenue_cents)
    .where(_daily.day >= bindparam("start", type_=Date()))
    .order_by(_daily.day.asc())
)


def daily_sales(query: DailySales, connection: Connection) -> Json:
    rows = connection.execute(
        _DAILY_SALES_SINCE, {"start": _window_start(query.days, query.today)}
    ).all()  # one fetchall, not a fetch per row
    items = [
        {"date": day.isoformat(), "order_count": orders, "units": units, "revenue_cents": revenue}
        for day, orders, units, revenue in rows
    ]
    return {"items": items, "total": len(items), "days": query.days}


@dataclass(frozen=True)
class ReadEndpoint:
    """A legacy read endpoint (Flask endpoint name) and the query path that replaces it."""

    endpoint: str
    query_type: type[Query]
    build: Callable[..., Query]
    handler: Callable[[Any, Connection], Json]
    #: The read models the handler reads (the promotion gate verifies exactly these).
    read_models: tuple[str, ...]
    #: View decorators the query path needs to answer like the legacy view, which has
    #: the same ones: the ETag of a versioned resource. That one reads the version from
    #: the write model (one primary-key lookup), as the read models carry no versions.
    decorators: tuple[Callable[[Callable[..., Any]], Callable[..., Any]], ...] = ()


#: What the wiring registers, one per slow read endpoint.
READ_ENDPOINTS: tuple[ReadEndpoint, ...] = (
    ReadEndpoint(
        "products.list_products", ListProducts, build_list_products, list_products, ("catalog",)
    ),
    ReadEndpoint(
        "products.get_product",
        GetProduct,
        build_get_product,
        get_product,
        ("catalog",),
        decorators=(tagged_with_version(Product, "product_id"),),
    ),
    ReadEndpoint("reports.low_stock", LowStock, build_low_stock, low_stock, ("catalog",)),
    ReadEndpoint(
        "customers.customer_orders",
        CustomerOrders,
        build_customer_orders,
        customer_orders,
        ("customer_orders", "customer_summary"),  # the summary row answers "who exists"
    ),
    ReadEndpoint(
        "customers.customer_summary",
        CustomerSummary,
        build_customer_summary,
        customer_summary,
        ("customer_summary", "customer_category_units", "customer_product_units", "categories"),
    ),
    ReadEndpoint(
        "reports.top_products",
        TopProducts,
        build_top_products,
        top_products,
        ("product_sales", "product_daily_sales"),
    ),
    ReadEndpoint(
        "reports.daily_sales", DailySales, build_daily_sales, daily_sales, ("daily_sales",)
    ),
)

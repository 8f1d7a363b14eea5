"""The shop's read models: denormalized tables and the SELECT computing each from the
legacy tables.

The tables live on their own ``read_metadata`` with no foreign keys to the legacy tables,
so they can move to a separate read database (stage 5). Every ``source()`` is ONE
set-based SELECT over the legacy tables whose labels are the table's columns: it drives
the backfill (INSERT ... SELECT) and ``verify``, so it is the definition of what the
projections in :mod:`legacy_app.cqrs.projections` must keep the table equal to.

Timestamps are stored naive UTC (plain ``DateTime``), like the legacy ``UTCDateTime``
stores them, so the backfill copies them unchanged; query handlers make them aware.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    cast,
    func,
    select,
)

from cqrs_layer import ReadModel

from ..extensions import NAMING_CONVENTION
from ..models import Category, Customer, Order, OrderLine, OrderStatus, Product, Review, Stock
from ..queries.reports import utc_date

read_metadata = MetaData(naming_convention=NAMING_CONVENTION)

CANCELLED = OrderStatus.CANCELLED.value


# -- dialect-portable SQL constructs -------------------------------------------------------


#: Text that sorts by code point on every backend, like the legacy catalog's name sort.
CODEPOINT_TEXT = String(200).with_variant(String(200, collation="C"), "postgresql")


def money(quantity: Any, unit_price_cents: Any) -> Any:
    # BIGINT product: quantity * price may pass PostgreSQL's 32-bit INTEGER range.
    return cast(quantity, BigInteger) * unit_price_cents


def rating_average(rating_sum: Any, rating_count: Any) -> Any:
    """sum / count as a double, exactly as the legacy rating sort computes it, so equal
    ratios compare equal and ties fall back to the id the same way."""
    return cast(rating_sum, Float) / rating_count


#: Below every real average (ratings are 1..5): unrated products sort last.
UNRATED_SORT_KEY = -1.0


# -- 1. catalog ----------------------------------------------------------------------------

catalog_view = Table(
    "catalog_view",
    read_metadata,
    Column("product_id", Integer, primary_key=True, autoincrement=False),
    Column("sku", String(40), nullable=False),
    # Sorted by code point like the legacy catalog: SQLite compares text bytewise already,
    # PostgreSQL is told by the column's collation, so plain indexes serve the name sorts.
    Column("name", CODEPOINT_TEXT, nullable=False),
    Column("description", Text, nullable=False),
    Column("price_cents", Integer, nullable=False),
    Column("category_id", Integer, nullable=False),
    Column("category_name", String(80), nullable=False),
    # NULL when the product has no stock row (rows created outside the API): the catalog
    # shows 0 for it, but the low-stock report (an inner join on stock) leaves it out.
    Column("stock", Integer, nullable=True),
    Column("rating_sum", BigInteger, nullable=False),
    Column("rating_count", Integer, nullable=False),
    # sum/count for the rating sort; UNRATED_SORT_KEY when unrated, so a plain DESC index
    # puts unrated products last on every backend (no NULLS LAST needed).
    Column("rating_sort_key", Float, nullable=False),
    Column("units_sold", BigInteger, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
)
_c = catalog_view.c
# One index per sort, with the id tie-break in the direction the ORDER BY walks it.
Index("ix_catalog_view_name_sort", _c.name, _c.product_id)
Index("ix_catalog_view_name_desc_sort", _c.name.desc(), _c.product_id)
Index("ix_catalog_view_price_sort", _c.price_cents, _c.product_id)
Index("ix_catalog_view_price_desc_sort", _c.price_cents.desc(), _c.product_id)
Index("ix_catalog_view_popularity_sort", _c.units_sold.desc(), _c.product_id)
Index("ix_catalog_view_rating_sort", _c.rating_sort_key.desc(), _c.product_id)
Index("ix_catalog_view_category", _c.category_id, _c.name, _c.product_id)
Index("ix_catalog_view_stock", _c.stock, _c.product_id)  # low-stock report, in_stock filter


def catalog_source() -> Select[*tuple[Any, ...]]:
    reviews = (
        select(
            Review.product_id.label("product_id"),
            func.sum(Review.rating).label("rating_sum"),
            func.count(Review.id).label("rating_count"),
        )
        .group_by(Review.product_id)
        .subquery("review_stats")
    )
    sold = (
        select(OrderLine.product_id.label("product_id"), func.sum(OrderLine.quantity).label("n"))
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.status != CANCELLED)
        .group_by(OrderLine.product_id)
        .subquery("units_sold")
    )
    return (
        select(
            Product.id.label("product_id"),
            Product.sku.label("sku"),
            Product.name.label("name"),
            Product.description.label("description"),
            Product.price_cents.label("price_cents"),
            Product.category_id.label("category_id"),
            Category.name.label("category_name"),
            Stock.quantity.label("stock"),
            func.coalesce(reviews.c.rating_sum, 0).label("rating_sum"),
            func.coalesce(reviews.c.rating_count, 0).label("rating_count"),
            func.coalesce(
                rating_average(reviews.c.rating_sum, reviews.c.rating_count), UNRATED_SORT_KEY
            ).label("rating_sort_key"),
            func.coalesce(sold.c.n, 0).label("units_sold"),
            Product.created_at.label("created_at"),
            Product.updated_at.label("updated_at"),
        )
        .select_from(Product)
        .join(Category, Category.id == Product.category_id)
        .outerjoin(Stock, Stock.product_id == Product.id)
        .outerjoin(reviews, reviews.c.product_id == Product.id)
        .outerjoin(sold, sold.c.product_id == Product.id)
    )


catalog = ReadModel(
    name="catalog",
    table=catalog_view,
    source=catalog_source,
)


# -- 2. customer orders --------------------------------------------------------------------

customer_orders_view = Table(
    "customer_orders_view",
    read_metadata,
    Column("order_id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("line_count", Integer, nullable=False),
    Column("item_count", BigInteger, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    # History pages (newest first) walk this backwards; the summary's first/last order
    # recompute seeks it too.
    Index("ix_customer_orders_view_history", "customer_id", "created_at", "order_id"),
)


def customer_orders_source() -> Select[*tuple[Any, ...]]:
    return (
        select(
            Order.id.label("order_id"),
            Order.customer_id.label("customer_id"),
            Order.status.label("status"),
            Order.created_at.label("created_at"),
            func.count(OrderLine.id).label("line_count"),
            func.coalesce(func.sum(OrderLine.quantity), 0).label("item_count"),
            func.coalesce(func.sum(money(OrderLine.quantity, OrderLine.unit_price_cents)), 0).label(
                "total_cents"
            ),
        )
        .select_from(Order)
        .outerjoin(OrderLine, OrderLine.order_id == Order.id)
        .group_by(Order.id, Order.customer_id, Order.status, Order.created_at)
    )


customer_orders = ReadModel(
    name="customer_orders",
    table=customer_orders_view,
    source=customer_orders_source,
)


# -- 3. customer summary -------------------------------------------------------------------

#: One row per existing customer (so the read side can answer 404 without the legacy
#: tables); the figures cover non-cancelled orders only.
customer_summary_view = Table(
    "customer_summary_view",
    read_metadata,
    Column("customer_id", Integer, primary_key=True, autoincrement=False),
    Column("order_count", Integer, nullable=False),
    Column("lifetime_value_cents", BigInteger, nullable=False),
    Column("first_order_at", DateTime, nullable=True),
    Column("last_order_at", DateTime, nullable=True),
)


def customer_summary_source() -> Select[*tuple[Any, ...]]:
    per_order = (
        select(
            Order.id.label("order_id"),
            Order.customer_id.label("customer_id"),
            Order.created_at.label("created_at"),
            func.coalesce(func.sum(money(OrderLine.quantity, OrderLine.unit_price_cents)), 0).label(
                "total_cents"
            ),
        )
        .select_from(Order)
        .outerjoin(OrderLine, OrderLine.order_id == Order.id)
        .where(Order.status != CANCELLED)
        .group_by(Order.id, Order.customer_id, Order.created_at)
        .subquery("per_order")
    )
    totals = (
        select(
            per_order.c.customer_id,
            func.count().label("order_count"),
            func.sum(per_order.c.total_cents).label("lifetime_value_cents"),
            func.min(per_order.c.created_at).label("first_order_at"),
            func.max(per_order.c.created_at).label("last_order_at"),
        )
        .group_by(per_order.c.customer_id)
        .subquery("totals")
    )
    return select(
        Customer.id.label("customer_id"),
        func.coalesce(totals.c.order_count, 0).label("order_count"),
        func.coalesce(totals.c.lifetime_value_cents, 0).label("lifetime_value_cents"),
        totals.c.first_order_at.label("first_order_at"),
        totals.c.last_order_at.label("last_order_at"),
    ).outerjoin(totals, totals.c.customer_id == Customer.id)


customer_summary = ReadModel(
    name="customer_summary",
    table=customer_summary_view,
    source=customer_summary_source,
)

#: Category names, so order lines (which carry only a category id) can be named.
categories_view = Table(
    "categories_view",
    read_metadata,
    Column("category_id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(80), nullable=False),
)


def categories_source() -> Select[*tuple[Any, ...]]:
    return select(Category.id.label("category_id"), Category.name.label("name"))


categories = ReadModel(
    name="categories",
    table=categories_view,
    source=categories_source,
)

#: Units each customer bought of each product (non-cancelled), filed under the product's
#: CURRENT category: when a product changes category, its rows here are re-filed in one
#: UPDATE and the affected customers' category units are recomputed from this table.
customer_product_units_view = Table(
    "customer_product_units_view",
    read_metadata,
    Column("customer_id", Integer, primary_key=True, autoincrement=False),
    Column("product_id", Integer, primary_key=True, autoincrement=False),
    Column("category_id", Integer, nullable=False),
    Column("units", BigInteger, nullable=False),
    Index("ix_customer_product_units_view_product", "product_id"),
)


def _bought_non_cancelled() -> Select[*tuple[Any, ...]]:
    return (
        select()
        .select_from(OrderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .join(Product, Product.id == OrderLine.product_id)
        .where(Order.status != CANCELLED)
    )


def customer_product_units_source() -> Select[*tuple[Any, ...]]:
    return (
        _bought_non_cancelled()
        .add_columns(
            Order.customer_id.label("customer_id"),
            OrderLine.product_id.label("product_id"),
            Product.category_id.label("category_id"),
            func.sum(OrderLine.quantity).label("units"),
        )
        .group_by(Order.customer_id, OrderLine.product_id, Product.category_id)
    )


customer_product_units = ReadModel(
    name="customer_product_units",
    table=customer_product_units_view,
    source=customer_product_units_source,
    refresh_by=("customer_id",),  # a customer's few rows, recomputed together
)

#: The favourite category is this table's top row per customer (units desc, id asc).
customer_category_units_view = Table(
    "customer_category_units_view",
    read_metadata,
    Column("customer_id", Integer, primary_key=True, autoincrement=False),
    Column("category_id", Integer, primary_key=True, autoincrement=False),
    Column("category_name", String(80), nullable=False),
    Column("units", BigInteger, nullable=False),
)
Index(
    "ix_customer_category_units_view_favourite",
    customer_category_units_view.c.customer_id,
    customer_category_units_view.c.units.desc(),
    customer_category_units_view.c.category_id,
)


def customer_category_units_source() -> Select[*tuple[Any, ...]]:
    return (
        _bought_non_cancelled()
        .join(Category, Category.id == Product.category_id)
        .add_columns(
            Order.customer_id.label("customer_id"),
            Category.id.label("category_id"),
            Category.name.label("category_name"),
            func.sum(OrderLine.quantity).label("units"),
        )
        .group_by(Order.customer_id, Category.id, Category.name)
    )


customer_category_units = ReadModel(
    name="customer_category_units",
    table=customer_category_units_view,
    source=customer_category_units_source,
    refresh_by=("customer_id",),
)


# -- 4. product sales (top products) -------------------------------------------------------

#: Every product, with its all-time (non-cancelled) sales.
product_sales_view = Table(
    "product_sales_view",
    read_metadata,
    Column("product_id", Integer, primary_key=True, autoincrement=False),
    Column("sku", String(40), nullable=False),
    Column("name", String(200), nullable=False),
    Column("units_sold", BigInteger, nullable=False),
    Column("revenue_cents", BigInteger, nullable=False),
)
Index(
    "ix_product_sales_view_best_sellers",
    product_sales_view.c.units_sold.desc(),
    product_sales_view.c.product_id,
)

#: Per (product, UTC day with sales): the day's figures and the running totals up to and
#: including that day. Sales since day D = all-time total - cumulative of the last row
#: before D: one primary-key seek per product whatever the window's length.
product_daily_sales_view = Table(
    "product_daily_sales_view",
    read_metadata,
    Column("product_id", Integer, primary_key=True, autoincrement=False),
    Column("day", Date, primary_key=True),
    Column("units", BigInteger, nullable=False),
    Column("revenue_cents", BigInteger, nullable=False),
    Column("cumulative_units", BigInteger, nullable=False),
    Column("cumulative_revenue_cents", BigInteger, nullable=False),
    # Clustered on (product_id, day) on SQLite: the report's seek reads the running
    # totals straight from the key's B-tree instead of a second lookup by rowid.
    sqlite_with_rowid=False,
)


def _line_sales() -> Select[*tuple[Any, ...]]:
    return (
        select()
        .select_from(OrderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.status != CANCELLED)
    )


def product_sales_source() -> Select[*tuple[Any, ...]]:
    sold = (
        _line_sales()
        .add_columns(
            OrderLine.product_id.label("product_id"),
            func.sum(OrderLine.quantity).label("units"),
            func.sum(money(OrderLine.quantity, OrderLine.unit_price_cents)).label("revenue"),
        )
        .group_by(OrderLine.product_id)
        .subquery("sold")
    )
    return select(
        Product.id.label("product_id"),
        Product.sku.label("sku"),
        Product.name.label("name"),
        func.coalesce(sold.c.units, 0).label("units_sold"),
        func.coalesce(sold.c.revenue, 0).label("revenue_cents"),
    ).outerjoin(sold, sold.c.product_id == Product.id)


def product_daily_sales_source() -> Select[*tuple[Any, ...]]:
    day = utc_date(Order.created_at)
    units = func.sum(OrderLine.quantity)
    revenue = func.sum(money(OrderLine.quantity, OrderLine.unit_price_cents))
    return (
        _line_sales()
        .add_columns(
            OrderLine.product_id.label("product_id"),
            day.label("day"),
            units.label("units"),
            revenue.label("revenue_cents"),
            # Running totals per product in day order (window functions: SQLite >= 3.25).
            func.sum(units)
            .over(partition_by=OrderLine.product_id, order_by=day)
            .label("cumulative_units"),
            func.sum(revenue)
            .over(partition_by=OrderLine.product_id, order_by=day)
            .label("cumulative_revenue_cents"),
        )
        .group_by(OrderLine.product_id, day)
    )


product_sales = ReadModel(
    name="product_sales",
    table=product_sales_view,
    source=product_sales_source,
)
product_daily_sales = ReadModel(
    name="product_daily_sales",
    table=product_daily_sales_view,
    source=product_daily_sales_source,
    # A day's sales change the running totals of every later day of the product.
    refresh_by=("product_id",),
)


# -- 5. daily sales ------------------------------------------------------------------------

daily_sales_view = Table(
    "daily_sales_view",
    read_metadata,
    Column("day", Date, primary_key=True),
    Column("order_count", Integer, nullable=False),
    Column("units", BigInteger, nullable=False),
    Column("revenue_cents", BigInteger, nullable=False),
)


def daily_sales_source() -> Select[*tuple[Any, ...]]:
    day = utc_date(Order.created_at)
    # LEFT JOIN: an order without lines still counts as an order (with 0 units).
    return (
        select(
            day.label("day"),
            func.count(func.distinct(Order.id)).label("order_count"),
            func.coalesce(func.sum(OrderLine.quantity), 0).label("units"),
            func.coalesce(func.sum(money(OrderLine.quantity, OrderLine.unit_price_cents)), 0).label(
                "revenue_cents"
            ),
        )
        .select_from(Order)
        .outerjoin(OrderLine, OrderLine.order_id == Order.id)
        .where(Order.status != CANCELLED)
        .group_by(day)
    )


daily_sales = ReadModel(
    name="daily_sales",
    table=daily_sales_view,
    source=daily_sales_source,
)


#: Every read model, in an order where none reads a table the ones after it fill.
READ_MODELS: tuple[ReadModel, ...] = (
    catalog,
    customer_orders,
    customer_summary,
    categories,
    customer_product_units,
    customer_category_units,
    product_sales,
    product_daily_sales,
    daily_sales,
)
